// Jittered exponential backoff (backoff.h).
#include "turnbroker/common/backoff.h"

#include <gtest/gtest.h>

namespace turnbroker {
namespace {

TEST(BackoffTest, GrowsWithJitterUpToTheMaximumAndResets) {
  Backoff b(BackoffOptions{100, 1'000, 2.0}, /*seed=*/42);
  int64_t bases[] = {100, 200, 400, 800, 1'000, 1'000};
  for (int64_t base : bases) {
    int64_t d = b.NextDelayMs();
    EXPECT_GE(d, base / 2);
    EXPECT_LE(d, base);
  }
  b.Reset();
  EXPECT_LE(b.NextDelayMs(), 100);
}

TEST(BackoffTest, JitterSpreadsDelays) {
  Backoff a(BackoffOptions{1'000, 1'000, 2.0}, 1), b(BackoffOptions{1'000, 1'000, 2.0}, 2);
  int same = 0;
  for (int i = 0; i < 20; ++i) same += a.NextDelayMs() == b.NextDelayMs();
  EXPECT_LT(same, 5);
}

TEST(BackoffTest, DelayOfAnAttemptFollowsTheSameSequence) {
  const BackoffOptions options{500, 30'000, 2.0};
  const int64_t bases[] = {500, 1'000, 2'000, 4'000, 8'000, 16'000, 30'000, 30'000};
  for (int attempt = 1; attempt <= 8; ++attempt) {
    const int64_t base = bases[attempt - 1];
    for (int i = 0; i < 20; ++i) {
      const int64_t d = BackoffDelayMs(options, attempt);
      EXPECT_GE(d, base / 2) << attempt;
      EXPECT_LE(d, base) << attempt;
    }
  }
  EXPECT_LE(BackoffDelayMs(options, 1'000'000), 30'000);  // no overflow, no long loop
}

}  // namespace
}  // namespace turnbroker
