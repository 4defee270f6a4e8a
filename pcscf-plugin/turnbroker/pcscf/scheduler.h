// Delayed tasks on one background thread: the overlap before an old
// credential is revoked, retries of revocations, periodic broker checks.
#ifndef TURNBROKER_PCSCF_SCHEDULER_H_
#define TURNBROKER_PCSCF_SCHEDULER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "turnbroker/common/clock.h"

namespace turnbroker::pcscf {

// Runs each task once, after its delay (the clock's monotonic time), in
// order of due time, on its own thread. Tasks must not block for long: they delay every
// task behind them. Thread-safe; a task may schedule further tasks.
class Scheduler {
 public:
  // `clock` must outlive the scheduler.
  explicit Scheduler(const Clock* clock = Clock::System());
  // Drops the tasks not yet run and waits for the running one.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Does nothing once Stop() was called.
  void RunAfter(int64_t delay_ms, std::function<void()> task);
  // Drops the tasks not yet run and waits for the running one. Idempotent.
  void Stop();
  // Tasks waiting to run.
  size_t pending() const;

 private:
  void Run();

  const Clock* const clock_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::multimap<int64_t, std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                                // guarded by mu_
  std::thread thread_;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_SCHEDULER_H_
