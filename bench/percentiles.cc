#include "percentiles.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace turnbroker::bench {

double NearestRank(const std::vector<double>& sorted, size_t lost, double p) {
  const size_t n = sorted.size() + lost;
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  p = std::clamp(p, 0.0, 1.0);
  // ceil(p * n), at least 1. p * n is taken a hair (relative 1e-12) lower
  // so that a product that is an integer in decimals but not in binary
  // (0.07 * 100 = 7.000000000000001) gives that integer's rank, not the next.
  const double exact = p * static_cast<double>(n);
  size_t rank = static_cast<size_t>(std::ceil(exact * (1 - 1e-12)));
  rank = std::clamp<size_t>(rank, 1, n);
  if (rank > sorted.size()) return std::numeric_limits<double>::infinity();
  return sorted[rank - 1];
}

Percentiles Summarize(std::vector<double> values, size_t lost) {
  std::sort(values.begin(), values.end());
  Percentiles p;
  p.samples = values.size() + lost;
  p.lost = lost;
  p.p50 = NearestRank(values, lost, 0.50);
  p.p90 = NearestRank(values, lost, 0.90);
  p.p99 = NearestRank(values, lost, 0.99);
  p.p999 = NearestRank(values, lost, 0.999);
  p.max = NearestRank(values, lost, 1.0);
  return p;
}

Percentiles Summarize(const std::vector<int64_t>& values, size_t lost) {
  return Summarize(std::vector<double>(values.begin(), values.end()), lost);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return NearestRank(values, 0, 0.5);
}

std::string FormatValue(double value, double scale, int decimals) {
  if (std::isnan(value)) return "n/a";
  if (std::isinf(value)) return "lost";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value * scale);
  return buf;
}

std::string Format(const Percentiles& p, const char* unit, double scale) {
  char buf[320];
  std::snprintf(buf, sizeof buf, "n=%zu lost=%zu p50=%s p90=%s p99=%s p99.9=%s max=%s %s",
                p.samples, p.lost, FormatValue(p.p50, scale).c_str(),
                FormatValue(p.p90, scale).c_str(), FormatValue(p.p99, scale).c_str(),
                FormatValue(p.p999, scale).c_str(), FormatValue(p.max, scale).c_str(), unit);
  return buf;
}

}  // namespace turnbroker::bench
