#include "turnbroker/turn/sync.h"

#include <chrono>
#include <memory>

#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"

namespace turnbroker::turn {
namespace {

// Index entries examined per pruning step, and the pause between steps
// (a pass scans about 10,000 entries a second).
constexpr size_t kPruneBatch = 1'000;
constexpr int64_t kPruneStepMs = 100;

const std::string& ReasonName(v1::WatchResponse::SnapshotReason reason) {
  return v1::WatchResponse::SnapshotReason_Name(reason);
}

}  // namespace

std::vector<v1::RecordKind> WatchKinds(AuthMode mode) {
  if (mode == AuthMode::kSharedSecret) return {v1::RECORD_KIND_SHARED_SECRET};
  return {};
}

CredentialSync::CredentialSync(SyncOptions options, RedisClient* redis, const Clock* clock,
                               SyncMetrics* metrics)
    : options_(std::move(options)),
      clock_(clock),
      metrics_(metrics),
      db_(redis, SyncKeys::For(options_.name, options_.auth_mode)),
      secrets_(options_.realms),
      applier_(ApplierOptions{options_.realms, options_.farm, options_.cancel_sessions}, &db_,
               &legacy_, clock, metrics, shared_secret() ? &secrets_ : nullptr),
      reconciler_(&db_, clock) {}

Position CredentialSync::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return position_;
}

size_t CredentialSync::legacy_size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return legacy_size_;
}

void CredentialSync::Stored(const Position& p) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    position_ = p;
    legacy_size_ = legacy_.size();
  }
  metrics_->last_applied_revision->Set(static_cast<int64_t>(p.revision));
  metrics_->legacy_keys->Set(static_cast<int64_t>(legacy_.size()));
  if (shared_secret()) {
    metrics_->secrets->Set(static_cast<int64_t>(secrets_.size()));
    next_secret_drop_ms_ = secrets_.NextDropMs();
  }
}

absl::Status CredentialSync::RedisFailed(absl::Status status) {
  metrics_->redis_errors->Inc();
  metrics_->redis_up = false;
  loaded_ = false;
  reconciler_.End();
  secrets_.AbandonSnapshot();
  return status;
}

absl::Status CredentialSync::StateLost(std::string_view why) {
  metrics_->state_lost->Inc();
  LogError("redis lost the sync's state; resyncing from a full snapshot")
      .Kv("sync", options_.name)
      .Kv("why", why)
      .Kv("applied_epoch", position().epoch)
      .Kv("applied_revision", position().revision);
  state_lost_ = true;
  loaded_ = false;
  reconciler_.End();
  secrets_.AbandonSnapshot();
  return absl::DataLossError(StrCat("redis lost the sync's state (", why, ")"));
}

absl::Status CredentialSync::Load() {
  auto position = db_.LoadPosition();
  if (!position.ok()) return position.status();
  legacy_.Clear();
  auto legacy = db_.LoadLegacy(clock_->NowMs());
  if (!legacy.ok()) return legacy.status();
  for (ManagedKey& k : *legacy) {
    legacy_.Add(LegacyKey{std::move(k.member), k.expires_at_ms, std::move(k.issuer),
                          std::move(k.subscriber)});
  }
  if (shared_secret()) {
    auto entries = db_.LoadSecretEntries();
    if (!entries.ok()) return entries.status();
    secrets_.Load(*entries);
  }
  Stored(*position);
  LogInfo("state loaded from redis")
      .Kv("sync", options_.name)
      .Kv("epoch", position->epoch.empty() ? "none" : position->epoch)
      .Kv("revision", position->revision)
      .Kv("legacy_keys", legacy_.size())
      .Kv("secrets", secrets_.size());
  return absl::OkStatus();
}

absl::StatusOr<Position> CredentialSync::Prepare() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  return PrepareLocked();
}

absl::StatusOr<Position> CredentialSync::PrepareLocked() {
  reconciler_.End();
  secrets_.AbandonSnapshot();
  ack_due_ = false;
  if (state_lost_) {
    // What Redis holds now (at most what was written since it lost the
    // rest) is no resume point: start over from a full snapshot.
    if (auto s = db_.DeletePosition(); !s.ok()) return RedisFailed(s);
    state_lost_ = false;
  }
  if (!loaded_) {
    if (auto s = Load(); !s.ok()) return RedisFailed(s);
    loaded_ = true;
    metrics_->redis_up = true;
  }
  return position();
}

void CredentialSync::OnStreamEnd() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  if (auto s = db_.Drain(); !s.ok()) RedisFailed(s).IgnoreError();
  reconciler_.End();
  secrets_.AbandonSnapshot();
}

