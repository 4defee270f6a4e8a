#include "turnbroker/broker/watch.h"

#include <algorithm>
#include <optional>

#include "turnbroker/broker/refuse.h"
#include "turnbroker/broker/wire.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/common/tls.h"

namespace turnbroker::broker {
namespace {

using Marker = v1::WatchResponse::Marker;
using Reason = v1::WatchResponse::SnapshotReason;

constexpr uint32_t kEvents = v1::WatchResponse::kEventsFieldNumber;
constexpr uint32_t kRevision = v1::WatchResponse::kRevisionFieldNumber;
constexpr uint32_t kEpoch = v1::WatchResponse::kEpochFieldNumber;
constexpr uint32_t kMarker = v1::WatchResponse::kMarkerFieldNumber;
constexpr uint32_t kSnapshotReason = v1::WatchResponse::kSnapshotReasonFieldNumber;

// Idle streams are checked for a PROGRESS marker this often (the hub
// thread's only job; new revisions are pushed by Notify).
constexpr int64_t kTickMs = 50;

grpc::ByteBuffer ToByteBuffer(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

const char* ReasonName(Reason reason) {
  return v1::WatchResponse::SnapshotReason_Name(reason).c_str();
}

}  // namespace

absl::Status ValidateWatchRequest(const v1::WatchRequest& r, const WatchOptions& options) {
  // Bounded before anything walks them: a stream's filter is consulted for
  // every event, on the commit thread.
  if (static_cast<size_t>(r.realms_size()) > kMaxWatchRealms) {
    return absl::InvalidArgumentError(
        StrCat("realms: ", r.realms_size(), " entries, at most ", kMaxWatchRealms));
  }
  if (static_cast<size_t>(r.kinds_size()) > kMaxWatchKinds) {
    return absl::InvalidArgumentError(
        StrCat("kinds: ", r.kinds_size(), " entries, at most ", kMaxWatchKinds));
  }
  for (int i = 0; i < r.realms_size(); ++i) {
    if (auto s = ValidateRealm(r.realms(i), StrCat("realms[", i, "]")); !s.ok()) return s;
  }
  if (!r.farm().empty()) {
    if (auto s = ValidateScope(r.farm(), "farm"); !s.ok()) return s;
  }
  if (r.resume_revision() != 0 && r.resume_epoch().empty()) {
    return absl::InvalidArgumentError(
        "resume_epoch: required with resume_revision (the epoch the revision "
        "belongs to)");
  }
  if (r.progress_interval_ms() != 0 &&
      r.progress_interval_ms() < options.min_progress_interval_ms) {
    return absl::InvalidArgumentError(StrCat("progress_interval_ms: ", r.progress_interval_ms(),
                                             " is below the minimum ",
                                             options.min_progress_interval_ms));
  }
  for (int i = 0; i < r.kinds_size(); ++i) {
    if (!v1::RecordKind_IsValid(r.kinds(i)) || r.kinds(i) == v1::RECORD_KIND_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          StrCat("kinds[", i, "]: unknown record kind ", static_cast<int>(r.kinds(i))));
    }
  }
  if (r.watcher_name().size() > 128) {
    return absl::InvalidArgumentError("watcher_name: too long, at most 128 bytes");
  }
  return absl::OkStatus();
}

struct WatchHub::Metrics {
  explicit Metrics(MetricsRegistry* r)
      : opened(r->AddCounter("turnbroker_watch_streams_opened_total", "Watch streams opened")),
        events(r->AddCounter("turnbroker_watch_events_sent_total",
                             "Events sent to watchers (snapshot records included)")),
        frames(r->AddCounter("turnbroker_watch_frames_sent_total", "Watch frames sent")),
        bytes(r->AddCounter("turnbroker_watch_bytes_sent_total", "Watch frame bytes sent")),
        snapshots(r->AddCounter("turnbroker_watch_snapshots_total",
                                "Snapshots started (new watchers, resyncs)")),
        too_slow(r->AddCounter("turnbroker_watch_too_slow_total",
                               "Streams that fell behind the retained history")) {}
  Counter *opened, *events, *frames, *bytes, *snapshots, *too_slow;
};

// One Watch stream (see watch.h). Pump() may be called from any thread;
// everything it touches is guarded by mu_.
class WatchStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // `client`: what --max-watchers-per-client counts (WatchHub::Open).
  WatchStream(WatchHub* hub, v1::WatchRequest request, std::string peer, std::string client,
              uint32_t roles)
      : hub_(hub),
        state_(hub->state_),
        request_(std::move(request)),
        peer_(std::move(peer)),
        client_(std::move(client)),
        progress_interval_ms_(request_.progress_interval_ms() != 0
                                  ? request_.progress_interval_ms()
                                  : hub->options_.default_progress_interval_ms) {
    for (int k : request_.kinds()) {
      if (k == v1::RECORD_KIND_LONG_TERM_CREDENTIAL) wants_credentials_ = true;
      if (k == v1::RECORD_KIND_SHARED_SECRET) wants_secrets_ = true;
    }
    if (request_.kinds().empty()) wants_credentials_ = true;
    // A TURN sync ends a revoked username's live allocations whatever it
    // watches (approach 1 too); a minter has no use for revocations.
    wants_revocations_ = (roles & (kRoleSubscriber | kRoleOperator)) != 0;
    secret_bytes_ = (roles & (kRoleSubscriber | kRoleMinter)) != 0;
    // A hash set: Wants() runs for every event, often on the commit thread,
    // and must not cost more for a longer (client-chosen) list.
    realms_.insert(request_.realms().begin(), request_.realms().end());
  }

