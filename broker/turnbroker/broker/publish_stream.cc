// PublishStream (proto): Publish over one long-lived stream. Each request
// goes to the store exactly like a Publish call, in the order read (so two
// publishes of one username apply in the order sent); answers leave in that
// same order, one write in flight at a time. Reading pauses while
// kMaxUnanswered requests wait for the store: a fast client is slowed by
// HTTP/2 flow control, never refused.
#include "turnbroker/broker/service.h"

#include <deque>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/common/tls.h"

namespace turnbroker::broker {
namespace {

constexpr size_t kMaxUnanswered = 1000;

using StreamReactor = grpc::ServerBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse>;

// A stream refused before it starts (role).
class RefusedStream final : public StreamReactor {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

class BrokerService::PublishStreamReactor final : public StreamReactor {
 public:
  PublishStreamReactor(BrokerService* service, grpc::CallbackServerContext* context)
      : service_(service),
        peer_(context->peer()),
        client_(service->limiter_ ? ClientKey(context) : std::string()) {}

  // After registering with the service (CloseStreams may see it from then).
  void Start() { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::unique_lock lock(mu_);
      reads_done_ = true;
      MaybeFinish(lock);
      return;
    }
    auto* slot = new Slot;
    slot->answer.set_id(in_.id());
    slot->request = std::move(*in_.mutable_request());
    slot->start_us = MonotonicMicros();
    in_.Clear();
    bool read_more;
    {
      std::lock_guard lock(mu_);
      if (finishing_) {  // read just as the stream ended: never applied
        delete slot;
        return;
      }
      slots_.push_back(slot);
      read_more = slots_.size() < kMaxUnanswered && !closing_;
      read_paused_ = !read_more && !closing_;
    }
    // To the store before the next read: the store keeps arrival order.
    absl::Status limited = service_->Limit(client_, slot->request.credentials_size());
    if (!limited.ok()) {
      Answer(slot, limited);
    } else {
      service_->store_->Publish(&slot->request, [this, slot](absl::StatusOr<v1::PublishResponse> r) {
        Answer(slot, std::move(r));
      });
    }
    if (read_more) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    ready_.pop_front();
    writing_ = false;
    if (!ok) broken_ = true;
    WriteNextLocked();
    MaybeFinish(lock);
  }

  void OnCancel() override {
    std::unique_lock lock(mu_);
    cancelled_ = true;
    MaybeFinish(lock);
  }

  void OnDone() override {
    {
      std::lock_guard lock(service_->streams_mu_);
      service_->streams_.erase(this);
    }
    service_->CountPublishStream(-1);
    delete this;
  }

  // Draining: no more reads; ends with UNAVAILABLE once everything read is
  // answered and written.
  void Close() {
    std::unique_lock lock(mu_);
    if (closing_) return;
    closing_ = true;
    status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "broker is shutting down; reconnect and publish again what was not "
                           "answered");
    MaybeFinish(lock);
  }

 private:
  struct Slot {
    v1::PublishRequest request;
    v1::PublishStreamResponse answer;
    int64_t start_us = 0;
    bool answered = false;
  };

  void Answer(Slot* slot, absl::StatusOr<v1::PublishResponse> r) {
    service_->Account(0, slot->start_us, r, peer_);
    std::unique_lock lock(mu_);
    if (r.ok()) {
      *slot->answer.mutable_response() = *std::move(r);
    } else {
      grpc::Status g = ToGrpcStatus(r.status());
      slot->answer.set_code(static_cast<int32_t>(g.error_code()));
      slot->answer.set_message(g.error_message());
    }
    slot->answered = true;
    // In order: an answer leaves once every earlier one has.
    while (!slots_.empty() && slots_.front()->answered) {
      ready_.push_back(std::move(slots_.front()->answer));
      delete slots_.front();
      slots_.pop_front();
    }
    WriteNextLocked();
    bool resume = read_paused_ && slots_.size() < kMaxUnanswered && !closing_ && !cancelled_;
    if (resume) read_paused_ = false;
    MaybeFinish(lock);
    if (resume) StartRead(&in_);
  }

  void WriteNextLocked() {
    if (broken_ || cancelled_) ready_.clear();
    if (writing_ || ready_.empty()) return;
    writing_ = true;
    StartWrite(&ready_.front());
  }

  // Finishes once nothing more will be read and everything read is
  // answered and written (or can no longer be). Unlocks before Finish:
  // OnDone may run at once and delete this.
  void MaybeFinish(std::unique_lock<std::mutex>& lock) {
    if (finishing_) return;
    bool no_more_reads = reads_done_ || closing_ || cancelled_ || broken_;
    if (!no_more_reads || !slots_.empty() || writing_ || !ready_.empty()) return;
    finishing_ = true;
    grpc::Status status = status_;
    lock.unlock();
    Finish(status);
  }

  BrokerService* const service_;
  const std::string peer_;
  const std::string client_;  // the rate limit's key
  v1::PublishStreamRequest in_;  // the read in flight

  std::mutex mu_;
  std::deque<Slot*> slots_;                     // read, in order, not yet written
  std::deque<v1::PublishStreamResponse> ready_;  // answers to write, in order
  bool writing_ = false;
  bool read_paused_ = false;
  bool reads_done_ = false;
  bool closing_ = false;
  bool cancelled_ = false;
  bool broken_ = false;  // a write failed: the client is gone
  bool finishing_ = false;
  grpc::Status status_;  // how the stream ends
};

StreamReactor* BrokerService::RefuseStream(const absl::Status& status) {
  return new RefusedStream(ToGrpcStatus(status));
}

StreamReactor* BrokerService::OpenPublishStream(grpc::CallbackServerContext* context) {
  auto* stream = new PublishStreamReactor(this, context);
  {
    std::lock_guard lock(streams_mu_);
    if (streams_closed_) {
      delete stream;
      return new RefusedStream(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker is shutting down"));
    }
    streams_.insert(stream);
  }
  CountPublishStream(+1);
  stream->Start();
  return stream;
}

void BrokerService::CloseStreams() {
  std::lock_guard lock(streams_mu_);
  streams_closed_ = true;
  for (PublishStreamReactor* s : streams_) s->Close();
}

}  // namespace turnbroker::broker
