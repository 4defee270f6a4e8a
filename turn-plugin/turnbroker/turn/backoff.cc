#include "turnbroker/turn/backoff.h"

#include <algorithm>

namespace turnbroker::turn {

Backoff::Backoff(BackoffOptions options, uint64_t seed)
    : options_(options), base_ms_(options.initial_ms), rng_(seed) {}

int64_t Backoff::NextDelayMs() {
  int64_t base = std::max<int64_t>(1, base_ms_);
  std::uniform_int_distribution<int64_t> jitter(base / 2, base);
  int64_t delay = jitter(rng_);
  base_ms_ = std::min<int64_t>(options_.max_ms,
                               static_cast<int64_t>(static_cast<double>(base) * options_.multiplier));
  return delay;
}

}  // namespace turnbroker::turn