  const std::string& client() const { return client_; }

  // Decides where the stream starts. Called once, before it is shared
  // (WatchHub::Open, under the hub's mutex, before it joins streams_).
  void Start() {
    std::lock_guard<std::mutex> lock(mu_);
    generation_ = state_.generation();  // before anything is read
    Revision head = state_.head();
    Revision resume = request_.resume_revision();
    Reason reason = v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED;
    if (resume == 0)
      reason = v1::WatchResponse::NO_RESUME_POINT;
    else if (request_.resume_epoch() != state_.epoch())
      reason = v1::WatchResponse::EPOCH_CHANGED;
    else if (resume > head)
      reason = v1::WatchResponse::REVISION_AHEAD;
    else if (resume + 1 < state_.history_first())
      reason = v1::WatchResponse::HISTORY_COMPACTED;
    LogInfo("watch started")
        .Kv("watcher", request_.watcher_name())
        .Kv("peer", peer_)
        .Kv("resume", resume)
        .Kv("head", head)
        .Kv("start", reason == v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED ? "replay"
                                                                              : ReasonName(reason));
    if (reason != v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED) {
      BeginSnapshotLocked(reason);
    } else {
      cursor_ = resume;
      synced_pending_ = true;
    }
    last_sent_ms_ = state_.clock()->NowMs();
  }

  // Sends the next frame if none is in flight and there is one to send.
  // True if the stream has more to do than one call does (a snapshot whose
  // last chunk of the live set held nothing for it): pump it again soon.
  bool Pump() {
    std::lock_guard<std::mutex> lock(mu_);
    return PumpLocked();
  }

  // For a new head revision, on the commit thread: live streams only. A
  // stream in a snapshot walks the live set (and the tombstones) on the hub thread or after its
  // own writes, never on the thread that commits.
  void PumpLive() {
    std::lock_guard<std::mutex> lock(mu_);
    if (begin_pending_ || scanning_ || tombstoning_) return;
    PumpLocked();
  }

  // Ends the stream (broker shutting down).
  void Close(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(std::move(status));
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    frame_.Clear();
    // A finish asked for while this write was in flight (cancel, shutdown)
    // comes first, whether or not the write made it.
    if (pending_finish_) {
      DoFinishLocked();
      return;
    }
    if (!ok) {
      FinishLocked(absl::UnavailableError("write failed"));
      return;
    }
    PumpLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(absl::CancelledError("cancelled"));
  }

