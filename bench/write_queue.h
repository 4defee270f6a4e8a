// One write in flight per gRPC stream reactor: later messages wait their
// turn (gRPC allows a single outstanding write). Shared by the benchmarks'
// stream clients and servers.
#ifndef TURNBROKER_BENCH_WRITE_QUEUE_H_
#define TURNBROKER_BENCH_WRITE_QUEUE_H_

#include <deque>
#include <mutex>

namespace turnbroker::bench {

template <typename Reactor, typename Message>
class WriteQueue {
 public:
  explicit WriteQueue(Reactor* reactor) : reactor_(reactor) {}
  void Push(Message message) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      reactor_->StartWrite(&queue_.front());
    }
  }
  // From the reactor's OnWriteDone.
  void Done() {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.pop_front();
    if (queue_.empty())
      writing_ = false;
    else
      reactor_->StartWrite(&queue_.front());
  }

 private:
  Reactor* const reactor_;
  std::mutex mu_;
  std::deque<Message> queue_;
  bool writing_ = false;
};

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_WRITE_QUEUE_H_