std::optional<Position> CredentialSync::TakeAcknowledgement() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  if (!ack_due_) return std::nullopt;
  ack_due_ = false;
  return position();
}

int64_t CredentialSync::NextSecretDropMs() const { return next_secret_drop_ms_.load(); }

absl::Status CredentialSync::ExpireSecrets() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  const int64_t now = clock_->NowMs();
  const int64_t due = secrets_.NextDropMs();
  if (!loaded_ || due == 0 || due > now) return absl::OkStatus();
  UserDb::Transaction txn = db_.Begin();
  SecretChanges changes;
  secrets_.ExpireDue(now, &txn, &changes);
  if (auto s = Commit(&txn); !s.ok()) return s;
  SecretsApplied(changes);
  Stored(position());
  return absl::OkStatus();
}

void CredentialSync::SecretsApplied(const SecretChanges& c) {
  metrics_->secrets_applied->Inc(c.applied);
  metrics_->secret_retirements_applied->Inc(c.retired);
  metrics_->events_refused->Inc(c.refused);
  metrics_->secrets_removed_retired->Inc(c.removed_retired);
  metrics_->secrets_removed_expired->Inc(c.removed_expired);
  metrics_->secrets_removed_reconciled->Inc(c.removed_reconciled);
  metrics_->secrets_retained->Inc(c.retained);
}

absl::Status CredentialSync::Commit(UserDb::Transaction* txn) {
  int64_t start = MonotonicMicros();
  const Position applied = position();
  absl::Status s = db_.Commit(txn);
  if (!s.ok()) {
    if (txn->position_written()) {
      // EXEC ran the position although another command failed (Redis does
      // not roll back): put the position back, so that the frame is applied
      // again rather than skipped.
      if (auto r = db_.RestorePosition(applied, clock_->NowMs()); !r.ok()) {
        LogError("cannot restore the position after a failed transaction")
            .Kv("error", StatusLine(r))
            .Kv("revision", applied.revision);
      }
    }
    return RedisFailed(s);
  }
  metrics_->commit_seconds->ObserveMicros(MonotonicMicros() - start);
  metrics_->redis_up = true;
  if (txn->position_created() && applied.revision != 0) {
    return StateLost("the position was gone when written");
  }
  return absl::OkStatus();
}

absl::Status CredentialSync::OnFrame(const v1::WatchResponse& frame) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  return OnFrameLocked(frame);
}

absl::Status CredentialSync::OnFrameLocked(const v1::WatchResponse& frame) {
  if (!loaded_) return absl::FailedPreconditionError("state not loaded (Prepare first)");
  const std::string stored_epoch = position().epoch;
  if (frame.marker() != v1::WatchResponse::SNAPSHOT_BEGIN && !reconciler_.active() &&
      !stored_epoch.empty() && frame.epoch() != stored_epoch) {
    // The broker must start with a snapshot when the epoch changes.
    return absl::FailedPreconditionError(StrCat(
        "frame of epoch ", frame.epoch(), " without a snapshot (stored epoch ", stored_epoch, ")"));
  }
  if (frame.marker() != v1::WatchResponse::EVENTS) {
    // Markers see every frame before them applied.
    if (auto s = db_.Drain(); !s.ok()) return RedisFailed(s);
  }
  absl::Status s;
  switch (frame.marker()) {
    case v1::WatchResponse::SNAPSHOT_BEGIN:
      s = OnSnapshotBegin(frame);
      break;
    case v1::WatchResponse::EVENTS:
      s = OnEvents(frame);
      break;
    case v1::WatchResponse::SYNCED:
      s = OnSynced(frame);
      break;
    case v1::WatchResponse::PROGRESS:
      s = OnProgress(frame);
      break;
    default:
      LogWarn("frame with an unknown marker skipped")
          .Kv("marker", static_cast<int>(frame.marker()));
      return absl::OkStatus();
  }
  if (s.ok()) metrics_->last_applied_ms = clock_->NowMs();
  return s;
}

absl::Status CredentialSync::OnSnapshotBegin(const v1::WatchResponse& frame) {
  const Position stored = position();
  const auto reason = frame.snapshot_reason();
  // Only a snapshot of the same store proves that a key missing from it was
  // revoked; a new epoch, or a store behind what was applied, may simply
  // have lost it (docs/design.md, The TURN side).
  bool proof = !stored.epoch.empty() && stored.epoch == frame.epoch() &&
               reason != v1::WatchResponse::EPOCH_CHANGED &&
               reason != v1::WatchResponse::REVISION_AHEAD;
  metrics_->snapshots->Inc();
  metrics_->SetSynced(false, clock_->NowMs());
  LogInfo("snapshot begins")
      .Kv("reason", ReasonName(reason))
      .Kv("epoch", frame.epoch())
      .Kv("stored_epoch", stored.epoch.empty() ? "none" : stored.epoch)
      .Kv("stored_revision", stored.revision)
      .Kv("missing_keys", proof ? "delete" : "keep");
  if (auto st = reconciler_.Begin(proof); !st.ok()) return RedisFailed(st);
  if (shared_secret()) secrets_.BeginSnapshot(proof);
  return absl::OkStatus();
}

