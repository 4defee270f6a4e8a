// CredentialSync: applies the broker's Watch frames to coturn's Redis user
// database (the FrameSink of a WatchLoop).
//
//   SNAPSHOT_BEGIN  the reconciler notes the managed keys
//   EVENTS          the applier's writes, plus the frame's position if it
//                   carries one, in one MULTI/EXEC (snapshot frames, which
//                   carry none, are committed without waiting for Redis, so
//                   that Redis and the sync work in parallel)
//   SYNCED          the reconciler's deletions (same epoch) or retentions
//                   (new epoch) with the position, in one MULTI/EXEC
//   PROGRESS        a check that Redis still holds the stored position (if
//                   not, it lost the state: resync from a full snapshot),
//                   the position if it moved; now and then a slice of the
//                   index is scanned (HSCAN) and its expired entries
//                   forgotten
//
// Nothing is acknowledged before Redis has it: a failed write returns an
// error (the loop reconnects and resumes from the stored position) and the
// in-memory state is reloaded from Redis before the next stream, since a
// failed EXEC may or may not have been applied.
//
// In shared-secret mode (approach 1, docs/approach1.md) the same frames keep
// coturn's secret sets instead (secrets.h): secret events go to a SecretSet,
// SYNCED reconciles the sets, revocations of approach-1 usernames queue
// their sessions for ending, and the sync asks the loop to Acknowledge its
// position after SYNCED, after a live frame that changed secrets and at
// every PROGRESS marker. ExpireSecrets (a timer's thread) removes secrets at
// their expiry.
//
// Thread-safety: Prepare/OnFrame/OnStreamEnd on the loop's thread,
// ExpireSecrets on any one thread (each holds the apply lock); position(),
// legacy_size() and NextSecretDropMs() from any thread.
#ifndef TURNBROKER_TURN_SYNC_H_
#define TURNBROKER_TURN_SYNC_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/turn/applier.h"
#include "turnbroker/turn/legacy_index.h"
#include "turnbroker/turn/reconciler.h"
#include "turnbroker/turn/schema.h"
#include "turnbroker/turn/secrets.h"
#include "turnbroker/turn/sync_metrics.h"
#include "turnbroker/turn/userdb.h"
#include "turnbroker/turn/watch_loop.h"

namespace turnbroker::turn {

struct SyncOptions {
  // Names this sync's keys in Redis (schema.h); unique per Redis database.
  std::string name;
  std::vector<std::string> realms;
  std::string farm;
  // Queue revoked users for ending their coturn sessions (--coturn-admin).
  bool cancel_sessions = false;
  // How often a pruning pass over the index starts, and how long after
  // their expiry entries are forgotten (clock skew between this host and
  // Redis).
  int64_t prune_interval_ms = 60'000;
  int64_t prune_grace_ms = 60'000;
  // What the sync writes: long-term keys or the realms' shared secrets.
  AuthMode auth_mode = AuthMode::kPerCredential;
};

// The record kinds a sync in `mode` watches (WatchRequest.kinds): none (the
// default, long-term credentials) or RECORD_KIND_SHARED_SECRET.
std::vector<v1::RecordKind> WatchKinds(AuthMode mode);

class CredentialSync : public FrameSink {
 public:
  // `redis`, `clock` and `metrics` must outlive the sync.
  CredentialSync(SyncOptions options, RedisClient* redis, const Clock* clock, SyncMetrics* metrics);

  absl::StatusOr<Position> Prepare() override;
  absl::Status OnFrame(const v1::WatchResponse& frame) override;
  void OnStreamEnd() override;
  std::optional<Position> TakeAcknowledgement() override;

  // Shared-secret mode: removes the secrets whose expiry has come (one
  // MULTI/EXEC; a failure makes the next frame reload, as any Redis
  // failure). The earliest expiry to come (Unix ms, 0: none).
  absl::Status ExpireSecrets();
  int64_t NextSecretDropMs() const;

  // Called on the loop's thread after a commit queued cancellations.
  void SetCancellationListener(std::function<void()> listener) {
    on_cancellations_ = std::move(listener);
  }

  Position position() const;
  size_t legacy_size() const;
  bool shared_secret() const { return options_.auth_mode == AuthMode::kSharedSecret; }

 private:
  absl::StatusOr<Position> PrepareLocked();
  absl::Status OnFrameLocked(const v1::WatchResponse& frame);
  // The secret changes of a committed transaction: metrics.
  void SecretsApplied(const SecretChanges& changes);
  absl::Status Load();
  absl::Status OnSnapshotBegin(const v1::WatchResponse& frame);
  absl::Status OnEvents(const v1::WatchResponse& frame);
  // After the commit of a frame's events (at once, or later for a snapshot
  // frame committed without waiting).
  void Applied(const AppliedBatch& batch, const Position& next, bool live);
  absl::Status OnSynced(const v1::WatchResponse& frame);
  absl::Status OnProgress(const v1::WatchResponse& frame);
  absl::Status Prune();
  // Commits; on failure marks Redis down and the in-memory state stale.
  absl::Status Commit(UserDb::Transaction* transaction);
  // A failed Redis read or write: everything in memory is reloaded.
  absl::Status RedisFailed(absl::Status status);
  // Redis no longer holds the applied state (restarted empty, flushed):
  // the stored position is deleted and everything reloaded, so the next
  // stream starts from a full snapshot.
  absl::Status StateLost(std::string_view why);
  void Stored(const Position& position);

  const SyncOptions options_;
  const Clock* const clock_;
  SyncMetrics* const metrics_;
  UserDb db_;
  LegacyIndex legacy_;
  SecretSet secrets_;
  Applier applier_;
  Reconciler reconciler_;
  std::function<void()> on_cancellations_;

  // Held by Prepare, OnFrame, OnStreamEnd and ExpireSecrets: everything
  // below, the UserDb and the members above.
  mutable std::mutex apply_mu_;
  bool ack_due_ = false;
  std::atomic<int64_t> next_secret_drop_ms_{0};  // read by NextSecretDropMs
  bool loaded_ = false;
  bool state_lost_ = false;
  int64_t next_prune_ms_ = 0;
  std::string prune_cursor_ = "0";
  mutable std::mutex mu_;
  Position position_;       // guarded by mu_; written by the loop's thread
  size_t legacy_size_ = 0;  // guarded by mu_
};

// Shared-secret mode: calls sync->ExpireSecrets() once a secret's expiry
// has come (looked at every `tick_ms`), on its own thread, so that an
// expired secret leaves coturn's set on time even on an idle stream.
class SecretExpiryTimer {
 public:
  // `sync` and `clock` must outlive the timer.
  SecretExpiryTimer(CredentialSync* sync, const Clock* clock, int64_t tick_ms = 250);
  ~SecretExpiryTimer();  // Stop()s

  void Start();
  void Stop();

 private:
  CredentialSync* const sync_;
  const Clock* const clock_;
  const int64_t tick_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_SYNC_H_
