// The embedded store: the broker's default, needing no other service. One
// commit thread takes every queued Publish and Revoke, plans them against the
// state (GroupPlanner), writes them to the journal in one transaction (group
// commit: one fsync for many requests), applies them to the state, then
// answers them. It also expires credentials and compacts the journal. The
// commit thread is the only writer of the state (state.h).
#ifndef TURNBROKER_BROKER_EMBEDDED_STORE_H_
#define TURNBROKER_BROKER_EMBEDDED_STORE_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "turnbroker/broker/journal.h"
#include "turnbroker/broker/state.h"
#include "turnbroker/broker/store.h"
#include "turnbroker/broker/write_group.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/metrics.h"

namespace turnbroker::broker {

struct EmbeddedStoreOptions {
  CredentialLimits limits;
  StateOptions state;
  // Credentials in one Publish request.
  size_t max_batch = 10'000;
  // Requests waiting for the commit thread; beyond: RESOURCE_EXHAUSTED.
  size_t max_queue = 100'000;
  // Credentials in one commit group (bounds a group's latency).
  size_t max_group_credentials = 50'000;
  // How often expiry and compaction run.
  int64_t maintenance_interval_ms = 100;
  // Under load, a group commit starts at most once per this many
  // microseconds of the clock's monotonic time, counted from the start of
  // the previous one: requests that arrive meanwhile join one larger group
  // (one fsync, one Watch frame per watcher and one answer per request for
  // all of them), at the cost of up to this much more latency. A request
  // that arrives after a quiet spell longer than this commits at once.
  // 0: a group starts as soon as the previous commit is done
  // (docs/architecture.md, "Group commit").
  int64_t min_commit_interval_us = 0;
  // Approach 1; its max_credential_ttl_ms is taken from limits.max_ttl_ms.
  SecretPolicy secrets;
};

class EmbeddedStore : public Store {
 public:
  // Recovers the journal into a new state and starts the commit thread.
  // `metrics` may be null. A journal write that fails (a full disk, an I/O
  // error) refuses its group with UNAVAILABLE and the next group tries
  // again. `on_failure` is called (once, on the commit thread) if the
  // journal reports DATA_LOSS (a damaged file); the store then refuses
  // writes for good.
  static absl::StatusOr<std::unique_ptr<EmbeddedStore>> Open(
      std::unique_ptr<Journal> journal, const EmbeddedStoreOptions& options, const Clock* clock,
      MetricsRegistry* metrics, std::function<void(const absl::Status&)> on_failure = nullptr);
  ~EmbeddedStore() override;  // Shutdown()

  // `done` is called inline when the request is refused at once (shutting
  // down, queue full, journal failed), else on the commit thread.
  // Shutdown() blocks until every request queued before it is answered.
  void Publish(const v1::PublishRequest* request, PublishDone done) override;
  using Store::Revoke;
  void Revoke(const v1::RevokeRequest* request, std::string only_issuer, RevokeDone done) override;
  void RevokeMinted(const v1::RevokeRequest* request, int64_t until_ms, RevokeDone done) override;
  void WriteSecret(SecretCommand command, SecretDone done) override;
  // Syncs' reports are kept in memory: after a restart they are known again
  // at their next report (every PROGRESS marker, 5 s by default).
  void Acknowledge(SyncAck ack, std::function<void(absl::Status)> done) override;
  std::vector<SyncAck> RecentSyncs() const override;
  const SecretPolicy& secret_policy() const override { return secret_policy_; }
  const CredentialState& state() const override { return *state_; }
  void SetCommitListener(std::function<void()> listener) override;
  std::string description() const override { return journal_->description(); }
  bool healthy() const override { return !failed_.load(); }
  void Shutdown() override;

  // Runs expiry and compaction now, on the commit thread, and returns when
  // they are done (the thread also runs them every maintenance_interval_ms).
  // For tests on a manual clock. Returns at once after Shutdown().
  void MaintainNow();

 private:
  using Op = WriteOp;
  // Waiters of MaintainNow(), answered by the commit thread.
  struct Metrics;

  EmbeddedStore(std::unique_ptr<Journal> journal, const EmbeddedStoreOptions& options,
                const Clock* clock, MetricsRegistry* metrics,
                std::function<void(const absl::Status&)> on_failure);
  absl::Status Enqueue(Op op);
  void CommitLoop();
  // Holds the next group until min_commit_interval_us after the last one
  // started (mu_ held; released while waiting).
  void WaitForCommitInterval(std::unique_lock<std::mutex>& lock);
  void CommitGroup(std::vector<Op>& ops, const std::vector<Revision>& compact);
  void Maintain();

  const EmbeddedStoreOptions options_;
  SecretPolicy secret_policy_;
  SyncRegistry syncs_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<CredentialState> state_;
  std::unique_ptr<Metrics> metrics_;
  std::function<void(const absl::Status&)> on_failure_;
  std::atomic<bool> failed_{false};
  absl::Status failure_;  // commit thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;                             // guarded by mu_
  std::vector<std::function<void()>> maintain_now_;  // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_
  std::mutex join_mu_;
  std::thread thread_;  // guarded by join_mu_ once started

  // Commit thread only.
  bool write_failing_ = false;  // the last journal write failed
  std::vector<Revision> dead_;
  int64_t next_maintenance_ms_ = 0;
  int64_t next_compaction_ms_ = 0;
  int64_t last_group_us_ = 0;  // when the last group's commit started (monotonic)
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_EMBEDDED_STORE_H_
