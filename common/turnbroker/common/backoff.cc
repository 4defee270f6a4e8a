#include "turnbroker/common/backoff.h"

#include <algorithm>

namespace turnbroker {
namespace {

int64_t Jittered(int64_t base_ms, std::mt19937_64& rng) {
  const int64_t base = std::max<int64_t>(1, base_ms);
  return std::uniform_int_distribution<int64_t>(base / 2, base)(rng);
}

int64_t Grown(const BackoffOptions& options, int64_t base_ms) {
  const double grown = static_cast<double>(std::max<int64_t>(1, base_ms)) * options.multiplier;
  return grown >= static_cast<double>(options.max_ms) ? options.max_ms
                                                      : static_cast<int64_t>(grown);
}

}  // namespace

int64_t BackoffDelayMs(const BackoffOptions& options, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  int64_t base = std::min(options.initial_ms, options.max_ms);
  for (int i = 1; i < attempt && base < options.max_ms; ++i) base = Grown(options, base);
  return Jittered(base, rng);
}

Backoff::Backoff(BackoffOptions options, uint64_t seed)
    : options_(options), base_ms_(options.initial_ms), rng_(seed) {}

int64_t Backoff::NextDelayMs() {
  const int64_t delay = Jittered(base_ms_, rng_);
  base_ms_ = Grown(options_, base_ms_);
  return delay;
}

}  // namespace turnbroker
