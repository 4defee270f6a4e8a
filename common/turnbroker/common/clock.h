// Time as the credential model sees it: Unix milliseconds, injectable.
#ifndef TURNBROKER_COMMON_CLOCK_H_
#define TURNBROKER_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace turnbroker {

// Wall-clock time in Unix milliseconds. Expiry is absolute wall-clock time
// (it crosses processes and hosts), so this is the system clock, not a
// monotonic one. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;

  // The process-wide system clock; never null, never deleted.
  static const Clock* System();
};

// A clock that moves only when told to; for tests.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void Set(int64_t now_ms) { now_ms_.store(now_ms); }
  void Advance(int64_t delta_ms) { now_ms_.fetch_add(delta_ms); }

 private:
  std::atomic<int64_t> now_ms_;
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

// Monotonic microseconds, for latency measurements.
inline int64_t MonotonicMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_CLOCK_H_
