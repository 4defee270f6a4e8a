// The one way the benchmarks compute percentiles (docs/benchmarks.md#percentiles).
//
// Rounding rule: nearest rank, no interpolation. Of n samples sorted
// ascending, the p-quantile (0 < p <= 1) is the sample at 1-based rank
// ceil(p * n); p = 0 gives the smallest. Every figure printed is a value
// some sample actually had.
//
// Lost-sample rule: a sample that was sent but never measured (no answer, a
// delivery that never came, an error answer) counts as +infinity. Lost
// samples sort after every measured one, so a percentile whose rank falls
// among them is +infinity and prints as "lost"; the count of lost samples is
// printed with every summary. Nothing is dropped silently. Samples left out
// on purpose (the warm-up) are not passed in at all.
//
// Thread-compatible: plain values and functions.
#ifndef TURNBROKER_BENCH_PERCENTILES_H_
#define TURNBROKER_BENCH_PERCENTILES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace turnbroker::bench {

// The nearest-rank p-quantile of `sorted` (ascending) followed by `lost`
// samples at +infinity. NaN when there are no samples at all. p outside
// [0, 1] is clamped.
double NearestRank(const std::vector<double>& sorted, size_t lost, double p);

struct Percentiles {
  size_t samples = 0;  // measured + lost
  size_t lost = 0;
  // In the input's unit; +infinity where the rank falls among the lost
  // samples, NaN when there are no samples.
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

// Sorts a copy of `values` and takes the percentiles above.
Percentiles Summarize(std::vector<double> values, size_t lost = 0);
Percentiles Summarize(const std::vector<int64_t>& values, size_t lost = 0);

// The median of several runs' figures, same rule (of an even count, the
// lower middle one). NaN for none.
double Median(std::vector<double> values);

// One figure, value * scale with `decimals` decimals; "lost" for
// +infinity, "n/a" for NaN.
std::string FormatValue(double value, double scale = 1, int decimals = 3);

// "n=... lost=... p50=... p90=... p99=... p99.9=... max=... <unit>", each
// value multiplied by `scale` first (e.g. 1e-3 for µs printed as ms).
std::string Format(const Percentiles& p, const char* unit, double scale = 1);

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_PERCENTILES_H_
