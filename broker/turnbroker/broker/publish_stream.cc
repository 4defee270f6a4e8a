// PublishStream (proto): Publish over one long-lived stream. Each request
// goes to the store exactly like a Publish call, in the order read (so two
// publishes of one username apply in the order sent); answers leave in that
// same order, one write in flight at a time. Reading pauses while
// kMaxUnanswered requests, or kMaxUnansweredCredentials credentials, wait for
// the store: a fast client is slowed by HTTP/2 flow control, never refused,
// and a stream holds a bounded amount of requests whatever their size.
#include <deque>

#include "turnbroker/broker/refuse.h"
#include "turnbroker/broker/service.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/common/tls.h"

namespace turnbroker::broker {
namespace {

constexpr size_t kMaxUnanswered = 1000;
constexpr size_t kMaxUnansweredCredentials = 100'000;

using StreamReactor = grpc::ServerBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse>;

}  // namespace

class BrokerService::PublishStreamReactor final : public StreamReactor {
 public:
  PublishStreamReactor(BrokerService* service, grpc::CallbackServerContext* context, Peer peer)
      : service_(service),
        peer_(std::move(peer)),
        caller_(CallerName(context, peer_)),
        client_(ClientKey(context, peer_)) {}

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
      unanswered_credentials_ += slot->request.credentials_size();
      read_more = RoomLocked() && !closing_;
      read_paused_ = !read_more && !closing_;
    }
    // To the store before the next read: the store keeps arrival order.
    absl::Status refused = service_->CheckPublish(peer_, client_, slot->request);
    if (!refused.ok()) {
      Answer(slot, refused);
    } else {
      service_->store_->Publish(
          &slot->request,
          [this, slot](absl::StatusOr<v1::PublishResponse> r) { Answer(slot, std::move(r)); });
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
    status_ = absl::UnavailableError(
        "broker is shutting down; reconnect and publish again what was not answered");
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
    service_->Account(0, slot->start_us, r, caller_);
    std::unique_lock lock(mu_);
    if (r.ok()) {
      *slot->answer.mutable_response() = *std::move(r);
    } else {
      slot->answer.set_code(ToCodeNumber(r.status()));
      slot->answer.set_message(std::string(r.status().message()));
    }
    slot->answered = true;
    // In order: an answer leaves once every earlier one has.
    while (!slots_.empty() && slots_.front()->answered) {
      ready_.push_back(std::move(slots_.front()->answer));
      unanswered_credentials_ -= slots_.front()->request.credentials_size();
      delete slots_.front();
      slots_.pop_front();
    }
    WriteNextLocked();
    bool resume = read_paused_ && RoomLocked() && !closing_ && !cancelled_;
    if (resume) read_paused_ = false;
    MaybeFinish(lock);
    if (resume) StartRead(&in_);
  }

  // Whether another request may be read (bounded by count and credentials).
  bool RoomLocked() const {
    return slots_.size() < kMaxUnanswered && unanswered_credentials_ < kMaxUnansweredCredentials;
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
    grpc::Status status = ToGrpcStatus(status_);
    lock.unlock();
    Finish(status);
  }

  BrokerService* const service_;
  const Peer peer_;
  const std::string caller_;     // for logs
  const std::string client_;     // the rate limit's key
  v1::PublishStreamRequest in_;  // the read in flight

  std::mutex mu_;
  std::deque<Slot*> slots_;                      // read, in order, not yet written
  std::deque<v1::PublishStreamResponse> ready_;  // answers to write, in order
  bool writing_ = false;
  size_t unanswered_credentials_ = 0;  // in slots_
  bool read_paused_ = false;
  bool reads_done_ = false;
  bool closing_ = false;
  bool cancelled_ = false;
  bool broken_ = false;  // a write failed: the client is gone
  bool finishing_ = false;
  absl::Status status_;  // how the stream ends
};

StreamReactor* BrokerService::OpenPublishStream(grpc::CallbackServerContext* context, Peer peer) {
  auto* stream = new PublishStreamReactor(this, context, std::move(peer));
  {
    std::lock_guard lock(streams_mu_);
    if (streams_closed_) {
      delete stream;
      return Refuse<StreamReactor>(absl::UnavailableError("broker is shutting down"));
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
