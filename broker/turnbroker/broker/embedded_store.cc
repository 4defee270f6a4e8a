#include "turnbroker/broker/embedded_store.h"

#include <algorithm>
#include <future>

#include "turnbroker/broker/planner.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::broker {
namespace {

// Dead rows deleted per commit, so compaction never makes one commit slow.
constexpr size_t kMaxCompactionPerCommit = 20'000;
constexpr int64_t kCompactionIntervalMs = 1'000;
// Credentials expired per maintenance pass (bounds a pass's lock hold).
constexpr size_t kMaxExpiryPerPass = 50'000;

}  // namespace

struct EmbeddedStore::Metrics : CommitMetrics {
  explicit Metrics(MetricsRegistry* r)
      : CommitMetrics(r),
        compacted(r->AddCounter("turnbroker_store_compacted_rows_total",
                                "Journal rows deleted by compaction")),
        failures(r->AddCounter("turnbroker_store_failures_total", "Journal write failures")),
        writable(r->AddGauge("turnbroker_store_writable",
                             "0 while journal writes fail (e.g. a full disk), else 1")) {
    writable->Set(1);
  }
  Counter *compacted, *failures;
  Gauge* writable;
};

absl::StatusOr<std::unique_ptr<EmbeddedStore>> EmbeddedStore::Open(
    std::unique_ptr<Journal> journal, const EmbeddedStoreOptions& options, const Clock* clock,
    MetricsRegistry* metrics, std::function<void(const absl::Status&)> on_failure) {
  std::unique_ptr<EmbeddedStore> store(
      new EmbeddedStore(std::move(journal), options, clock, metrics, std::move(on_failure)));
  if (auto s = store->journal_->Recover(store->state_.get()); !s.ok()) return s;
  if (store->state_->head() > 0) {
    // A restart: the syncs' reports were in the previous process's memory.
    // Until each has reported again (every 5 s), none would look pending,
    // so activations wait one report window (docs/approach1.md, "Rotation").
    store->secret_policy_.reports_complete_at_ms =
        clock->NowMs() + store->secret_policy_.ack_window_ms;
  }
  store->thread_ = std::thread([s = store.get()] { s->CommitLoop(); });
  return store;
}

EmbeddedStore::EmbeddedStore(std::unique_ptr<Journal> journal, const EmbeddedStoreOptions& options,
                             const Clock* clock, MetricsRegistry* metrics,
                             std::function<void(const absl::Status&)> on_failure)
    : options_(options),
      secret_policy_(options.secrets),
      journal_(std::move(journal)),
      state_(std::make_unique<CredentialState>(options.state, clock)),
      on_failure_(std::move(on_failure)) {
  static MetricsRegistry* unused = new MetricsRegistry;  // when none is given
  metrics_ = std::make_unique<Metrics>(metrics ? metrics : unused);
  secret_policy_.max_credential_ttl_ms = options.limits.max_ttl_ms;
}

EmbeddedStore::~EmbeddedStore() { Shutdown(); }

void EmbeddedStore::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // The commit thread answers everything queued before it exits.
  std::lock_guard<std::mutex> lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

absl::Status EmbeddedStore::Enqueue(Op op) {
  if (failed_.load()) {
    return absl::UnavailableError("store failed; the broker is restarting");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = PushWrite(queue_, std::move(op), stopping_, options_.max_queue); !s.ok()) return s;
    metrics_->queue->Set(static_cast<int64_t>(queue_.size()));
  }
  cv_.notify_one();
  return absl::OkStatus();
}

void EmbeddedStore::SetCommitListener(std::function<void()> listener) {
  state_->SetCommitListener(std::move(listener));
}

void EmbeddedStore::MaintainNow() {
  std::promise<void> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    maintain_now_.push_back([&done] { done.set_value(); });
  }
  cv_.notify_one();
  done.get_future().wait();
}

void EmbeddedStore::Publish(const v1::PublishRequest* request, PublishDone done) {
  if (auto s = Enqueue(PublishOp{request, done}); !s.ok()) done(s);
}

void EmbeddedStore::Revoke(const v1::RevokeRequest* request, std::string only_issuer,
                           RevokeDone done) {
  if (auto s = Enqueue(RevokeOp{request, done, 0, 0, std::move(only_issuer)}); !s.ok()) done(s);
}

void EmbeddedStore::RevokeMinted(const v1::RevokeRequest* request, int64_t until_ms,
                                 RevokeDone done) {
  if (auto s = Enqueue(RevokeOp{request, done, 0, until_ms}); !s.ok()) done(s);
}

void EmbeddedStore::WriteSecret(SecretCommand command, SecretDone done) {
  if (auto s = Enqueue(SecretOp{std::move(command), done, 0}); !s.ok()) done(s);
}

void EmbeddedStore::Acknowledge(SyncAck ack, std::function<void(absl::Status)> done) {
  done(syncs_.Record(std::move(ack)));
}

std::vector<SyncAck> EmbeddedStore::RecentSyncs() const {
  return syncs_.Recent(state_->clock()->NowMs(), secret_policy_.ack_window_ms);
}