  void OnDone() override {
    Revision cursor = 0;
    uint64_t sent = 0;
    {
      // Written under mu_ by the last OnWriteDone, on another gRPC thread.
      std::lock_guard<std::mutex> lock(mu_);
      cursor = cursor_;
      sent = events_sent_;
    }
    LogInfo("watch ended")
        .Kv("watcher", request_.watcher_name())
        .Kv("peer", peer_)
        .Kv("revision", cursor)
        .Kv("events_sent", sent);
    hub_->Remove(this);
    delete this;
  }

 private:
  bool WantsSecret(const v1::SharedSecret& s) const {
    if (!wants_secrets_) return false;
    return realms_.empty() || realms_.contains(s.realm());
  }

  // The known secrets this stream wants, for its snapshot.
  void ReadSnapshotSecretsLocked() {
    snapshot_secrets_.clear();
    secrets_sent_ = 0;
    if (!wants_secrets_) return;
    for (SecretEntryRef& e : state_.Secrets()) {
      if (WantsSecret(e->secret())) snapshot_secrets_.push_back(std::move(e));
    }
  }

  bool Wants(const Record& r) const {
    if (!wants_credentials_) return false;
    std::string_view realm = r.realm();
    if (!realms_.empty() && !realms_.contains(absl::string_view(realm.data(), realm.size())))
      return false;
    if (r.scoped() && !request_.all_scopes() &&
        (request_.farm().empty() || !r.HasScope(request_.farm())))
      return false;
    return true;
  }

  void BeginSnapshotLocked(Reason reason) {
    begin_pending_ = true;
    reason_ = reason;
    hub_->metrics_->snapshots->Inc();
    if (reason == v1::WatchResponse::WATCHER_TOO_SLOW) hub_->metrics_->too_slow->Inc();
  }

  void AppendFrameTrailer(std::string* out, Revision revision, Marker marker, Reason reason) {
    wire::PutVarintField(out, kRevision, revision);
    wire::PutBytes(out, kEpoch, state_.epoch());
    wire::PutVarintField(out, kMarker, static_cast<uint64_t>(marker));
    wire::PutVarintField(out, kSnapshotReason, static_cast<uint64_t>(reason));
  }

  // `size`: PutEventSize(r, revision).
  static void AppendPut(std::string* out, const Record& r, Revision revision, size_t size) {
    wire::PutTag(out, kEvents, wire::kLengthDelimited);
    wire::PutVarint(out, size);
    AppendPutEvent(out, r, revision);
  }

  // A revoked username as a revocation by username (no revoked_at_ms: it is
  // not news), encoded as an Event.
  static std::string TombstoneEvent(std::string_view realm, std::string_view username,
                                    Revision revision) {
    v1::Event e;
    e.set_revision(revision);
    v1::CredentialRef* ref = e.mutable_revoke()->mutable_selector()->mutable_username();
    ref->set_realm(std::string(realm));
    ref->set_username(std::string(username));
    e.mutable_revoke()->set_reason("revoked before this snapshot");
    return e.SerializeAsString();
  }

  // The most a frame's trailer (AppendFrameTrailer) takes.
  size_t TrailerBound() const {
    return 3 * (1 + wire::VarintSize(UINT64_MAX)) +
           wire::BytesFieldSize(kEpoch, state_.epoch().size());
  }

  // Ends one chunk of a snapshot's walk (the live set, the tombstones):
  // true, the frame, if it holds events; false while the walk goes on with
  // none wanted in this chunk (the next one on the next pump, so no call
  // walks more than one chunk, whatever the filter lets through); nullopt
  // once the walk is over with nothing to send: go on.
  std::optional<bool> EndWalkChunk(std::string* out, size_t events, bool walking) {
    events_in_frame_ = events;
    if (events > 0) {
      AppendFrameTrailer(out, 0, v1::WatchResponse::EVENTS,
                         v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED);
      return true;
    }
    if (walking) {
      more_ = true;
      return false;
    }
    return std::nullopt;
  }