absl::Status CredentialSync::OnEvents(const v1::WatchResponse& frame) {
  UserDb::Transaction txn = db_.Begin(static_cast<size_t>(frame.events_size()));
  auto batch = std::make_shared<AppliedBatch>();
  if (shared_secret()) secrets_.ExpireDue(clock_->NowMs(), &txn, &batch->secrets);
  if (auto s = applier_.Add(frame.events(), &txn, batch.get()); !s.ok()) return RedisFailed(s);
  const bool live = frame.revision() != 0;
  Position next = position();
  if (live) {
    next = Position{frame.epoch(), frame.revision()};
    txn.SetPosition(next, clock_->NowMs());
  }
  auto applied = [this, batch, next, live](const absl::Status& s) {
    if (s.ok()) Applied(*batch, next, live);
  };
  if (!live && reconciler_.active()) {
    // A snapshot frame carries no position: Redis applies it while the next
    // frame is read and prepared (SYNCED waits for all of them).
    if (auto s = db_.CommitAsync(&txn, applied); !s.ok()) return RedisFailed(s);
    return absl::OkStatus();
  }
  if (auto s = Commit(&txn); !s.ok()) return s;
  applied(absl::OkStatus());
  return Prune();
}

void CredentialSync::Applied(const AppliedBatch& batch, const Position& next, bool live) {
  for (const std::string& m : batch.removed_members) legacy_.Remove(m);
  for (const std::string& m : batch.unretired_members) legacy_.Remove(m);
  if (reconciler_.active()) {
    reconciler_.Seen(batch.put_members);
    reconciler_.Seen(batch.removed_members);
  }
  Stored(next);
  metrics_->puts_applied->Inc(batch.puts);
  metrics_->revocations_applied->Inc(batch.revocations);
  metrics_->keys_deleted_revoked->Inc(batch.removed_members.size());
  SecretsApplied(batch.secrets);
  // A snapshot's secrets are acknowledged at SYNCED.
  if (live && batch.secrets.changed()) ack_due_ = true;
  if (live) {
    const int64_t now = clock_->NowMs();
    for (int64_t at : batch.revoked_at_ms) {
      if (at > 0) metrics_->revocation_delay_seconds->ObserveMicros((now - at) * 1000);
    }
  }
  if (!batch.removed_members.empty()) {
    LogInfo("keys revoked")
        .Kv("count", batch.removed_members.size())
        .Kv("first", batch.removed_members.front())
        .Kv("revision", next.revision);
    if (options_.cancel_sessions && on_cancellations_) on_cancellations_();
  }
  if (!batch.queued_members.empty()) {
    LogInfo("approach-1 users revoked: their coturn sessions are ended")
        .Kv("count", batch.queued_members.size())
        .Kv("first", batch.queued_members.front())
        .Kv("revision", next.revision);
    if (on_cancellations_) on_cancellations_();
  }
  LogDebug("frame applied")
      .Kv("puts", batch.puts)
      .Kv("revocations", batch.revocations)
      .Kv("refused", batch.refused)
      .Kv("revision", next.revision);
}

absl::Status CredentialSync::OnSynced(const v1::WatchResponse& frame) {
  UserDb::Transaction txn = db_.Begin();
  Reconciliation rec;
  const bool snapshot = reconciler_.active();
  if (snapshot) rec = reconciler_.Finish(legacy_, options_.cancel_sessions, &txn);
  SecretChanges secret_changes;
  if (shared_secret()) {
    const int64_t now = clock_->NowMs();
    if (secrets_.snapshot_active()) {
      // The sets as they are now, to remove what no secret holds.
      std::vector<std::pair<std::string, std::vector<std::string>>> members;
      for (const std::string& realm : options_.realms) {
        auto m = db_.SecretMembers(realm);
        if (!m.ok()) return RedisFailed(m.status());
        members.emplace_back(realm, std::move(*m));
      }
      secrets_.FinishSnapshot(now, members, &txn, &secret_changes);
    }
    secrets_.ExpireDue(now, &txn, &secret_changes);
  }
  Position next{frame.epoch(), frame.revision()};
  txn.SetPosition(next, clock_->NowMs());
  if (auto s = Commit(&txn); !s.ok()) return s;
  reconciler_.End();

  for (const ManagedKey& k : rec.removed) legacy_.Remove(k.member);
  for (LegacyKey& k : rec.retained) legacy_.Add(std::move(k));
  SecretsApplied(secret_changes);
  if (shared_secret()) ack_due_ = true;
  Stored(next);
  metrics_->keys_deleted_reconciled->Inc(rec.removed.size());
  metrics_->keys_retained->Inc(rec.retained.size());
  metrics_->SetSynced(true, clock_->NowMs());
  LogInfo("synced")
      .Kv("revision", next.revision)
      .Kv("epoch", next.epoch)
      .Kv("after", snapshot ? "snapshot" : "replay")
      .Kv("deleted_missing", rec.removed.size())
      .Kv("kept_missing", rec.retained.size())
      .Kv("legacy_keys", legacy_.size())
      .Kv("secrets", secrets_.size());
  if (!rec.removed.empty() && options_.cancel_sessions && on_cancellations_) on_cancellations_();
  return Prune();
}