void EmbeddedStore::CommitLoop() {
  std::vector<Op> ops;
  std::vector<std::function<void()>> maintain_now;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      int64_t wait_ms = std::max<int64_t>(0, next_maintenance_ms_ - state_->clock()->NowMs());
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                   [this] { return !queue_.empty() || !maintain_now_.empty() || stopping_; });
      if (!queue_.empty()) WaitForCommitInterval(lock);
      maintain_now.swap(maintain_now_);
      if (queue_.empty() && maintain_now.empty() && stopping_) break;
      TakeGroup(queue_, options_.max_group_credentials, &ops);
      metrics_->queue->Set(static_cast<int64_t>(queue_.size()));
    }
    if (!ops.empty()) {
      last_group_us_ = state_->clock()->MonotonicMicros();
      CommitGroup(ops, {});
    }
    ops.clear();
    if (!maintain_now.empty() || state_->clock()->NowMs() >= next_maintenance_ms_) Maintain();
    for (auto& done : maintain_now) done();
    maintain_now.clear();
  }
}

void EmbeddedStore::WaitForCommitInterval(std::unique_lock<std::mutex>& lock) {
  const int64_t interval = options_.min_commit_interval_us;
  if (interval <= 0 || last_group_us_ == 0) return;
  const Clock* clock = state_->clock();
  const int64_t due = last_group_us_ + interval;
  // Requests queued meanwhile join this group. Shutdown does not wait.
  for (int64_t now = clock->MonotonicMicros(); now < due && !stopping_;
       now = clock->MonotonicMicros()) {
    cv_.wait_for(lock, std::chrono::microseconds(clock->RealWaitMicros(due - now)),
                 [this] { return stopping_; });
  }
}

void EmbeddedStore::CommitGroup(std::vector<Op>& ops, const std::vector<Revision>& compact) {
  if (failed_.load()) {
    absl::Status s = absl::UnavailableError(
        StrCat("store failed (", failure_.message(), "); the broker is restarting"));
    FailGroup(ops, s);
    return;
  }
  GroupPlanner planner(*state_, options_.limits, options_.max_batch);
  planner.SetSecretPolicy(secret_policy_,
                          HasActivation(ops) ? RecentSyncs() : std::vector<SyncAck>());
  PlannedGroup planned = PlanGroup(planner, ops);
  std::vector<Change> changes = planner.TakeChanges();

  if (!changes.empty() || !compact.empty()) {
    int64_t start = MonotonicMicros();
    Revision head = changes.empty() ? state_->head() : changes.back().revision;
    absl::Status s = journal_->Commit(changes, compact, head);
    if (!s.ok()) {
      metrics_->failures->Inc();
      dead_.insert(dead_.end(), compact.begin(), compact.end());
      absl::Status refused;
      if (s.code() == absl::StatusCode::kDataLoss) {
        // A damaged file: retrying cannot help.
        LogError("store damaged; refusing writes").Kv("error", s);
        failure_ = s;
        failed_.store(true);
        if (on_failure_) on_failure_(s);
        refused = absl::UnavailableError(
            StrCat("store failed (", s.message(), "); nothing of this request was applied"));
      } else {
        // A full disk, an I/O error: nothing of the group was applied, and
        // the next group tries again, so writes resume by themselves once
        // the journal can write. Reads and watchers are served meanwhile.
        if (!write_failing_) {
          LogWarn("store cannot write; refusing writes until it can (every commit retries)")
              .Kv("error", s);
        }
        write_failing_ = true;
        metrics_->writable->Set(0);
        refused = absl::UnavailableError(
            StrCat("store cannot write (", s.message(), "); the request was not applied: retry"));
      }
      FailGroup(ops, refused);
      return;
    }
    if (write_failing_) {
      LogInfo("store writes again");
      write_failing_ = false;
      metrics_->writable->Set(1);
    }
    metrics_->Committed(start, changes.size());
    metrics_->compacted->Inc(compact.size());
    state_->Apply(changes);
  }

  AnswerGroup(ops, planned, state_->epoch());
}

void EmbeddedStore::Maintain() {
  next_maintenance_ms_ = state_->clock()->NowMs() + options_.maintenance_interval_ms;
  size_t expired = state_->Expire(kMaxExpiryPerPass);
  metrics_->expired->Inc(expired);
  if (expired == kMaxExpiryPerPass) next_maintenance_ms_ = 0;  // more to do
  std::vector<Revision> dead = state_->TakeDeadRevisions();
  if (!journal_->compacts() || failed_.load()) return;
  dead_.insert(dead_.end(), dead.begin(), dead.end());
  int64_t now = state_->clock()->NowMs();
  if (dead_.empty() || now < next_compaction_ms_) return;
  next_compaction_ms_ = now + kCompactionIntervalMs;
  // Rows that hold nothing live, below the retained history, can go.
  Revision floor = state_->history_first();
  auto mid = std::partition(dead_.begin(), dead_.end(), [floor](Revision r) { return r >= floor; });
  size_t n = std::min<size_t>(dead_.end() - mid, kMaxCompactionPerCommit);
  if (n == 0) return;
  std::vector<Revision> compact(dead_.end() - n, dead_.end());
  dead_.resize(dead_.size() - n);
  std::vector<Op> none;
  CommitGroup(none, compact);
}

}  // namespace turnbroker::broker
