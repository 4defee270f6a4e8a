// The gRPC BrokerClient. Revoke and GetStatus are unary calls; Publish goes
// over one long-lived PublishStream (see GrpcBrokerClientOptions).
//
// Locking: one mutex guards the client and its streams. gRPC operations
// (Start*, RemoveHold, the unary calls) and user callbacks run with it
// released: gRPC may run a reaction inline inside the operation that
// completes it, and a callback may call Publish again.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::pcscf {
namespace {

using Clock = std::chrono::steady_clock;

class GrpcBrokerClient final : public BrokerClient {
 public:
  GrpcBrokerClient(std::shared_ptr<grpc::Channel> channel, GrpcBrokerClientOptions options)
      : options_(options),
        channel_(std::move(channel)),
        stub_(v1::CredentialBroker::NewStub(channel_)) {
    if (options_.publish_stream) timer_ = std::thread([this] { RunTimer(); });
  }

  ~GrpcBrokerClient() override {
    std::unique_lock lock(mu_);
    stopping_ = true;
    timer_wake_.notify_all();
    for (grpc::ClientContext* c : in_flight_) c->TryCancel();
    for (PublishStream* s : streams_) s->context.TryCancel();
    // A stream's OnDone fails (or resends) every request pending on it.
    idle_.wait(lock, [this] { return calls_ == 0; });
    lock.unlock();
    if (timer_.joinable()) timer_.join();
  }

  void Publish(v1::PublishRequest request, int64_t timeout_ms,
               Callback<v1::PublishResponse> done) override {
    PublishStream* open = nullptr;   // a new stream, started here
    PublishStream* write = nullptr;  // a stream whose next write starts here
    bool unary;
    {
      std::lock_guard lock(mu_);
      unary = !options_.publish_stream || unary_publish_;
      if (!unary) {
        if (stream_ == nullptr) open = stream_ = NewStreamLocked();
        const uint64_t id = next_id_++;
        const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        if (by_deadline_.empty() || deadline < by_deadline_.begin()->first) {
          timer_wake_.notify_one();
        }
        by_deadline_.emplace(deadline, id);
        pending_.emplace(
            id, Pending{std::move(request), std::move(done), deadline, timeout_ms, stream_});
        stream_->queue.push_back(id);
        if (NextWriteLocked(stream_)) write = stream_;
      }
    }
    if (unary) return PublishUnary(std::move(request), timeout_ms, std::move(done));
    if (open != nullptr) {
      stub_->async()->PublishStream(&open->context, open);
      // Writes start from Publish threads, outside reactions: the hold keeps
      // OnDone away until no write can start any more (ReleaseLocked).
      open->AddHold();
      open->StartRead(&open->read);
    }
    if (write != nullptr) write->StartWrite(&write->write);
    if (open != nullptr) open->StartCall();
  }

  void Revoke(v1::RevokeRequest request, int64_t timeout_ms,
              Callback<v1::RevokeResponse> done) override {
    auto* call = Start<v1::RevokeRequest, v1::RevokeResponse>(std::move(request), timeout_ms,
                                                              std::move(done));
    stub_->async()->Revoke(&call->context, &call->request, &call->response,
                           [this, call](grpc::Status s) { Finish(call, s); });
  }

  void GetStatus(int64_t timeout_ms, Callback<v1::GetStatusResponse> done) override {
    auto* call = Start<v1::GetStatusRequest, v1::GetStatusResponse>(
        v1::GetStatusRequest(), timeout_ms, std::move(done));
    stub_->async()->GetStatus(&call->context, &call->request, &call->response,
                              [this, call](grpc::Status s) { Finish(call, s); });
  }

 private:
  // One PublishStream call. Its fields are guarded by the client's mu_,
  // except the buffers of the operation in flight (`write`, `read`).
  class PublishStream final
      : public grpc::ClientBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse> {
   public:
    explicit PublishStream(GrpcBrokerClient* client) : client_(client) {}
    void OnReadDone(bool ok) override { client_->OnStreamRead(this, ok); }
    void OnWriteDone(bool ok) override { client_->OnStreamWrite(this, ok); }
    void OnDone(const grpc::Status& s) override { client_->OnStreamDone(this, s); }

    grpc::ClientContext context;
    v1::PublishStreamRequest write;  // the write in flight
    v1::PublishStreamResponse read;  // the read pending (always one until the stream ends)
    std::deque<uint64_t> queue;      // ids waiting for the write in flight
    bool writing = false;
    bool ended = false;  // the call is over: no write starts any more
    bool held = true;    // AddHold not yet matched by RemoveHold

   private:
    GrpcBrokerClient* const client_;
  };