absl::Status CredentialSync::OnProgress(const v1::WatchResponse& frame) {
  // An idle stream writes nothing else: check that Redis still holds what
  // was applied (one HMGET), or a Redis restarted empty would go unnoticed
  // and coturn would have no users.
  auto stored = db_.LoadPosition();
  if (!stored.ok()) return RedisFailed(stored.status());
  metrics_->redis_up = true;
  if (*stored != position()) {
    if (stored->revision == 0)
      return StateLost("the position is gone (restarted empty or flushed)");
    LogWarn("the stored position changed under the sync; reloading")
        .Kv("stored_epoch", stored->epoch)
        .Kv("stored_revision", stored->revision)
        .Kv("applied_revision", position().revision);
    return RedisFailed(absl::AbortedError("redis: the stored position changed"));
  }
  Position next{frame.epoch(), frame.revision()};
  SecretChanges secret_changes;
  UserDb::Transaction txn = db_.Begin();
  if (shared_secret()) secrets_.ExpireDue(clock_->NowMs(), &txn, &secret_changes);
  if (next != position() || !txn.empty()) {
    txn.SetPosition(next, clock_->NowMs());
    if (auto s = Commit(&txn); !s.ok()) return s;
    SecretsApplied(secret_changes);
    Stored(next);
  }
  if (shared_secret()) ack_due_ = true;
  return Prune();
}

absl::Status CredentialSync::Prune() {
  // An incremental scan of the index, one step (about kPruneBatch entries)
  // per call at most every kPruneStepMs, so that a busy stream (which gets
  // no PROGRESS markers) prunes too and no frame waits long for it; a new
  // pass starts every prune interval.
  const int64_t now = clock_->NowMs();
  if (reconciler_.active() || now < next_prune_ms_) return absl::OkStatus();
  std::string next;
  auto entries = db_.ScanManaged(prune_cursor_, kPruneBatch, &next);
  if (!entries.ok()) return RedisFailed(entries.status());
  UserDb::Transaction txn = db_.Begin();
  std::vector<std::string> expired;
  for (const ManagedKey& k : *entries) {
    if (k.expires_at_ms < now - options_.prune_grace_ms) {
      txn.Forget(k.member);
      expired.push_back(k.member);
    }
  }
  if (auto s = Commit(&txn); !s.ok()) return s;
  for (const std::string& m : expired) legacy_.Remove(m);
  prune_cursor_ = next;
  next_prune_ms_ = prune_cursor_ == "0" ? now + options_.prune_interval_ms : now + kPruneStepMs;
  if (!expired.empty()) {
    metrics_->keys_pruned->Inc(expired.size());
    Stored(position());
    LogDebug("expired keys pruned from the index").Kv("count", expired.size());
  }
  return absl::OkStatus();
}

SecretExpiryTimer::SecretExpiryTimer(CredentialSync* sync, const Clock* clock, int64_t tick_ms)
    : sync_(sync), clock_(clock), tick_ms_(tick_ms) {}

SecretExpiryTimer::~SecretExpiryTimer() { Stop(); }

void SecretExpiryTimer::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(tick_ms_), [this] { return stopping_; })) {
      const int64_t due = sync_->NextSecretDropMs();
      if (due == 0 || due > clock_->NowMs()) continue;
      lock.unlock();
      absl::Status s = sync_->ExpireSecrets();
      if (!s.ok()) {
        LogWarn("cannot remove an expired secret; the sync reloads and retries")
            .Kv("error", StatusLine(s));
      }
      lock.lock();
    }
  });
}

void SecretExpiryTimer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace turnbroker::turn
