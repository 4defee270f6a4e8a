#include "turnbroker/turn/sync.h"

#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"

namespace turnbroker::turn {
namespace {

// Expired index entries pruned per transaction.
constexpr size_t kPruneBatch = 1'000;

const std::string& ReasonName(v1::WatchResponse::SnapshotReason reason) {
  return v1::WatchResponse::SnapshotReason_Name(reason);
}

}  // namespace

CredentialSync::CredentialSync(SyncOptions options, RedisClient* redis, const Clock* clock,
                               SyncMetrics* metrics)
    : options_(std::move(options)),
      clock_(clock),
      metrics_(metrics),
      db_(redis, SyncKeys::For(options_.name)),
      applier_(ApplierOptions{options_.realms, options_.farm, options_.cancel_sessions}, &db_,
               &legacy_, clock, metrics),
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
}

absl::Status CredentialSync::RedisFailed(absl::Status status) {
  metrics_->redis_errors->Inc();
  metrics_->redis_up = false;
  loaded_ = false;
  reconciler_.End();
  return status;
}

absl::Status CredentialSync::Load() {
  auto position = db_.LoadPosition();
  if (!position.ok()) return position.status();
  legacy_.Clear();
  auto legacy = db_.LoadLegacy(clock_->NowMs());
  if (!legacy.ok()) return legacy.status();
  if (!legacy->empty()) {
    std::vector<std::string> members;
    for (const ManagedKey& k : *legacy) members.push_back(k.member);
    auto owners = db_.LoadOwners(members);
    if (!owners.ok()) return owners.status();
    for (size_t i = 0; i < legacy->size(); ++i) {
      legacy_.Add(LegacyKey{std::move((*legacy)[i].member), (*legacy)[i].expires_at_ms,
                            std::move((*owners)[i].issuer), std::move((*owners)[i].subscriber)});
    }
  }
  Stored(*position);
  LogInfo("state loaded from redis")
      .Kv("sync", options_.name)
      .Kv("epoch", position->epoch.empty() ? "none" : position->epoch)
      .Kv("revision", position->revision)
      .Kv("legacy_keys", legacy_.size());
  return absl::OkStatus();
}

absl::StatusOr<Position> CredentialSync::Prepare() {
  reconciler_.End();
  if (!loaded_) {
    if (auto s = Load(); !s.ok()) return RedisFailed(s);
    loaded_ = true;
    metrics_->redis_up = true;
  }
  return position();
}

void CredentialSync::OnStreamEnd() { reconciler_.End(); }

absl::Status CredentialSync::Commit(UserDb::Transaction* txn) {
  int64_t start = MonotonicMicros();
  absl::Status s = db_.Commit(txn);
  if (!s.ok()) return RedisFailed(s);
  metrics_->commit_seconds->ObserveMicros(MonotonicMicros() - start);
  metrics_->redis_up = true;
  return absl::OkStatus();
}

absl::Status CredentialSync::OnFrame(const v1::WatchResponse& frame) {
  if (!loaded_) return absl::FailedPreconditionError("state not loaded (Prepare first)");
  const std::string stored_epoch = position().epoch;
  if (frame.marker() != v1::WatchResponse::SNAPSHOT_BEGIN && !reconciler_.active() &&
      !stored_epoch.empty() && frame.epoch() != stored_epoch) {
    // The broker must start with a snapshot when the epoch changes.
    return absl::FailedPreconditionError(
        StrCat("frame of epoch ", frame.epoch(), " without a snapshot (stored epoch ",
               stored_epoch, ")"));
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
      LogWarn("frame with an unknown marker skipped").Kv("marker", static_cast<int>(frame.marker()));
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
  // have lost it (design §5).
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
  return absl::OkStatus();
}

absl::Status CredentialSync::OnEvents(const v1::WatchResponse& frame) {
  UserDb::Transaction txn = db_.Begin();
  AppliedBatch batch;
  if (auto s = applier_.Add(frame.events(), &txn, &batch); !s.ok()) return RedisFailed(s);
  Position next = position();
  if (frame.revision() != 0) {
    next = Position{frame.epoch(), frame.revision()};
    txn.SetPosition(next, clock_->NowMs());
  }
  if (auto s = Commit(&txn); !s.ok()) return s;

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
  if (frame.revision() != 0) {
    const int64_t now = clock_->NowMs();
    for (int64_t at : batch.revoked_at_ms) {
      if (at > 0) metrics_->revocation_delay_seconds->ObserveMicros((now - at) * 1000);
    }
  }
  if (!batch.removed_members.empty()) {
    LogInfo("keys revoked")
        .Kv("count", batch.removed_members.size())
        .Kv("first", batch.removed_members.front())
        .Kv("revision", frame.revision());
    if (options_.cancel_sessions && on_cancellations_) on_cancellations_();
  }
  LogDebug("frame applied")
      .Kv("puts", batch.puts)
      .Kv("revocations", batch.revocations)
      .Kv("refused", batch.refused)
      .Kv("revision", frame.revision());
  return absl::OkStatus();
}

absl::Status CredentialSync::OnSynced(const v1::WatchResponse& frame) {
  UserDb::Transaction txn = db_.Begin();
  Reconciliation rec;
  const bool snapshot = reconciler_.active();
  if (snapshot) {
    auto r = reconciler_.Finish(legacy_, options_.cancel_sessions, &txn);
    if (!r.ok()) return RedisFailed(r.status());
    rec = std::move(*r);
  }
  Position next{frame.epoch(), frame.revision()};
  txn.SetPosition(next, clock_->NowMs());
  if (auto s = Commit(&txn); !s.ok()) return s;
  reconciler_.End();

  for (const ManagedKey& k : rec.removed) legacy_.Remove(k.member);
  for (LegacyKey& k : rec.retained) legacy_.Add(std::move(k));
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
      .Kv("legacy_keys", legacy_.size());
  if (!rec.removed.empty() && options_.cancel_sessions && on_cancellations_) on_cancellations_();
  return Prune();
}

absl::Status CredentialSync::OnProgress(const v1::WatchResponse& frame) {
  Position next{frame.epoch(), frame.revision()};
  if (next != position()) {
    UserDb::Transaction txn = db_.Begin();
    txn.SetPosition(next, clock_->NowMs());
    if (auto s = Commit(&txn); !s.ok()) return s;
    Stored(next);
  }
  return Prune();
}

absl::Status CredentialSync::Prune() {
  const int64_t now = clock_->NowMs();
  if (now < next_prune_ms_) return absl::OkStatus();
  next_prune_ms_ = now + options_.prune_interval_ms;
  size_t pruned = 0;
  for (;;) {
    auto expired = db_.ExpiredManaged(now - options_.prune_grace_ms, kPruneBatch);
    if (!expired.ok()) return RedisFailed(expired.status());
    if (expired->empty()) break;
    UserDb::Transaction txn = db_.Begin();
    for (const ManagedKey& k : *expired) txn.Forget(k.member);
    if (auto s = Commit(&txn); !s.ok()) return s;
    for (const ManagedKey& k : *expired) legacy_.Remove(k.member);
    pruned += expired->size();
    if (expired->size() < kPruneBatch) break;
  }
  if (pruned > 0) {
    metrics_->keys_pruned->Inc(pruned);
    Stored(position());
    LogInfo("expired keys pruned from the index").Kv("count", pruned);
  }
  return absl::OkStatus();
}

}  // namespace turnbroker::turn