  // Builds the next frame into `out`; false if there is nothing to send.
  // A frame holds at most max_frame_events events and max_frame_bytes bytes,
  // trailer included, except that an event too large for any frame goes
  // alone in one (the server's message size limit, 16 MiB by default, is
  // far above the largest event a request can make).
  bool BuildFrameLocked(std::string* out) {
    const WatchOptions& opt = hub_->options_;
    if (begin_pending_) {
      begin_pending_ = false;
      in_resync_ = true;
      scan_after_ = 0;
      snapshot_base_ = state_.head();
      // A watcher of secrets only (an agent) skips the walk of the live set.
      scanning_ = wants_credentials_;
      if (!scanning_) {
        cursor_ = snapshot_base_;
        synced_pending_ = true;
      }
      // Secrets are read after the base: each is sent as last written, and
      // the replay from the base that follows the snapshot re-sends what
      // changed meanwhile, in order (so at SYNCED the watcher holds exactly
      // the state at its revision).
      ReadSnapshotSecretsLocked();
      AppendFrameTrailer(out, 0, v1::WatchResponse::SNAPSHOT_BEGIN, reason_);
      return true;
    }
    size_t events = 0;
    const size_t trailer = TrailerBound();
    // Whether an event whose encoding takes `payload` bytes joins this frame.
    auto fits = [&](size_t payload) {
      if (events == 0) return true;
      return events < opt.max_frame_events &&
             out->size() + wire::BytesFieldSize(kEvents, payload) + trailer <= opt.max_frame_bytes;
    };
    if (secrets_sent_ < snapshot_secrets_.size()) {
      // Shared secrets first: few, and what an agent needs to mint.
      while (secrets_sent_ < snapshot_secrets_.size()) {
        const SecretChange& c = *snapshot_secrets_[secrets_sent_]->last;
        const std::string& event = secret_bytes_ ? c.event_wire : c.redacted_wire;
        if (!fits(event.size())) break;
        wire::PutBytesAlways(out, kEvents, event);
        ++secrets_sent_;
        ++events;
      }
      if (secrets_sent_ == snapshot_secrets_.size()) snapshot_secrets_.clear(), secrets_sent_ = 0;
      events_in_frame_ = events;
      AppendFrameTrailer(out, 0, v1::WatchResponse::EVENTS,
                         v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED);
      return true;
    }
    if (scanning_) {
      // Frames are built under the state's read lock, straight from the
      // records: no copies, no reference counting.
      Revision next = state_.VisitLive(scan_after_, opt.max_frame_events * 8, [&](const Record& r) {
        if (!Wants(r)) return true;
        const size_t size = PutEventSize(r, r.revision());
        if (!fits(size)) return false;
        AppendPut(out, r, r.revision(), size);
        ++events;
        return true;
      });
      scan_after_ = next;
      if (next == 0) {
        scanning_ = false;
        if (wants_revocations_) {
          tombstoning_ = true;
          tombstone_after_.reset();
        } else {
          cursor_ = snapshot_base_;
          synced_pending_ = true;
        }
      }
      if (auto sent = EndWalkChunk(out, events, scanning_)) return *sent;
    }
    if (tombstoning_) {
      // Then the revoked usernames: a watcher that kept keys from before an
      // epoch change deletes those revoked since (docs/architecture.md,
      // "Snapshots carry the revoked usernames"); to any other they are
      // no-ops.
      bool done = state_.VisitTombstones(
          &tombstone_after_, opt.max_frame_events * 8,
          [&](std::string_view realm, std::string_view username, int64_t) {
            const std::string event = TombstoneEvent(realm, username, snapshot_base_);
            if (!fits(event.size())) return false;
            wire::PutBytesAlways(out, kEvents, event);
            ++events;
            return true;
          });
      if (done) {
        tombstoning_ = false;
        cursor_ = snapshot_base_;
        synced_pending_ = true;
      }
      if (auto sent = EndWalkChunk(out, events, tombstoning_)) return *sent;
    }
    // Replay or live: events after cursor_.
    auto read = state_.VisitHistory(cursor_, [&](const Change& c) {
      if (c.put) {
        if (Wants(*c.put)) {
          const size_t size = PutEventSize(*c.put, c.revision);
          if (!fits(size)) return false;
          AppendPut(out, *c.put, c.revision, size);
          ++events;
        }
      } else if (c.revoke && wants_revocations_) {
        if (!fits(c.revoke->event_wire.size())) return false;
        wire::PutBytesAlways(out, kEvents, c.revoke->event_wire);
        ++events;
      } else if (c.secret && WantsSecret(c.secret->secret)) {
        const std::string& event = secret_bytes_ ? c.secret->event_wire : c.secret->redacted_wire;
        if (!fits(event.size())) return false;
        wire::PutBytesAlways(out, kEvents, event);
        ++events;
      }
      cursor_ = c.revision;
      return true;
    });
    if (read == CredentialState::HistoryRead::kCompacted) {
      out->clear();
      LogWarn("watcher behind retained history; sending a snapshot")
          .Kv("watcher", request_.watcher_name())
          .Kv("peer", peer_)
          .Kv("revision", cursor_)
          .Kv("history_first", state_.history_first());
      BeginSnapshotLocked(in_resync_ || synced_pending_ ? v1::WatchResponse::HISTORY_COMPACTED
                                                        : v1::WatchResponse::WATCHER_TOO_SLOW);
      return BuildFrameLocked(out);
    }
    events_in_frame_ = events;
    if (events > 0) {
      AppendFrameTrailer(out, in_resync_ ? 0 : cursor_, v1::WatchResponse::EVENTS,
                         v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED);
      return true;
    }
    if (synced_pending_) {
      synced_pending_ = false;
      in_resync_ = false;
      AppendFrameTrailer(out, cursor_, v1::WatchResponse::SYNCED,
                         v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED);
      return true;
    }
    if (state_.clock()->NowMs() - last_sent_ms_ >= progress_interval_ms_) {
      AppendFrameTrailer(out, cursor_, v1::WatchResponse::PROGRESS,
                         v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED);
      return true;
    }
    return false;
  }

