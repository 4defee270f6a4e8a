#include "turnbroker/broker/rate_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace turnbroker::broker {
namespace {

using ::testing::HasSubstr;

TEST(RateLimiterTest, RefillsAtTheRateUpToTheBurst) {
  ManualClock clock(1'000'000);
  RateLimiter limiter(100, 200, &clock);
  EXPECT_TRUE(limiter.Take("pcscf-1", 200).ok());
  absl::Status s = limiter.Take("pcscf-1", 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("client 'pcscf-1' is over 100 credentials/s; retry in 10 ms"));
  EXPECT_TRUE(limiter.Take("pcscf-2", 50).ok()) << "buckets are per client";
  clock.Advance(500);
  EXPECT_TRUE(limiter.Take("pcscf-1", 50).ok());
  EXPECT_FALSE(limiter.Take("pcscf-1", 1).ok());
  clock.Advance(10'000);
  EXPECT_TRUE(limiter.Take("pcscf-1", 200).ok()) << "never more than the burst";
  EXPECT_FALSE(limiter.Take("pcscf-1", 1).ok());
}

TEST(RateLimiterTest, ARequestLargerThanTheBurstIsRefusedOutright) {
  ManualClock clock(0);
  RateLimiter limiter(10, 0, &clock);  // burst defaults to the rate
  absl::Status s = limiter.Take("c", 11);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--max-publish-burst"));
}

TEST(RateLimiterTest, ZeroRateMeansUnlimited) {
  ManualClock clock(0);
  RateLimiter limiter(0, 0, &clock);
  EXPECT_TRUE(limiter.Take("c", 1'000'000).ok());
}

}  // namespace
}  // namespace turnbroker::broker
