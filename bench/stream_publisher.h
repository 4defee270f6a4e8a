// A PublishStream client for the benchmarks: requests are written in the
// order sent (one write in flight), and `on_answer` sees every answer.
#ifndef TURNBROKER_BENCH_STREAM_PUBLISHER_H_
#define TURNBROKER_BENCH_STREAM_PUBLISHER_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>

#include "turnbroker/v1/broker.grpc.pb.h"
#include "write_queue.h"

namespace turnbroker::bench {

class StreamPublisher final
    : public grpc::ClientBidiReactor<turnbroker::v1::PublishStreamRequest,
                                     turnbroker::v1::PublishStreamResponse> {
 public:
  using OnAnswer = std::function<void(const turnbroker::v1::PublishStreamResponse&)>;

  StreamPublisher(turnbroker::v1::CredentialBroker::Stub* stub, OnAnswer on_answer)
      : on_answer_(std::move(on_answer)) {
    stub->async()->PublishStream(&context_, this);
    StartRead(&in_);
    StartCall();
  }
  void Send(turnbroker::v1::PublishStreamRequest request) { writes_.Push(std::move(request)); }
  // Half-closes and waits until the broker ended the stream.
  void Close() {
    StartWritesDone();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return finished_; });
  }

  void OnWriteDone(bool) override { writes_.Done(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    on_answer_(in_);
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& s) override {
    if (!s.ok()) std::fprintf(stderr, "publish stream ended: %s\n", s.error_message().c_str());
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    cv_.notify_all();
  }

 private:
  grpc::ClientContext context_;
  turnbroker::v1::PublishStreamResponse in_;
  const OnAnswer on_answer_;
  WriteQueue<StreamPublisher, turnbroker::v1::PublishStreamRequest> writes_{this};
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
};

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_STREAM_PUBLISHER_H_
