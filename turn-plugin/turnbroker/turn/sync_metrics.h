// turn-credential-sync's Prometheus metrics and health state. Every field is
// an atomic: updated by the applying thread and the session canceller, read
// by the metrics server.
#ifndef TURNBROKER_TURN_SYNC_METRICS_H_
#define TURNBROKER_TURN_SYNC_METRICS_H_

#include <atomic>
#include <cstdint>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/metrics.h"

namespace turnbroker::turn {

struct SyncMetrics {
  // Registers every metric in `registry` (which must outlive this).
  SyncMetrics(MetricsRegistry* registry, const Clock* clock);

  Counter* puts_applied;
  Counter* revocations_applied;
  Counter* secrets_applied;  // Event.secret written to coturn's set (shared-secret mode)
  Counter* secret_retirements_applied;
  Counter* events_refused;
  Counter* keys_deleted_revoked;
  Counter* keys_deleted_reconciled;
  Counter* keys_retained;  // kept after an epoch change (legacy)
  Counter* keys_pruned;
  Counter* snapshots;
  Counter* stream_reconnects;
  Counter* redis_errors;
  Counter* state_lost;  // Redis lost the stored state (restarted empty)
  Counter* sessions_cancelled;
  Counter* admin_errors;
  // Shared-secret mode (approach 1).
  Counter* secrets_removed_retired;  // SREM, by reason
  Counter* secrets_removed_expired;
  Counter* secrets_removed_reconciled;
  Counter* secrets_retained;  // kept as legacy after an epoch change
  Counter* acknowledgements_ok;
  Counter* acknowledgements_failed;
  Gauge* secrets;  // secrets in coturn's sets (legacy ones included)
  Gauge* last_acknowledged_revision;
  Gauge* last_applied_revision;
  Gauge* legacy_keys;
  Gauge* cancellations_pending;
  Histogram* commit_seconds;            // one MULTI/EXEC round trip
  Histogram* revocation_delay_seconds;  // broker commit -> key deleted

  // Health: Redis reachable at the last attempt; a stream is past SYNCED.
  std::atomic<bool> redis_up{false};
  std::atomic<bool> synced{false};
  // When the last frame was applied, and when the sync was last synced
  // (Unix ms; 0: never).
  std::atomic<int64_t> last_applied_ms{0};
  std::atomic<int64_t> last_synced_ms{0};

  // Healthy: Redis is up, and the sync is synced or lost its stream less
  // than `grace_ms` ago (a broker restart is not an outage of the TURN
  // side: coturn keeps serving the keys in Redis).
  bool Healthy(int64_t now_ms, int64_t grace_ms) const;

  // Marks the sync synced (or not), keeping last_synced_ms.
  void SetSynced(bool synced_now, int64_t now_ms);
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_SYNC_METRICS_H_
