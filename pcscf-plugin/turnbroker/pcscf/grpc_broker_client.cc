// The gRPC BrokerClient. Revoke and GetStatus are unary calls; Publish goes
// over one long-lived PublishStream (see GrpcBrokerClientOptions).
//
// Threads: every call uses the completion-queue API on one queue, drained
// by one thread of this client (queue_thread_). It is the only thread that
// polls for this client's calls, so an answer wakes one thread. gRPC 1.51's
// callback API polls from two threads of its own that hand completions to
// each other: in the agent's benchmark, 9.4 context switches per request
// against 5.7 now, at the same CPU and latency (docs/pcscf-plugin.md). The same
// thread keeps the deadlines of stream requests (a stream has none per
// message) and runs the callers' `done`, except a failure found before
// anything was sent (stopping), which runs on the caller's thread.
//
// Locking: mu_ guards the client and its streams. gRPC operations are
// started with it released (a Write may do transport work inline); the
// completion-queue API never runs our code inside an operation.
#include <grpc/support/time.h>
#include <grpcpp/alarm.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
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

// Monotonic µs of the client's clock (GrpcBrokerClientOptions::clock);
// kNever: no wake-up due.
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// A completion-queue tag: what to do when the operation completes.
using Handler = std::function<void(bool ok)>;

class GrpcBrokerClient final : public BrokerClient {
 public:
  GrpcBrokerClient(std::shared_ptr<grpc::Channel> channel, GrpcBrokerClientOptions options)
      : options_(options),
        channel_(std::move(channel)),
        stub_(v1::CredentialBroker::NewStub(channel_)) {
    poke_handler_ = [this](bool) {
      std::lock_guard lock(mu_);
      poke_armed_ = false;
    };
    queue_thread_ = std::thread([this] { RunQueue(); });
  }

  ~GrpcBrokerClient() override {
    if (std::this_thread::get_id() == queue_thread_.get_id()) {
      // From a `done`: waiting for the calls would wait for this one.
      std::fprintf(stderr, "turnbroker: BrokerClient destroyed from its own callback\n");
      std::abort();
    }
    {
      std::unique_lock lock(mu_);
      stopping_ = true;
      for (grpc::ClientContext* c : in_flight_) c->TryCancel();
      for (PublishStream* s : streams_) s->context.TryCancel();
      // A stream's Finish fails (or resends) every request pending on it.
      idle_.wait(lock, [this] { return calls_ == 0; });
      if (poke_armed_) poke_.Cancel();  // its tag still comes back
    }
    queue_.Shutdown();
    queue_thread_.join();
  }