  // A Publish sent on a stream and not yet answered.
  struct Pending {
    // Kept until answered, not only until written: a broker without
    // PublishStream gets it again as a unary call.
    v1::PublishRequest request;
    Callback<v1::PublishResponse> done;
    Clock::time_point deadline;
    int64_t timeout_ms;
    PublishStream* stream;
  };

  PublishStream* NewStreamLocked() {
    auto* s = new PublishStream(this);
    streams_.insert(s);
    ++calls_;
    return s;
  }

  // Takes the next id of `s` still pending (expired ones are skipped: their
  // caller has its answer) into the write buffer. True: start that write.
  bool NextWriteLocked(PublishStream* s) {
    if (s->writing || s->ended) return false;
    while (!s->queue.empty()) {
      const uint64_t id = s->queue.front();
      s->queue.pop_front();
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      s->write.set_id(id);
      *s->write.mutable_request() = it->second.request;
      s->writing = true;
      return true;
    }
    return false;
  }

  // No write starts on `s` any more; the next Publish opens a new stream.
  void EndLocked(PublishStream* s) {
    s->ended = true;
    if (stream_ == s) stream_ = nullptr;
  }

  // True once: the caller removes the hold (no write in flight or to come).
  bool ReleaseLocked(PublishStream* s) {
    if (!s->ended || s->writing || !s->held) return false;
    s->held = false;
    return true;
  }

  void OnStreamWrite(PublishStream* s, bool ok) {
    bool write, release;
    {
      std::lock_guard lock(mu_);
      s->writing = false;
      if (!ok) EndLocked(s);  // the call is over; OnDone says how
      write = NextWriteLocked(s);
      release = ReleaseLocked(s);
    }
    if (write) s->StartWrite(&s->write);
    if (release) s->RemoveHold();
  }

  void OnStreamRead(PublishStream* s, bool ok) {
    if (!ok) {
      bool release;
      {
        std::lock_guard lock(mu_);
        EndLocked(s);
        release = ReleaseLocked(s);
      }
      if (release) s->RemoveHold();
      return;
    }
    const uint64_t id = s->read.id();
    absl::StatusOr<v1::PublishResponse> result =
        s->read.code() == 0
            ? absl::StatusOr<v1::PublishResponse>(std::move(*s->read.mutable_response()))
            : FromGrpcStatus(
                  grpc::Status(static_cast<grpc::StatusCode>(s->read.code()), s->read.message()));
    Callback<v1::PublishResponse> done;
    {
      std::lock_guard lock(mu_);
      // Not pending: it expired (its caller has DEADLINE_EXCEEDED already).
      if (auto it = pending_.find(id); it != pending_.end() && it->second.stream == s) {
        done = std::move(it->second.done);
        by_deadline_.erase({it->second.deadline, id});
        pending_.erase(it);
      }
    }
    s->StartRead(&s->read);
    if (done) done(std::move(result));
  }

