// Completes revocations: coturn keeps the key of a live session in memory,
// so deleting the Redis key stops only new allocations. The applier queues
// each revoked user in the sync's `cancel` set (in the same transaction as
// the DEL, so a crash loses nothing); this worker lists the user's coturn
// sessions, cancels them, and dequeues the user. A user is checked once more
// a moment later, for an allocation that was being authenticated while the
// key was deleted. Entries whose credential has expired are dropped: expiry
// needs no cancellation.
//
// Runs on its own thread with its own Redis connection and CLI connection.
#ifndef TURNBROKER_TURN_SESSION_CANCELLER_H_
#define TURNBROKER_TURN_SESSION_CANCELLER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "turnbroker/common/backoff.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/turn/coturn_admin.h"
#include "turnbroker/turn/sync_metrics.h"
#include "turnbroker/turn/userdb.h"

namespace turnbroker::turn {

struct SessionCancellerOptions {
  // Queue checked this often even without a notification.
  int64_t poll_interval_ms = 5'000;
  // A handled user is checked again after this long.
  int64_t recheck_after_ms = 2'000;
  // Users handled per pass.
  size_t batch = 100;
  BackoffOptions backoff{500, 30'000, 2.0};
};

class SessionCanceller {
 public:
  // Everything must outlive the canceller; `redis` and `admin` are used by
  // its thread only.
  SessionCanceller(SessionCancellerOptions options, RedisClient* redis, SyncKeys keys,
                   CoturnAdmin* admin, const Clock* clock, SyncMetrics* metrics);
  ~SessionCanceller();  // Stop()s

  void Start();
  void Stop();
  // New users were queued. Any thread.
  void Notify();

  // One pass: ends the sessions of the queued users and dequeues them, and
  // re-checks users handled recently. For the thread and for tests.
  absl::Status RunOnce();

 private:
  void Loop();
  absl::Status EndSessions(const std::string& member);

  const SessionCancellerOptions options_;
  UserDb db_;
  CoturnAdmin* const admin_;
  const Clock* const clock_;
  SyncMetrics* const metrics_;
  Backoff backoff_;
  struct Recheck {
    std::string member;
    int64_t due_mono_ms;
  };
  std::deque<Recheck> rechecks_;  // the worker's thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool notified_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_SESSION_CANCELLER_H_
