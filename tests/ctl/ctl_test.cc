// turnbrokerctl against a real broker: every verb, its output and exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "broker_process.h"

namespace turnbroker::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class CtlTest : public ::testing::Test {
 protected:
  // A refused call prints exactly one line, "turnbrokerctl: CODE: message",
  // on stderr and nothing on stdout (Run captures both).
  static void ExpectOneLineReason(const RunResult& r) {
    EXPECT_THAT(r.output, ::testing::StartsWith("turnbrokerctl: ")) << r.output;
    ASSERT_FALSE(r.output.empty());
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "not one line:\n" << r.output;
  }
  RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {BuiltBinary("turnbrokerctl"), "--broker", broker_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return turnbroker::testing::Run(argv, std::chrono::seconds(20));
  }
  TempDir dir_;
  BrokerProcess broker_{dir_, {"--ephemeral"}};
};

TEST_F(CtlTest, PublishGetListRevoke) {
  auto r =
      Ctl({"publish", "--realm", "ims.example.org", "--username", "alice", "--password", "secret",
           "--ttl", "600", "--subscriber", "sip:alice@ims.example.org", "--issuer", "pcscf-1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("published=alice"), HasSubstr("revision=1")));

  r = Ctl({"get", "--username", "alice"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("username=alice"), HasSubstr("realm=ims.example.org"),
                              HasSubstr("subscriber=sip:alice@ims.example.org"),
                              HasSubstr("issuer=pcscf-1"), Not(HasSubstr("secret"))));

  ASSERT_EQ(Ctl({"publish", "--realm", "other.org", "--username", "bob", "--key",
                 "7da2270ccfa49786e0115366d3a3d14d", "--ttl", "60"})
                .exit_code,
            0);
  r = Ctl({"list"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, AllOf(HasSubstr("username=alice"), HasSubstr("username=bob")));
  r = Ctl({"list", "--realm", "other.org"});
  EXPECT_THAT(r.output, AllOf(Not(HasSubstr("username=alice")), HasSubstr("username=bob")));
  r = Ctl({"--json", "list", "--subscriber", "sip:alice@ims.example.org"});
  EXPECT_THAT(r.output, HasSubstr("\"username\":\"alice\""));

  r = Ctl({"revoke", "--subscriber", "sip:alice@ims.example.org", "--reason", "test"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("revoked=1"));
  r = Ctl({"get", "--username", "alice"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("NOT_FOUND"));
  r = Ctl({"revoke", "--issuer", "nobody"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("revoked=0"));
  r = Ctl({"revoke", "--username", "bob", "--realm", "other.org"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("revoked=1"));
}

TEST_F(CtlTest, PasswordFromStdinIsNeverSent) {
  // The key is computed locally: the broker stores and shows no password.
  TempDir d;
  std::string script = "printf 'hero\\n' | " + BuiltBinary("turnbrokerctl") + " --broker " +
                       broker_.address() +
                       " publish --realm north.gov --username gorst --password - --ttl 60";
  auto r = turnbroker::testing::Run({"/bin/sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Watchers get the key: MD5(gorst:north.gov:hero).
  r = Ctl({"--json", "watch", "--until-synced"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"username\":\"gorst\""));
  EXPECT_THAT(broker_.process().Output(), Not(HasSubstr("hero")));
}

TEST_F(CtlTest, WatchPrintsOneEventALineAndResumes) {
  for (const char* u : {"a", "b", "c"})
    ASSERT_EQ(
        Ctl({"publish", "--realm", "r.org", "--username", u, "--password", "p", "--ttl", "60"})
            .exit_code,
        0);
  ASSERT_EQ(Ctl({"revoke", "--username", "a"}).exit_code, 0);
  auto r = Ctl({"watch", "--from", "2", "--count", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("revision=3 type=put username=c"),
                              HasSubstr("revision=4 type=revoke username=a"),
                              Not(HasSubstr("username=b")), Not(HasSubstr("snapshot"))));
  r = Ctl({"watch", "--until-synced"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, AllOf(HasSubstr("marker=snapshot-begin"),
                              HasSubstr("marker=synced revision=4"), HasSubstr("username=b"),
                              HasSubstr("username=c"), Not(HasSubstr("username=a"))));
}

TEST_F(CtlTest, StatusShowsHealthAndStore) {
  auto r = Ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("health=SERVING"), HasSubstr("store=ephemeral"),
                              HasSubstr("revision=0"), HasSubstr("live_credentials=0")));
}

TEST_F(CtlTest, ErrorsExitNonZeroWithAOneLineReason) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"publish", "--realm", "bad realm", "--username", "u", "--password", "p", "--ttl", "60"},
       1,
       "INVALID_ARGUMENT: credentials[0].realm:"},
      {{"publish", "--realm", "r", "--username", "u", "--password", "p", "--ttl", "9999999"},
       1,
       "credentials[0].expires_at_ms:"},
      {{"publish", "--realm", "r", "--username", "u", "--key", "abcd", "--ttl", "60"},
       2,
       "--key: want 32 hex digits"},
      {{"publish", "--realm", "r", "--username", "u", "--ttl", "60"},
       2,
       "give --password or --key"},
      {{"publish", "--realm", "r", "--username", "u", "--password", "p"}, 2, "--ttl"},
      {{"revoke"}, 2, "give --username, --subscriber or --issuer"},
      {{"revoke", "--username", "a", "--subscriber", "b"}, 2, "excludes"},
      {{"get", "--username", "nobody"}, 1, "NOT_FOUND"},
      {{"watch", "--realm", "bad/realm", "--count", "1"}, 1, "INVALID_ARGUMENT: realms[0]:"},
      {{"frobnicate"}, 2, ""},
  };
  for (const auto& c : cases) {
    auto r = Ctl(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args[0] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.says)) << c.args[0];
    if (c.exit_code == 1) ExpectOneLineReason(r);
  }
}

TEST_F(CtlTest, GetOfAnExpiredUsernameFailsWithAOneLineReason) {
  // --ttl 2, not 1: the broker measures the lifetime when the request
  // arrives, a few ms after turnbrokerctl computed expires_at_ms, and 1 s is
  // its --min-ttl.
  auto r = Ctl({"publish", "--realm", "ims.example.org", "--username", "brief", "--password", "p",
                "--ttl", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Ctl({"get", "--username", "brief"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(2'500));
  r = Ctl({"get", "--username", "brief"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("NOT_FOUND"), HasSubstr("brief")));
  ExpectOneLineReason(r);
}

TEST_F(CtlTest, RevokeOfAMalformedSubscriberFailsNamingTheField) {
  auto r = Ctl({"revoke", "--subscriber", "sip:bad name@ims.example.org"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("INVALID_ARGUMENT"), HasSubstr("subscriber"),
                              HasSubstr("not printable")));
  ExpectOneLineReason(r);
  // Nothing was revoked.
  r = Ctl({"status"});
  EXPECT_THAT(r.output, HasSubstr("revision=0"));
}

TEST_F(CtlTest, UnreachableBrokerExitsThree) {
  auto r = turnbroker::testing::Run({BuiltBinary("turnbrokerctl"), "--broker",
                                     "127.0.0.1:" + std::to_string(FreePort()), "--timeout", "1",
                                     "status"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_THAT(r.output, HasSubstr("turnbrokerctl: "));
}

}  // namespace
}  // namespace turnbroker::testing