  void Publish(v1::PublishRequest request, int64_t timeout_ms,
               Callback<v1::PublishResponse> done) override {
    PublishStream* open = nullptr;    // a new stream, started here
    PublishStream* write = nullptr;   // a stream whose next write starts here
    PublishStream* retire = nullptr;  // an old stream to half-close here
    bool unary, stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
      unary = !options_.publish_stream || unary_publish_;
      if (!unary && !stopping) {
        if (stream_ != nullptr && options_.stream_max_age_ms > 0 &&
            NowUs() - stream_->opened_us >= options_.stream_max_age_ms * 1000) {
          retire = RetireLocked(stream_);
        }
        if (stream_ == nullptr) open = stream_ = NewStreamLocked();
        const uint64_t id = next_id_++;
        const int64_t deadline = NowUs() + timeout_ms * 1000;
        by_deadline_.emplace(deadline, id);
        WakeByLocked(deadline);
        pending_.emplace(
            id, Pending{std::move(request), std::move(done), deadline, timeout_ms, stream_});
        stream_->queue.push_back(id);
        if (NextWriteLocked(stream_)) write = stream_;
      }
    }
    if (stopping) return done(absl::UnavailableError("broker client shutting down"));
    if (unary) return PublishUnary(std::move(request), timeout_ms, std::move(done));
    if (open != nullptr) {
      open->rw = stub_->PrepareAsyncPublishStream(&open->context, &queue_);
      open->rw->StartCall(&open->on_start);
    }
    if (write != nullptr) write->rw->Write(write->write, &write->on_write);
    if (retire != nullptr) retire->rw->WritesDone(&retire->on_write);
  }

  void Revoke(v1::RevokeRequest request, int64_t timeout_ms,
              Callback<v1::RevokeResponse> done) override {
    StartUnary<v1::RevokeRequest, v1::RevokeResponse>(
        std::move(request), timeout_ms, std::move(done),
        [this](grpc::ClientContext* c, const v1::RevokeRequest& r) {
          return stub_->PrepareAsyncRevoke(c, r, &queue_);
        });
  }

  void GetStatus(int64_t timeout_ms, Callback<v1::GetStatusResponse> done) override {
    StartUnary<v1::GetStatusRequest, v1::GetStatusResponse>(
        v1::GetStatusRequest(), timeout_ms, std::move(done),
        [this](grpc::ClientContext* c, const v1::GetStatusRequest& r) {
          return stub_->PrepareAsyncGetStatus(c, r, &queue_);
        });
  }

 private:
  using StreamRw =
      grpc::ClientAsyncReaderWriter<v1::PublishStreamRequest, v1::PublishStreamResponse>;

  // One PublishStream call. Its fields are guarded by the client's mu_,
  // except `rw` (set once, before any of its operations completes) and the
  // buffers of the operations in flight (`write`, `read`, `status`).
  struct PublishStream {
    grpc::ClientContext context;
    std::unique_ptr<StreamRw> rw;
    v1::PublishStreamRequest write;  // the write in flight
    v1::PublishStreamResponse read;  // the read pending
    grpc::Status status;             // filled by Finish
    std::deque<uint64_t> queue;      // ids waiting for the write in flight
    bool started = false;            // StartCall completed
    bool writing = false;
    bool reading = false;
    bool ended = false;      // no write starts any more
    bool finishing = false;  // Finish called: its tag is the last one
    int64_t opened_us = 0;   // the client's monotonic time
    // Past stream_max_age_ms: writes what it has, then WritesDone (which
    // counts as a write: `writing`), then reads until the broker ends it.
    bool retiring = false;
    bool writes_done = false;
    Handler on_start, on_write, on_read, on_finish;
  };

  // A Publish sent on a stream and not yet answered.
  struct Pending {
    // Kept until answered, not only until written: a broker without
    // PublishStream gets it again as a unary call.
    v1::PublishRequest request;
    Callback<v1::PublishResponse> done;
    int64_t deadline_us;  // the client's monotonic time
    int64_t timeout_ms;
    PublishStream* stream;
  };

  int64_t NowUs() const { return options_.clock->MonotonicMicros(); }

  // The completion queue's deadline for a wake-up at `wake` (NowUs() time).
  gpr_timespec RealDeadline(int64_t wake) const {
    if (wake == kNever) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    const int64_t wait_us = options_.clock->RealWaitMicros(std::max<int64_t>(wake - NowUs(), 0));
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_micros(wait_us, GPR_TIMESPAN));
  }

  // The queue thread: completions, and the stream requests' deadlines.
  void RunQueue() {
    while (true) {
      int64_t wake;
      {
        std::lock_guard lock(mu_);
        // With nothing pending keep the last wake-up time: a publish with a
        // later deadline then needs no poke (the next one is usually
        // answered before its deadline, so the set is often empty).
        if (!by_deadline_.empty()) {
          wake_at_ = by_deadline_.begin()->first;
        } else if (wake_at_ <= NowUs()) {
          wake_at_ = kNever;
        }
        wake = wake_at_;
      }
      void* tag = nullptr;
      bool ok = false;
      const auto got = queue_.AsyncNext(&tag, &ok, RealDeadline(wake));
      if (got == grpc::CompletionQueue::SHUTDOWN) return;
      if (got == grpc::CompletionQueue::GOT_EVENT) (*static_cast<Handler*>(tag))(ok);
      ExpireDue();
    }
  }

  // With mu_ held: makes the queue thread look at the deadlines by
  // `deadline`, or up to kDeadlineSlack after it. Deadlines arrive in ms
  // (rounded down), so one a little before the previous is common; the
  // slack spares the poke.
  static constexpr int64_t kDeadlineSlackUs = 5'000;
  void WakeByLocked(int64_t deadline) {
    if (deadline + kDeadlineSlackUs >= wake_at_) return;
    wake_at_ = deadline;
    if (poke_armed_) return;  // it wakes now and reads wake_at_ again
    poke_armed_ = true;
    poke_.Set(&queue_, gpr_now(GPR_CLOCK_MONOTONIC), &poke_handler_);
  }

  // Fails each stream request whose deadline passed. A late answer then
  // finds nothing pending.
  void ExpireDue() {
    std::vector<Pending> expired;
    {
      std::lock_guard lock(mu_);
      const int64_t now = NowUs();
      while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
        auto it = pending_.find(by_deadline_.begin()->second);
        expired.push_back(std::move(it->second));
        pending_.erase(it);
        by_deadline_.erase(by_deadline_.begin());
      }
    }
    for (Pending& p : expired) p.done(DeadlineExceeded(p.timeout_ms));
  }

  PublishStream* NewStreamLocked() {
    auto* s = new PublishStream;
    s->opened_us = NowUs();
    s->on_start = [this, s](bool ok) { OnStreamStart(s, ok); };
    s->on_write = [this, s](bool ok) { OnStreamWrite(s, ok); };
    s->on_read = [this, s](bool ok) { OnStreamRead(s, ok); };
    s->on_finish = [this, s](bool) { OnStreamFinish(s); };
    streams_.insert(s);
    ++calls_;
    return s;
  }

  // Takes the next id of `s` still pending (expired ones are skipped: their
  // caller has its answer) into the write buffer. True: start that write.
  bool NextWriteLocked(PublishStream* s) {
    if (!s->started || s->writing || s->ended) return false;
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

  // `s` takes no new requests (the next Publish opens a new stream). True:
  // it has nothing left to write, so the caller starts WritesDone.
  PublishStream* RetireLocked(PublishStream* s) {
    s->retiring = true;
    if (stream_ == s) stream_ = nullptr;
    return HalfCloseLocked(s) ? s : nullptr;
  }

  // True once, when a retiring `s` has written everything: WritesDone next.
  bool HalfCloseLocked(PublishStream* s) {
    if (!s->retiring || !s->started || s->writing || s->ended || s->writes_done ||
        !s->queue.empty()) {
      return false;
    }
    s->writes_done = true;
    s->writing = true;  // until WritesDone completes (on_write)
    return true;
  }

  // No write starts on `s` any more; the next Publish opens a new stream.
  void EndLocked(PublishStream* s) {
    s->ended = true;
    if (stream_ == s) stream_ = nullptr;
  }

  // True once, when `s` is over and idle: the caller calls Finish.
  bool FinishLocked(PublishStream* s) {
    if (!s->ended || s->writing || s->reading || s->finishing) return false;
    s->finishing = true;
    return true;
  }

  // The operations a reaction decided on, started with mu_ released.
  void StartOps(PublishStream* s, bool read, bool write, bool half_close, bool finish) {
    if (read) s->rw->Read(&s->read, &s->on_read);
    if (write) s->rw->Write(s->write, &s->on_write);
    if (half_close) s->rw->WritesDone(&s->on_write);
    if (finish) s->rw->Finish(&s->status, &s->on_finish);
  }

  void OnStreamStart(PublishStream* s, bool ok) {
    bool write, half_close, finish;
    {
      std::lock_guard lock(mu_);
      s->started = true;
      if (ok) {
        s->reading = true;
      } else {
        EndLocked(s);  // the call is over; Finish says how
      }
      write = NextWriteLocked(s);
      half_close = !write && HalfCloseLocked(s);
      finish = FinishLocked(s);
    }
    StartOps(s, ok, write, half_close, finish);
  }

  // A Write or the WritesDone of a retiring stream completed.
  void OnStreamWrite(PublishStream* s, bool ok) {
    bool write, half_close, finish;
    {
      std::lock_guard lock(mu_);
      s->writing = false;
      if (!ok) EndLocked(s);
      write = NextWriteLocked(s);
      half_close = !write && HalfCloseLocked(s);
      finish = FinishLocked(s);
    }
    StartOps(s, false, write, half_close, finish);
  }

  void OnStreamRead(PublishStream* s, bool ok) {
    if (!ok) {
      bool finish;
      {
        std::lock_guard lock(mu_);
        s->reading = false;
        EndLocked(s);
        finish = FinishLocked(s);
      }
      StartOps(s, false, false, false, finish);
      return;
    }
    const uint64_t id = s->read.id();
    absl::StatusOr<v1::PublishResponse> result =
        s->read.code() == 0
            ? absl::StatusOr<v1::PublishResponse>(std::move(*s->read.mutable_response()))
            : FromCodeNumber(s->read.code(), s->read.message());
    Callback<v1::PublishResponse> done;
    {
      std::lock_guard lock(mu_);
      // Not pending: it expired (its caller has DEADLINE_EXCEEDED already).
      if (auto it = pending_.find(id); it != pending_.end() && it->second.stream == s) {
        done = std::move(it->second.done);
        by_deadline_.erase({it->second.deadline_us, id});
        pending_.erase(it);
      }
    }
    StartOps(s, true, false, false, false);
    if (done) done(std::move(result));
  }

  // The last completion of `s`: nothing of it is pending after this.
  void OnStreamFinish(PublishStream* s) {
    const grpc::Status& status = s->status;
    std::vector<Pending> left;
    bool resend;
    {
      std::lock_guard lock(mu_);
      // An older broker: stay unary from now on (for this client's life).
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) unary_publish_ = true;
      resend = unary_publish_;
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.stream != s) {
          ++it;
          continue;
        }
        by_deadline_.erase({it->second.deadline_us, it->first});
        left.push_back(std::move(it->second));
        it = pending_.erase(it);
      }
    }
    // The map is ordered by id: resent in the order they were published.
    const absl::Status failure =
        status.ok() ? absl::UnavailableError("publish stream ended") : FromGrpcStatus(status);
    for (Pending& p : left) {
      const int64_t left_ms = (p.deadline_us - NowUs() + 999) / 1000;
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

  // Each call's ClientContext holds a reference to the channel; the
  // destructor waits until every call object is deleted and drops the last
  // one itself (gRPC 1.51 crashes when the last goes on one of its threads
  // while the client is being destroyed).
  void CallDeleted() {
    std::lock_guard lock(mu_);
    // Under the lock: the destructor may return as soon as it is released.
    if (--calls_ == 0) idle_.notify_all();
  }

  static absl::Status DeadlineExceeded(int64_t timeout_ms) {
    return absl::DeadlineExceededError(StrCat("broker did not answer within ", timeout_ms, " ms"));
  }

  void PublishUnary(v1::PublishRequest request, int64_t timeout_ms,
                    Callback<v1::PublishResponse> done) {
    StartUnary<v1::PublishRequest, v1::PublishResponse>(
        std::move(request), timeout_ms, std::move(done),
        [this](grpc::ClientContext* c, const v1::PublishRequest& r) {
          return stub_->PrepareAsyncPublish(c, r, &queue_);
        });
  }

  template <typename Req, typename Resp>
  struct UnaryCall {
    grpc::ClientContext context;
    Req request;
    Resp response;
    grpc::Status status;
    Callback<Resp> done;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
    Handler on_finish;
  };

  template <typename Req, typename Resp, typename Prepare>
  void StartUnary(Req request, int64_t timeout_ms, Callback<Resp> done, Prepare prepare) {
    auto* call = new UnaryCall<Req, Resp>;
    call->request = std::move(request);
    call->done = std::move(done);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(timeout_ms));
    call->on_finish = [this, call](bool) { FinishUnary(call); };
    {
      std::lock_guard lock(mu_);
      // A publish resent by a stream's Finish while the destructor waits.
      if (stopping_) call->context.TryCancel();
      in_flight_.insert(&call->context);
      ++calls_;
    }
    call->reader = prepare(&call->context, call->request);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, &call->on_finish);
  }

  template <typename Req, typename Resp>
  void FinishUnary(UnaryCall<Req, Resp>* call) {
    if (call->status.ok()) {
      call->done(std::move(call->response));
    } else {
      call->done(FromGrpcStatus(call->status));
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
  grpc::CompletionQueue queue_;
  std::thread queue_thread_;

  std::mutex mu_;
  std::condition_variable idle_;  // calls_ became 0
  bool stopping_ = false;         // guarded by mu_
  // When the queue thread next looks at the deadlines; poke_ wakes it
  // earlier. All guarded by mu_.
  int64_t wake_at_ = kNever;
  grpc::Alarm poke_;
  bool poke_armed_ = false;
  Handler poke_handler_;
  // Calls (unary and streams) not yet deleted, and those to cancel.
  int calls_ = 0;                                       // guarded by mu_
  std::unordered_set<grpc::ClientContext*> in_flight_;  // unary calls; guarded by mu_
  // Publish stream state, all guarded by mu_.
  bool unary_publish_ = false;                  // the broker has no PublishStream
  PublishStream* stream_ = nullptr;             // the one new publishes go to, if open
  std::unordered_set<PublishStream*> streams_;  // until Finish (ended ones too)
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending> pending_;
  std::set<std::pair<int64_t, uint64_t>> by_deadline_;
};

}  // namespace

std::unique_ptr<BrokerClient> NewGrpcBrokerClient(std::shared_ptr<grpc::Channel> channel,
                                                  GrpcBrokerClientOptions options) {
  return std::make_unique<GrpcBrokerClient>(std::move(channel), options);
}

}  // namespace turnbroker::pcscf
