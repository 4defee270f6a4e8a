// Per-client rate limits on published credentials (design §7): one token
// bucket per client identity (certificate CN, or address for plaintext
// peers), refilled at `rate` credentials/s, holding at most `burst`.
// Thread-safe.
#ifndef TURNBROKER_BROKER_RATE_LIMITER_H_
#define TURNBROKER_BROKER_RATE_LIMITER_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "turnbroker/common/clock.h"

namespace turnbroker::broker {

class RateLimiter {
 public:
  // rate 0: unlimited.
  RateLimiter(double rate, double burst, const Clock* clock);

  // Takes `n` tokens for `client`, or returns RESOURCE_EXHAUSTED saying
  // when to retry. A request larger than the burst is refused outright.
  absl::Status Take(const std::string& client, uint64_t n);

 private:
  struct Bucket {
    double tokens;
    int64_t at_ms;
  };
  const double rate_, burst_;
  const Clock* const clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
  int64_t next_sweep_ms_ = 0;                        // guarded by mu_
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_RATE_LIMITER_H_
