#include "turnbroker/turn/sync_metrics.h"

namespace turnbroker::turn {

SyncMetrics::SyncMetrics(MetricsRegistry* r, const Clock* clock)
    : puts_applied(r->AddCounter("turnbroker_sync_events_applied_total",
                                 "Events applied to Redis (snapshot records included)",
                                 "kind=\"put\"")),
      revocations_applied(r->AddCounter("turnbroker_sync_events_applied_total",
                                        "Events applied to Redis (snapshot records included)",
                                        "kind=\"revoke\"")),
      secrets_applied(r->AddCounter("turnbroker_sync_events_applied_total",
                                    "Events applied to Redis (snapshot records included)",
                                    "kind=\"secret\"")),
      secret_retirements_applied(r->AddCounter(
          "turnbroker_sync_events_applied_total",
          "Events applied to Redis (snapshot records included)", "kind=\"secret_retired\"")),
      events_refused(r->AddCounter("turnbroker_sync_events_refused_total",
                                   "Records refused (realm not served, malformed) and skipped")),
      keys_deleted_revoked(r->AddCounter("turnbroker_sync_keys_deleted_total",
                                         "coturn keys deleted", "reason=\"revoked\"")),
      keys_deleted_reconciled(r->AddCounter("turnbroker_sync_keys_deleted_total",
                                            "coturn keys deleted", "reason=\"reconciled\"")),
      keys_retained(r->AddCounter("turnbroker_sync_keys_retained_total",
                                  "Keys kept after a snapshot from a new "
                                  "broker epoch (no proof of revocation)")),
      keys_pruned(r->AddCounter("turnbroker_sync_index_pruned_total",
                                "Expired keys removed from the managed index")),
      snapshots(r->AddCounter("turnbroker_sync_resyncs_total",
                              "Snapshots received (first start, gaps, epoch changes)")),
      stream_reconnects(r->AddCounter("turnbroker_sync_stream_reconnects_total",
                                      "Watch streams (re)opened after a failure")),
      redis_errors(r->AddCounter("turnbroker_sync_redis_errors_total",
                                 "Failed Redis operations (each retried)")),
      state_lost(r->AddCounter("turnbroker_sync_redis_state_lost_total",
                               "Times Redis was found without the stored position (restarted "
                               "empty, flushed): resynced from a full snapshot")),
      sessions_cancelled(r->AddCounter("turnbroker_sync_sessions_cancelled_total",
                                       "coturn sessions of revoked users ended")),
      admin_errors(r->AddCounter("turnbroker_sync_admin_errors_total",
                                 "Failed coturn admin (CLI) operations (each retried)")),
      secrets_removed_retired(r->AddCounter("turnbroker_sync_secrets_removed_total",
                                            "Shared secrets removed from coturn's sets",
                                            "reason=\"retired\"")),
      secrets_removed_expired(r->AddCounter("turnbroker_sync_secrets_removed_total",
                                            "Shared secrets removed from coturn's sets",
                                            "reason=\"expired\"")),
      secrets_removed_reconciled(r->AddCounter("turnbroker_sync_secrets_removed_total",
                                               "Shared secrets removed from coturn's sets",
                                               "reason=\"reconciled\"")),
      secrets_retained(r->AddCounter("turnbroker_sync_secrets_retained_total",
                                     "Shared secrets kept after a snapshot from a new broker "
                                     "epoch, until their credentials expire")),
      acknowledgements_ok(r->AddCounter("turnbroker_sync_acknowledgements_total",
                                        "Acknowledge calls to the broker (shared-secret mode)",
                                        "result=\"ok\"")),
      acknowledgements_failed(r->AddCounter("turnbroker_sync_acknowledgements_total",
                                            "Acknowledge calls to the broker (shared-secret mode)",
                                            "result=\"failed\"")),
      secrets(r->AddGauge("turnbroker_sync_secrets",
                          "Shared secrets in coturn's sets (legacy ones included)")),
      last_acknowledged_revision(r->AddGauge("turnbroker_sync_last_acknowledged_revision",
                                             "Revision last acknowledged to the broker")),
      last_applied_revision(r->AddGauge("turnbroker_sync_last_applied_revision",
                                        "Broker revision applied and stored in Redis")),
      legacy_keys(
          r->AddGauge("turnbroker_sync_legacy_keys", "Keys kept from an earlier broker epoch")),
      cancellations_pending(r->AddGauge("turnbroker_sync_cancellations_pending",
                                        "Revoked users whose coturn sessions are still to end")),
      commit_seconds(r->AddHistogram("turnbroker_sync_commit_seconds",
                                     "Redis MULTI/EXEC round trip of one applied frame")),
      revocation_delay_seconds(r->AddHistogram("turnbroker_sync_revocation_delay_seconds",
                                               "From the broker recording a revocation to its key "
                                               "deleted (live events)")) {
  r->AddGaugeFunction("turnbroker_sync_up", "1 while Redis is reachable and the stream synced",
                      [this] { return redis_up.load() && synced.load() ? 1.0 : 0.0; });
  r->AddGaugeFunction("turnbroker_sync_redis_up", "1 while Redis is reachable",
                      [this] { return redis_up.load() ? 1.0 : 0.0; });
  r->AddGaugeFunction("turnbroker_sync_lag_seconds",
                      "Seconds since a frame from the broker was last applied (idle streams "
                      "get a "
                      "PROGRESS marker every --progress-interval)",
                      [this, clock] {
                        int64_t last = last_applied_ms.load();
                        return last == 0 ? -1.0
                                         : static_cast<double>(clock->NowMs() - last) / 1000.0;
                      });
}

bool SyncMetrics::Healthy(int64_t now_ms, int64_t grace_ms) const {
  if (!redis_up.load()) return false;
  if (synced.load()) return true;
  int64_t last = last_synced_ms.load();
  return last != 0 && now_ms - last < grace_ms;
}

void SyncMetrics::SetSynced(bool synced_now, int64_t now_ms) {
  if (synced.load() || synced_now) last_synced_ms.store(now_ms);
  synced.store(synced_now);
}

}  // namespace turnbroker::turn
