// Per-client rate limits (docs/security.md): one token bucket per client
// identity (certificate CN, or address for plaintext peers), refilled at
// `rate` units/s, holding at most `burst`. The broker has one for published
// credentials and one for Revoke calls. Thread-safe.
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
  // rate 0: unlimited. `unit` names what is counted and `burst_flag` where
  // the burst is set, in refusals.
  RateLimiter(double rate, double burst, const Clock* clock, std::string unit = "credentials",
              std::string burst_flag = "broker flag --max-publish-burst");

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
  const std::string unit_, burst_flag_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
  int64_t next_sweep_ms_ = 0;                        // guarded by mu_
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_RATE_LIMITER_H_
