// Jittered exponential backoff for reconnects and retries, on both sides:
// the TURN side's watch loop and session canceller, the eP-CSCF side's
// publisher and background revocations.
#ifndef TURNBROKER_COMMON_BACKOFF_H_
#define TURNBROKER_COMMON_BACKOFF_H_

#include <cstdint>
#include <random>

namespace turnbroker {

struct BackoffOptions {
  int64_t initial_ms = 100;
  int64_t max_ms = 10'000;
  double multiplier = 2.0;
};

// The delay before retry number `attempt` (1 for the first retry): its base
// is initial_ms × multiplier^(attempt − 1), at most max_ms, and the delay is
// drawn uniformly from [base/2, base] ("equal jitter"), so that many clients
// cut off by the same failure do not come back in step. Thread-safe (each
// thread draws from its own generator).
int64_t BackoffDelayMs(const BackoffOptions& options, int attempt);

// The same sequence kept by one retrying loop: each NextDelayMs() is the
// delay of the next attempt; Reset() after a success. Not thread-safe.
class Backoff {
 public:
  explicit Backoff(BackoffOptions options, uint64_t seed = std::random_device{}());
  int64_t NextDelayMs();
  void Reset() { base_ms_ = options_.initial_ms; }
  int64_t base_ms() const { return base_ms_; }

 private:
  const BackoffOptions options_;
  int64_t base_ms_;
  std::mt19937_64 rng_;
};

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_BACKOFF_H_
