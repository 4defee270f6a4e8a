// The benchmarks' one percentile rule (bench/percentiles.h): nearest rank,
// lost samples at +infinity.
#include "percentiles.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace turnbroker::bench {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> OneTo(int n) {
  std::vector<double> v;
  for (int i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

TEST(PercentilesTest, NearestRankIsTheSampleAtCeilPN) {
  const std::vector<double> ten = OneTo(10);
  EXPECT_EQ(NearestRank(ten, 0, 0.0), 1);
  EXPECT_EQ(NearestRank(ten, 0, 0.05), 1);  // ceil(0.5) = 1
  EXPECT_EQ(NearestRank(ten, 0, 0.10), 1);  // exactly rank 1
  EXPECT_EQ(NearestRank(ten, 0, 0.11), 2);  // ceil(1.1) = 2
  EXPECT_EQ(NearestRank(ten, 0, 0.50), 5);  // no interpolation, no rounding up
  EXPECT_EQ(NearestRank(ten, 0, 0.51), 6);
  EXPECT_EQ(NearestRank(ten, 0, 0.99), 10);
  EXPECT_EQ(NearestRank(ten, 0, 1.0), 10);
}

TEST(PercentilesTest, AProductThatIsWholeInDecimalsIsThatRank) {
  // 0.07 * 100 is 7.000000000000001 in binary; the rank is 7, not 8.
  EXPECT_EQ(NearestRank(OneTo(100), 0, 0.07), 7);
  EXPECT_EQ(NearestRank(OneTo(100), 0, 0.14), 14);
  EXPECT_EQ(NearestRank(OneTo(100), 0, 0.99), 99);
  EXPECT_EQ(NearestRank(OneTo(1000), 0, 0.999), 999);
  EXPECT_EQ(NearestRank(OneTo(1000), 0, 0.99), 990);
  EXPECT_EQ(NearestRank(OneTo(200), 0, 0.99), 198);
}

TEST(PercentilesTest, SummarizeSortsAndTakesEachRank) {
  Percentiles p = Summarize(std::vector<double>{9, 2, 7, 4, 1, 8, 3, 10, 6, 5});
  EXPECT_EQ(p.samples, 10u);
  EXPECT_EQ(p.lost, 0u);
  EXPECT_EQ(p.p50, 5);
  EXPECT_EQ(p.p90, 9);
  EXPECT_EQ(p.p99, 10);
  EXPECT_EQ(p.p999, 10);
  EXPECT_EQ(p.max, 10);
}

TEST(PercentilesTest, LostSamplesCountAsInfinitelyLate) {
  // 99 measured (1..99) and 1 lost: the lost one is the slowest of 100.
  Percentiles p = Summarize(OneTo(99), 1);
  EXPECT_EQ(p.samples, 100u);
  EXPECT_EQ(p.lost, 1u);
  EXPECT_EQ(p.p50, 50);
  EXPECT_EQ(p.p99, 99);
  EXPECT_EQ(p.max, kInf);
  // 2 lost of 100: p99's rank (99) is a lost one.
  p = Summarize(OneTo(98), 2);
  EXPECT_EQ(p.p90, 90);
  EXPECT_EQ(p.p99, kInf);
  // Dropping them instead would have given p99 = 98.
  EXPECT_EQ(Summarize(OneTo(98)).p99, 98);
}

TEST(PercentilesTest, AllLostIsLostEverywhere) {
  Percentiles p = Summarize(std::vector<double>{}, 3);
  EXPECT_EQ(p.samples, 3u);
  EXPECT_EQ(p.p50, kInf);
  EXPECT_EQ(FormatValue(p.p50), "lost");
}

TEST(PercentilesTest, NoSamplesIsNotAFigure) {
  Percentiles p = Summarize(std::vector<double>{});
  EXPECT_EQ(p.samples, 0u);
  EXPECT_TRUE(std::isnan(p.p50));
  EXPECT_TRUE(std::isnan(Median({})));
  EXPECT_EQ(FormatValue(p.p99), "n/a");
}

TEST(PercentilesTest, IntegerMicrosecondsAreSummarizedAlike) {
  Percentiles p = Summarize(std::vector<int64_t>{300, 100, 200}, 0);
  EXPECT_EQ(p.p50, 200);
  EXPECT_EQ(p.max, 300);
}

TEST(PercentilesTest, MedianOfRunsIsTheLowerMiddleForAnEvenCount) {
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2);
  EXPECT_EQ(Median({kInf, 1, 2}), 2);  // one run lost its p99: the median still stands
}

TEST(PercentilesTest, FormatScalesAndNamesTheLost) {
  Percentiles p = Summarize(std::vector<double>{1500, 2500}, 1);
  EXPECT_EQ(Format(p, "ms", 1e-3), "n=3 lost=1 p50=2.500 p90=lost p99=lost p99.9=lost max=lost ms");
  EXPECT_EQ(FormatValue(1234.5678, 1e-3, 2), "1.23");
}

}  // namespace
}  // namespace turnbroker::bench