  // The last reaction of `s`: nothing of it is pending after this.
  void OnStreamDone(PublishStream* s, const grpc::Status& status) {
    std::vector<Pending> left;
    bool resend;
    {
      std::lock_guard lock(mu_);
      EndLocked(s);
      // An older broker: stay unary from now on (for this client's life).
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) unary_publish_ = true;
      resend = unary_publish_;
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.stream != s) {
          ++it;
          continue;
        }
        by_deadline_.erase({it->second.deadline, it->first});
        left.push_back(std::move(it->second));
        it = pending_.erase(it);
      }
    }
    // The map is ordered by id: resent in the order they were published.
    const absl::Status failure =
        status.ok() ? absl::UnavailableError("publish stream ended") : FromGrpcStatus(status);
    for (Pending& p : left) {
      const int64_t left_ms =
          std::chrono::ceil<std::chrono::milliseconds>(p.deadline - Clock::now()).count();
      if (!resend) {
        p.done(failure);
      } else if (left_ms <= 0) {
        p.done(DeadlineExceeded(p.timeout_ms));
      } else {
        PublishUnary(std::move(p.request), left_ms, std::move(p.done));
      }
    }
    {
      std::lock_guard lock(mu_);
      streams_.erase(s);
    }
    delete s;
    CallDeleted();
  }

  // Each call's ClientContext holds a reference to the channel. The last
  // one must not go on a gRPC callback thread (gRPC 1.51 then tears down
  // the callback queue from its own thread and crashes): the destructor
  // waits until every call object is deleted, and drops it itself.
  void CallDeleted() {
    std::lock_guard lock(mu_);
    // Under the lock: the destructor may return as soon as it is released.
    if (--calls_ == 0) idle_.notify_all();
  }

  // A stream has no deadline per message: this thread fails each request
  // whose deadline passed. A late answer then finds nothing pending.
  void RunTimer() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (by_deadline_.empty()) {
        timer_wake_.wait(lock);
        continue;
      }
      const Clock::time_point now = Clock::now();
      // A copy: the element may be gone when wait_until looks at it again.
      const Clock::time_point first = by_deadline_.begin()->first;
      if (now < first) {
        timer_wake_.wait_until(lock, first);
        continue;
      }
      std::vector<Pending> expired;
      while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
        auto it = pending_.find(by_deadline_.begin()->second);
        expired.push_back(std::move(it->second));
        pending_.erase(it);
        by_deadline_.erase(by_deadline_.begin());
      }
      lock.unlock();
      for (Pending& p : expired) p.done(DeadlineExceeded(p.timeout_ms));
      lock.lock();
    }
  }

  static absl::Status DeadlineExceeded(int64_t timeout_ms) {
    return absl::DeadlineExceededError(StrCat("broker did not answer within ", timeout_ms, " ms"));
  }

  void PublishUnary(v1::PublishRequest request, int64_t timeout_ms,
                    Callback<v1::PublishResponse> done) {
    auto* call = Start<v1::PublishRequest, v1::PublishResponse>(std::move(request), timeout_ms,
                                                                std::move(done));
    stub_->async()->Publish(&call->context, &call->request, &call->response,
                            [this, call](grpc::Status s) { Finish(call, s); });
  }

  template <typename Req, typename Resp>
  struct Call {
    grpc::ClientContext context;
    Req request;
    Resp response;
    Callback<Resp> done;
  };

  template <typename Req, typename Resp>
  Call<Req, Resp>* Start(Req request, int64_t timeout_ms, Callback<Resp> done) {
    auto* call = new Call<Req, Resp>;
    call->request = std::move(request);
    call->done = std::move(done);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(timeout_ms));
    std::lock_guard lock(mu_);
    // A publish resent by a stream's OnDone while the destructor waits.
    if (stopping_) call->context.TryCancel();
    in_flight_.insert(&call->context);
    ++calls_;
    return call;
  }

  template <typename Req, typename Resp>
  void Finish(Call<Req, Resp>* call, const grpc::Status& s) {
    if (s.ok()) {
      call->done(std::move(call->response));
    } else {
      call->done(FromGrpcStatus(s));
    }
    {
      std::lock_guard lock(mu_);
      in_flight_.erase(&call->context);
    }
    delete call;
    CallDeleted();
  }

  const GrpcBrokerClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;

  std::mutex mu_;
  std::condition_variable idle_;        // calls_ became 0
  std::condition_variable timer_wake_;  // an earlier deadline, or stopping_
  bool stopping_ = false;               // guarded by mu_
  // Calls (unary and streams) not yet deleted, and those to cancel.
  int calls_ = 0;                                       // guarded by mu_
  std::unordered_set<grpc::ClientContext*> in_flight_;  // unary calls; guarded by mu_
  // Publish stream state, all guarded by mu_.
  bool unary_publish_ = false;                  // the broker has no PublishStream
  PublishStream* stream_ = nullptr;             // the one new publishes go to, if open
  std::unordered_set<PublishStream*> streams_;  // until OnDone (ended ones too)
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending> pending_;
  std::set<std::pair<Clock::time_point, uint64_t>> by_deadline_;
  std::thread timer_;
};

}  // namespace

std::unique_ptr<BrokerClient> NewGrpcBrokerClient(std::shared_ptr<grpc::Channel> channel,
                                                  GrpcBrokerClientOptions options) {
  return std::make_unique<GrpcBrokerClient>(std::move(channel), options);
}

}  // namespace turnbroker::pcscf
