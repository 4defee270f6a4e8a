// turnbrokerctl's verbs refuse bad arguments before they call the broker
// (the calls themselves are tested against a real broker in ctl_test).
#include "turnbroker/ctl/verbs.h"

#include <gtest/gtest.h>

#include <sstream>

namespace turnbroker::ctl {
namespace {

class VerbsTest : public ::testing::Test {
 protected:
  // No stub: a verb that refuses its arguments must not reach it.
  const Broker broker_{nullptr, nullptr, 1'000};
  std::ostringstream output_;
  const Printer out_{&output_, false};
  ManualClock clock_{1'700'000'000'000};
  std::istringstream input_;

  PublishArgs Args() const {
    PublishArgs args;
    args.credential.set_realm("r");
    args.credential.set_username("u");
    args.password = "p";
    args.ttl_s = 60;
    return args;
  }
};

TEST_F(VerbsTest, PublishRefusesATtlWhoseExpiryWouldOverflow) {
  PublishArgs args = Args();
  for (int64_t ttl :
       {int64_t{0}, int64_t{-5}, kMaxTtlSeconds + 1, int64_t{9'223'372'036'854'775}}) {
    args.ttl_s = ttl;
    EXPECT_EQ(Publish(broker_, args, &clock_, &input_, out_), kUsage) << ttl;
  }
  EXPECT_EQ(output_.str(), "");
}

TEST_F(VerbsTest, PublishNeedsAPasswordOrAWellFormedKey) {
  PublishArgs args = Args();
  args.password.clear();
  EXPECT_EQ(Publish(broker_, args, &clock_, &input_, out_), kUsage);
  args.key_hex = "abcd";
  EXPECT_EQ(Publish(broker_, args, &clock_, &input_, out_), kUsage);
  args = Args();
  args.password = "-";  // stdin is empty
  EXPECT_EQ(Publish(broker_, args, &clock_, &input_, out_), kUsage);
}

TEST_F(VerbsTest, RevokeNeedsASelector) { EXPECT_EQ(Revoke(broker_, RevokeArgs{}, out_), kUsage); }

}  // namespace
}  // namespace turnbroker::ctl