  bool PumpLocked() {
    if (writing_ || finishing_) return false;
    if (HeldBackLocked()) return false;
    std::string bytes;
    events_in_frame_ = 0;
    more_ = false;
    bool built = BuildFrameLocked(&bytes);
    // The store replaced the state (a Redis dataset with a new epoch): what
    // was read may belong to either; the watcher resumes elsewhere or here
    // and gets a snapshot of the new epoch (docs/architecture.md).
    if (state_.generation() != generation_) {
      FinishLocked(
          absl::UnavailableError("the store's dataset changed (new epoch); reconnect and resync"));
      return false;
    }
    if (!built) return more_;
    hub_->metrics_->frames->Inc();
    hub_->metrics_->events->Inc(events_in_frame_);
    hub_->metrics_->bytes->Inc(bytes.size());
    events_sent_ += events_in_frame_;
    last_sent_ms_ = state_.clock()->NowMs();
    last_write_us_ = state_.clock()->MonotonicMicros();
    frame_ = ToByteBuffer(std::move(bytes));
    writing_ = true;
    StartWrite(&frame_);
    return false;
  }

  // A caught-up stream with new revisions whose last frame started less than
  // min_frame_interval_us ago waits for the hub thread (docs/architecture.md,
  // "What a credential costs").
  bool HeldBackLocked() {
    const int64_t interval = hub_->options_.min_frame_interval_us;
    if (interval <= 0 || in_resync_ || begin_pending_ || scanning_ || tombstoning_ ||
        synced_pending_ || state_.head() <= cursor_) {
      return false;
    }
    if (state_.clock()->MonotonicMicros() - last_write_us_ >= interval) return false;
    hub_->Defer();
    return true;
  }

