// Jittered exponential backoff for reconnects and retries.
#ifndef TURNBROKER_TURN_BACKOFF_H_
#define TURNBROKER_TURN_BACKOFF_H_

#include <cstdint>
#include <random>

namespace turnbroker::turn {

struct BackoffOptions {
  int64_t initial_ms = 100;
  int64_t max_ms = 10'000;
  double multiplier = 2.0;
};

// Delays grow from initial_ms by `multiplier` up to max_ms; each is drawn
// uniformly from [base/2, base] ("equal jitter"), so that many syncs cut off
// by the same broker restart do not come back in step. Not thread-safe.
class Backoff {
 public:
  explicit Backoff(BackoffOptions options, uint64_t seed = std::random_device{}());
  // The delay before the next attempt.
  int64_t NextDelayMs();
  // After a success: the next delay starts from initial_ms again.
  void Reset() { base_ms_ = options_.initial_ms; }
  int64_t base_ms() const { return base_ms_; }

 private:
  const BackoffOptions options_;
  int64_t base_ms_;
  std::mt19937_64 rng_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_BACKOFF_H_
