// turnbrokerctl's verbs refuse bad arguments before they call the broker
// (the calls themselves are tested against a real broker in ctl_test).
#include "turnbroker/ctl/verbs.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "process.h"

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

TEST_F(VerbsTest, SecretVerbsNeedARealmAndAnIdAndSaneTimes) {
  SecretArgs args;
  args.realm = "r";
  EXPECT_EQ(SecretAdd(broker_, args, &clock_, out_), kUsage);
  EXPECT_EQ(SecretActivate(broker_, args, out_), kUsage);
  args.realm.clear();
  args.id = "a";
  EXPECT_EQ(SecretRetire(broker_, args, out_), kUsage);
  args.realm = "r";
  args.expires_in_s = -1;
  EXPECT_EQ(SecretAdd(broker_, args, &clock_, out_), kUsage);
  args.expires_in_s = kMaxTtlSeconds + 1;
  EXPECT_EQ(SecretAdd(broker_, args, &clock_, out_), kUsage);
  args.expires_in_s = 0;
  args.not_before = "tomorrow";
  EXPECT_EQ(SecretAdd(broker_, args, &clock_, out_), kUsage);
  args.not_before.clear();
  args.secret_file = "/nonexistent/secret";
  EXPECT_EQ(SecretAdd(broker_, args, &clock_, out_), kUsage);
  EXPECT_EQ(output_.str(), "");
}

TEST_F(VerbsTest, NotBeforeIsUnixSecondsOrRfc3339) {
  EXPECT_EQ(*ParseNotBefore("1800000000"), 1'800'000'000'000);
  EXPECT_EQ(*ParseNotBefore("2027-01-15T08:00:00Z"), 1'800'000'000'000);
  EXPECT_EQ(*ParseNotBefore("2027-01-15T09:00:00+01:00"), 1'800'000'000'000);
  auto bad = ParseNotBefore("15/01/2027");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--not-before: '15/01/2027'"), std::string::npos);
  EXPECT_FALSE(ParseNotBefore("").ok());
}

TEST_F(VerbsTest, ASecretFileLosesItsLineEndingAndErrorsNeverShowItsContent) {
  turnbroker::testing::TempDir dir;
  const std::string secret = "static-auth-secret-from-turnserver.conf-0123";
  for (const std::string ending : {"", "\n", "\r\n"}) {
    std::ofstream(dir.File("s")) << secret << ending;
    auto read = ReadSecretFile(dir.File("s"));
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, secret);
  }
  std::ofstream(dir.File("empty")) << "\n";
  auto empty = ReadSecretFile(dir.File("empty"));
  EXPECT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("--secret-file:"), std::string::npos);
}

TEST(SecretOutputTest, BytesArePrintedOnlyWhenAskedFor) {
  v1::SharedSecret s;
  s.set_realm("r");
  s.set_id("a");
  s.set_secret("the-bytes-of-the-secret-0123456789abcdef");
  s.set_state(v1::SECRET_STATE_ACTIVE);
  EXPECT_EQ(KeyValueLine(SecretJson(s, false)).find("the-bytes"), std::string::npos);
  EXPECT_NE(KeyValueLine(SecretJson(s, true)).find("secret=the-bytes"), std::string::npos);
  v1::Event e;
  e.set_revision(7);
  *e.mutable_secret() = s;
  const std::string line = KeyValueLine(EventJson(e));
  EXPECT_NE(line.find("revision=7 type=secret realm=r id=a state=ACTIVE"), std::string::npos)
      << line;
  EXPECT_EQ(line.find("the-bytes"), std::string::npos);
  e.mutable_secret_retired()->set_realm("r");
  e.mutable_secret_retired()->set_id("a");
  EXPECT_EQ(KeyValueLine(EventJson(e)), "revision=7 type=secret-retired realm=r id=a");
}

}  // namespace
}  // namespace turnbroker::ctl