  void FinishLocked(absl::Status status) {
    if (finishing_) return;
    finishing_ = true;
    status_ = std::move(status);
    if (writing_)
      pending_finish_ = true;  // after the write in flight
    else
      DoFinishLocked();
  }

  void DoFinishLocked() {
    pending_finish_ = false;
    Finish(ToGrpcStatus(status_));
  }

  WatchHub* const hub_;
  const CredentialState& state_;
  const v1::WatchRequest request_;
  const std::string peer_;
  const std::string client_;
  const int64_t progress_interval_ms_;
  bool wants_credentials_ = false;
  bool wants_secrets_ = false;
  bool wants_revocations_ = false;
  bool secret_bytes_ = false;
  uint64_t generation_ = 0;                  // the state's, at Start()
  absl::flat_hash_set<std::string> realms_;  // request_.realms(); empty: all

  std::mutex mu_;
  grpc::ByteBuffer frame_;
  bool writing_ = false;
  bool finishing_ = false;
  bool pending_finish_ = false;
  bool more_ = false;  // set by BuildFrameLocked: pump again soon
  absl::Status status_;
  // Where the stream is.
  bool begin_pending_ = false;  // SNAPSHOT_BEGIN is next
  Reason reason_ = v1::WatchResponse::SNAPSHOT_REASON_UNSPECIFIED;
  bool scanning_ = false;  // walking the live set
  Revision scan_after_ = 0;
  bool tombstoning_ = false;  // then the revoked usernames
  std::optional<uint64_t> tombstone_after_;
  Revision snapshot_base_ = 0;   // head when the snapshot began
  bool in_resync_ = false;       // between SNAPSHOT_BEGIN and SYNCED
  bool synced_pending_ = false;  // SYNCED is due once caught up
  Revision cursor_ = 0;          // last revision considered
  // The snapshot's secrets still to send (read at SNAPSHOT_BEGIN).
  std::vector<SecretEntryRef> snapshot_secrets_;
  size_t secrets_sent_ = 0;
  int64_t last_sent_ms_ = 0;
  int64_t last_write_us_ = 0;  // monotonic: when the last frame started
  size_t events_in_frame_ = 0;
  uint64_t events_sent_ = 0;
};

WatchHub::WatchHub(const CredentialState& state, WatchOptions options, MetricsRegistry* metrics)
    : state_(state), options_(options), metrics_(std::make_unique<Metrics>(metrics)) {
  metrics->AddGaugeFunction("turnbroker_watchers", "Open Watch streams",
                            [this] { return static_cast<double>(size()); });
  thread_ = std::thread([this] { Loop(); });
}

WatchHub::~WatchHub() {
  Shutdown();
  if (thread_.joinable()) thread_.join();
}

