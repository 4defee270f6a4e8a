#include "turnbroker/turn/session_canceller.h"

#include <chrono>

#include "absl/container/flat_hash_set.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/turn/schema.h"

namespace turnbroker::turn {
namespace {

int64_t MonoMs() { return MonotonicMicros() / 1000; }

// `ps` listings per user and pass, at most.
constexpr int kMaxListings = 64;

}  // namespace

SessionCanceller::SessionCanceller(SessionCancellerOptions options, RedisClient* redis,
                                   SyncKeys keys, CoturnAdmin* admin, const Clock* clock,
                                   SyncMetrics* metrics)
    : options_(options),
      db_(redis, std::move(keys)),
      admin_(admin),
      clock_(clock),
      metrics_(metrics),
      backoff_(options.backoff) {}

SessionCanceller::~SessionCanceller() { Stop(); }

void SessionCanceller::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void SessionCanceller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SessionCanceller::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

absl::Status SessionCanceller::EndSessions(const std::string& member) {
  std::string_view realm, username;
  if (!SplitMember(member, &realm, &username)) return absl::OkStatus();
  // coturn lists at most cli-max-output-sessions sessions per `ps`, and
  // drops a cancelled one from its list a little later: list again until a
  // listing shows nothing not cancelled yet.
  absl::flat_hash_set<std::string> cancelled;
  for (int round = 0; round < kMaxListings; ++round) {
    auto ids = admin_->Sessions(realm, username);
    if (!ids.ok()) return ids.status();
    size_t fresh = 0;
    for (const std::string& id : *ids) {
      if (!cancelled.insert(id).second) continue;
      if (auto s = admin_->Cancel(id); !s.ok()) return s;
      metrics_->sessions_cancelled->Inc();
      ++fresh;
    }
    if (fresh == 0) break;
  }
  if (!cancelled.empty()) {
    LogInfo("coturn sessions of a revoked user ended")
        .Kv("user", member)
        .Kv("sessions", cancelled.size());
  }
  return absl::OkStatus();
}

absl::Status SessionCanceller::RunOnce() {
  // Users handled in earlier passes, due for their second look.
  while (!rechecks_.empty() && rechecks_.front().due_mono_ms <= MonoMs()) {
    if (auto s = EndSessions(rechecks_.front().member); !s.ok()) return s;
    rechecks_.pop_front();
  }
  const int64_t now = clock_->NowMs();
  auto pending = db_.PendingCancellations(now, options_.batch);
  if (!pending.ok()) return pending.status();
  metrics_->cancellations_pending->Set(static_cast<int64_t>(pending->size()));
  UserDb::Transaction txn = db_.Begin();
  absl::Status failed;
  for (const ManagedKey& k : *pending) {
    failed = EndSessions(k.member);
    if (!failed.ok()) break;
    txn.DequeueCancellation(k.member);
    rechecks_.push_back(Recheck{k.member, MonoMs() + options_.recheck_after_ms});
  }
  txn.DropCancellationsBefore(now);
  if (auto s = db_.Commit(&txn); !s.ok()) return s;
  return failed;
}

void SessionCanceller::Loop() {
  int64_t wait_ms = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                   [this] { return stopping_ || notified_; });
      if (stopping_) return;
      notified_ = false;
    }
    absl::Status s = RunOnce();
    if (s.ok()) {
      backoff_.Reset();
      wait_ms = options_.poll_interval_ms;
      if (!rechecks_.empty()) {
        wait_ms = std::min(wait_ms, std::max<int64_t>(0, rechecks_.front().due_mono_ms - MonoMs()));
      }
      continue;
    }
    metrics_->admin_errors->Inc();
    wait_ms = backoff_.NextDelayMs();
    LogWarn("cannot end coturn sessions of revoked users; retrying")
        .Kv("error", StatusLine(s))
        .Kv("retry_in_ms", wait_ms);
  }
}

}  // namespace turnbroker::turn
