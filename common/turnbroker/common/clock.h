// Wall-clock and monotonic time, injectable.
#ifndef TURNBROKER_COMMON_CLOCK_H_
#define TURNBROKER_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace turnbroker {

// Monotonic microseconds, for latency measurements.
inline int64_t MonotonicMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Time as a part sees it, injectable so that tests control it.
//
// NowMs() is wall-clock time in Unix milliseconds. Expiry is absolute
// wall-clock time (it crosses processes and hosts), so this is the system
// clock, not a monotonic one. MonotonicMicros() is what timeouts, deadlines,
// backoffs and ages are measured in. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
  virtual int64_t MonotonicMicros() const { return ::turnbroker::MonotonicMicros(); }

  // How long a thread that waits for `micros` of this clock's monotonic time
  // blocks (on its condition variable or completion queue) before it looks
  // at the clock again. The system clock: `micros`. A ManualClock moves only
  // when a test moves it, so its waiters look again every millisecond.
  virtual int64_t RealWaitMicros(int64_t micros) const { return micros; }

  // The process-wide system clock; never null, never deleted.
  static const Clock* System();
};

// A clock that moves only when told to; for tests. Advance() moves both
// times; Set() moves the wall clock only (as an NTP step would).
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t now_ms, int64_t monotonic_us = 1'000'000)
      : now_ms_(now_ms), monotonic_us_(monotonic_us) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  int64_t MonotonicMicros() const override { return monotonic_us_.load(); }
  int64_t RealWaitMicros(int64_t micros) const override { return micros < 1'000 ? micros : 1'000; }
  void Set(int64_t now_ms) { now_ms_.store(now_ms); }
  void Advance(int64_t delta_ms) {
    now_ms_.fetch_add(delta_ms);
    monotonic_us_.fetch_add(delta_ms * 1000);
  }

 private:
  std::atomic<int64_t> now_ms_;
  std::atomic<int64_t> monotonic_us_;
};

inline const Clock* Clock::System() {
  struct SystemClock : Clock {
    int64_t NowMs() const override {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    }
  };
  static const SystemClock clock;
  return &clock;
}

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_CLOCK_H_