size_t WatchHub::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchHub::Open(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request,
                                                           const Peer& peer) {
  v1::WatchRequest parsed;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (request->Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  using Reactor = grpc::ServerWriteReactor<grpc::ByteBuffer>;
  if (!parsed.ParseFromString(bytes)) {
    return Refuse<Reactor>(absl::InvalidArgumentError("request: not a turnbroker.v1.WatchRequest"));
  }
  if (auto s = ValidateWatchRequest(parsed, options_); !s.ok()) {
    LogRefused("Watch", peer, context->peer(), s);
    return Refuse<Reactor>(s);
  }
  const bool minter_only =
      (peer.roles & kRoleMinter) && !(peer.roles & (kRoleSubscriber | kRoleOperator));
  if (minter_only) {
    bool secrets_only = parsed.kinds_size() > 0;
    for (int k : parsed.kinds()) secrets_only &= k == v1::RECORD_KIND_SHARED_SECRET;
    if (!secrets_only) {
      absl::Status s =
          absl::PermissionDeniedError(StrCat("kinds: a minter watches shared secrets only "
                                             "(kinds=[RECORD_KIND_SHARED_SECRET]); client '",
                                             peer.name, "' has ", RoleNames(peer.roles)));
      LogRefused("Watch", peer, context->peer(), s);
      return Refuse<Reactor>(s);
    }
  }
  // Counted per certificate and address: the TURN syncs of a chart share
  // one certificate, each from its own address.
  const std::string address = context->peer();
  std::string client = address.substr(0, address.rfind(':'));
  if (!peer.plaintext) client = StrCat(peer.name, " ", client);
  auto* stream = new WatchStream(this, std::move(parsed), StrCat(context->peer(), " ", peer.name),
                                 client, peer.roles);
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Status refused;
    if (stopping_) {
      refused = absl::UnavailableError("broker is shutting down");
    } else if (streams_.size() >= options_.max_watchers) {
      refused =
          absl::ResourceExhaustedError(StrCat("too many watchers (", options_.max_watchers, ")"));
    } else if (per_client_[client] >= options_.max_watchers_per_client) {
      refused = absl::ResourceExhaustedError(StrCat("too many watchers from this client (",
                                                    options_.max_watchers_per_client,
                                                    ", broker flag --max-watchers-per-client)"));
    }
    if (!refused.ok()) {
      if (per_client_[client] == 0) per_client_.erase(client);
      delete stream;
      LogRefused("Watch", peer, context->peer(), refused);
      return Refuse<Reactor>(refused);
    }
    // The cursor is set before the stream is visible: Notify() and Loop()
    // pump every stream in streams_, and must never see one at cursor 0
    // that has not decided between replay and snapshot. (Lock order, as in
    // Notify: mu_, then the stream's, then the state's.)
    stream->Start();
    streams_.insert(stream);
    ++per_client_[client];
  }
  metrics_->opened->Inc();
  stream->Pump();
  return stream;
}

void WatchHub::Notify() {
  // Pump here, on the committing thread: a thread hop per commit costs more
  // than building the frames (context switches are dear on small VMs).
  std::lock_guard<std::mutex> lock(mu_);
  for (WatchStream* s : streams_) s->PumpLive();
}

void WatchHub::Defer() {
  std::lock_guard<std::mutex> lock(wake_mu_);
  if (deferred_) return;
  deferred_ = true;
  wake_cv_.notify_one();
}

void WatchHub::Remove(WatchStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_.erase(stream) != 0) {
    auto count = per_client_.find(stream->client());
    if (count != per_client_.end() && --count->second == 0) per_client_.erase(count);
  }
  cv_.notify_all();
}

void WatchHub::Loop() {
  bool more = false;
  for (;;) {
    {
      // Snapshots in progress go on at once; frames held back go when their
      // interval is over; otherwise a tick for PROGRESS markers.
      std::unique_lock<std::mutex> wait(wake_mu_);
      wake_cv_.wait_for(wait, std::chrono::milliseconds(more ? 0 : kTickMs),
                        [this] { return exit_ || deferred_; });
      if (deferred_ && !exit_) {
        wake_cv_.wait_for(wait, std::chrono::microseconds(options_.min_frame_interval_us),
                          [this] { return exit_; });
      }
      deferred_ = false;
      if (exit_) break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) break;
    more = false;
    // Streams cannot be removed (OnDone) while mu_ is held.
    for (WatchStream* s : streams_) more |= s->Pump();
  }
}

void WatchHub::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    exit_ = true;
    wake_cv_.notify_all();
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!stopping_) {
    stopping_ = true;
    for (WatchStream* s : streams_) {
      s->Close(absl::UnavailableError("broker is shutting down; reconnect and resume"));
    }
  }
  cv_.notify_all();
  // Streams whose last write is stuck behind a client that stopped reading
  // cannot finish until the server cancels their calls: do not wait long.
  cv_.wait_for(lock, std::chrono::seconds(2), [this] { return streams_.empty(); });
}

}  // namespace turnbroker::broker
