#include "turnbroker/broker/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "turnbroker/common/strings.h"

namespace turnbroker::broker {

RateLimiter::RateLimiter(double rate, double burst, const Clock* clock, std::string unit,
                         std::string burst_flag)
    : rate_(rate),
      burst_(std::max(burst, rate)),
      clock_(clock),
      unit_(std::move(unit)),
      burst_flag_(std::move(burst_flag)) {}

absl::Status RateLimiter::Take(const std::string& client, uint64_t n) {
  if (rate_ <= 0) return absl::OkStatus();
  int64_t now = clock_->NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  if (now >= next_sweep_ms_) {
    // Full buckets carry no information: forget them, so the map holds only
    // recently active clients.
    std::erase_if(buckets_, [&](const auto& e) {
      return e.second.tokens + (now - e.second.at_ms) * rate_ / 1000 >= burst_;
    });
    next_sweep_ms_ = now + 60'000;
  }
  auto [it, inserted] = buckets_.try_emplace(client, Bucket{burst_, now});
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + (now - b.at_ms) * rate_ / 1000);
  b.at_ms = now;
  if (static_cast<double>(n) > burst_) {
    return absl::ResourceExhaustedError(
        StrCat(unit_, ": ", n, " in one request exceed this client's burst of ",
               static_cast<uint64_t>(burst_), " (", burst_flag_, ")"));
  }
  if (b.tokens < static_cast<double>(n)) {
    int64_t wait_ms = static_cast<int64_t>(std::ceil((n - b.tokens) * 1000 / rate_));
    return absl::ResourceExhaustedError(StrCat("rate limit: client '", client, "' is over ",
                                               static_cast<uint64_t>(rate_), " ", unit_,
                                               "/s; retry in ", wait_ms, " ms"));
  }
  b.tokens -= static_cast<double>(n);
  return absl::OkStatus();
}

}  // namespace turnbroker::broker
