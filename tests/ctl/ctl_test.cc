// turnbrokerctl against a real broker: every verb, its output and exit codes.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "broker_process.h"
#include "turnbroker/v1/broker.grpc.pb.h"

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
  // The snapshot lists the revoked username after the live ones
  // (docs/architecture.md, "Snapshots carry the revoked usernames").
  EXPECT_THAT(r.output, AllOf(HasSubstr("marker=snapshot-begin"),
                              HasSubstr("marker=synced revision=4"), HasSubstr("username=b"),
                              HasSubstr("username=c"), Not(HasSubstr("type=put username=a")),
                              HasSubstr("type=revoke username=a realm=r.org revoked=0 "
                                        "reason=\"revoked before this snapshot\"")));
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

namespace turnbroker::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Approach 1 through the real binaries: a whole rotation with `secret add,
// activate, retire, list`, refusals included; then not one secret's bytes
// in the broker's log (at debug level) nor in any output but the ones that
// asked for them (docs/approach1.md).
class CtlSecretTest : public ::testing::Test {
 protected:
  CtlSecretTest()
      : stub_(v1::CredentialBroker::NewStub(
            grpc::CreateChannel(broker_.address(), grpc::InsecureChannelCredentials()))) {}
  static void ExpectOneLineReason(const RunResult& r) {
    EXPECT_THAT(r.output, ::testing::StartsWith("turnbrokerctl: ")) << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "not one line:\n" << r.output;
  }
  void Acknowledge(uint64_t revision) {
    v1::GetStatusResponse status;
    grpc::ClientContext sc;
    sc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ASSERT_TRUE(stub_->GetStatus(&sc, {}, &status).ok());
    v1::AcknowledgeRequest req;
    req.set_watcher_name("turn-1.example.net");
    req.set_epoch(status.epoch());
    req.set_revision(revision);
    v1::AcknowledgeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ASSERT_TRUE(stub_->Acknowledge(&ctx, req, &resp).ok());
  }
  // Runs turnbrokerctl; kept for the final check unless it asked for bytes.
  RunResult Run(std::vector<std::string> args, bool shows_bytes = false) {
    std::vector<std::string> argv = {BuiltBinary("turnbrokerctl"), "--broker", broker_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = turnbroker::testing::Run(argv, std::chrono::seconds(20));
    if (!shows_bytes) outputs_.push_back(r.output);
    return r;
  }
  TempDir dir_;
  // (BrokerProcess runs it with --log-level debug.)
  BrokerProcess broker_{dir_, {"--ephemeral", "--secret-stage-grace", "3600", "--max-ttl", "600"}};
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  std::vector<std::string> outputs_;
};

std::string FieldOf(const std::string& line, const std::string& key) {
  size_t at = line.find(key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 1;
  return line.substr(at, line.find_first_of(" \n", at) - at);
}

TEST_F(CtlSecretTest, ARotationThroughTheCliAndNoSecretInAnyLogOrOutput) {
  const std::string realm = "ims.example.org";
  auto r = Run({"secret", "add", "--realm", realm, "--id", "one"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "added=one realm=ims.example.org state=STAGED revision=1\n");
  r = Run({"secret", "add", "--realm", realm, "--id", "two", "--show-secret", "--expires-in",
           "8640000", "--not-before", "1700000000"},
          /*shows_bytes=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string two = FieldOf(r.output, "secret");
  ASSERT_EQ(two.size(), 43u) << "256 random bits, base64url: " << r.output;
  EXPECT_EQ(
      two.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  const std::string three = "static-auth-secret:migrated/from+turnserver.conf";
  std::ofstream(dir_.File("three")) << three << "\n";
  ASSERT_EQ(
      Run({"secret", "add", "--realm", realm, "--id", "three", "--secret-file", dir_.File("three")})
          .exit_code,
      0);

  // Refusals: one line each, naming the field, no bytes.
  const std::string short_secret = "short-but-secret";
  std::ofstream(dir_.File("short")) << short_secret;
  r = Run({"secret", "add", "--realm", realm, "--id", "four", "--secret-file", dir_.File("short")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("INVALID_ARGUMENT: secret.secret: 16 bytes, at least 32"));
  ExpectOneLineReason(r);
  r = Run({"secret", "add", "--realm", realm, "--id", "four", "--secret-file", dir_.File("three")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output,
              HasSubstr("ALREADY_EXISTS: secret.secret: the same bytes as secret 'three'"));
  r = Run({"secret", "activate", "--realm", "other.example.org", "--id", "two"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output,
              HasSubstr("NOT_FOUND: ref.id: no secret 'two' in realm 'other.example.org'"));

  // The gate: a sync that has not acknowledged the staged secret.
  Acknowledge(0);
  r = Run({"secret", "activate", "--realm", realm, "--id", "two"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("FAILED_PRECONDITION: ref.id: secret 'two'"));
  EXPECT_THAT(r.output, HasSubstr("not acknowledged it yet: turn-1.example.net"));
  ExpectOneLineReason(r);
  r = Run({"secret", "list", "--realm", realm});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output,
              AllOf(HasSubstr("realm=ims.example.org id=two state=STAGED"),
                    HasSubstr("syncs_pending=turn-1.example.net"), HasSubstr("activation=waiting"),
                    HasSubstr("not_before_ms=1700000000000")));
  Acknowledge(3);
  r = Run({"secret", "activate", "--realm", realm, "--id", "two"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("activated=two realm=ims.example.org state=ACTIVE revision=4"));
  ASSERT_EQ(Run({"secret", "activate", "--realm", realm, "--id", "one"}).exit_code, 0);

  r = Run({"secret", "retire", "--realm", realm, "--id", "one"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("is the ACTIVE secret of realm"));
  r = Run({"secret", "retire", "--realm", realm, "--id", "two"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("credentials minted with it may be valid for"));
  r = Run({"secret", "list"});
  EXPECT_THAT(r.output, AllOf(HasSubstr("id=two state=SUPERSEDED"), HasSubstr("retirement=waiting"),
                              HasSubstr("syncs_acknowledged=turn-1.example.net")));
  r = Run({"secret", "retire", "--realm", realm, "--id", "two", "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("retired=two realm=ims.example.org"));
  r = Run({"watch", "--kind", "secret", "--until-synced"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("type=secret realm=ims.example.org id=one state=ACTIVE"),
                              HasSubstr("id=three state=STAGED"), Not(HasSubstr("id=two"))));
  r = Run({"--json", "secret", "list"});
  EXPECT_THAT(r.output, HasSubstr("\"id\":\"one\""));
  EXPECT_THAT(Run({"status"}).output, HasSubstr("revision=7"));

  r = Run({"secret", "list", "--show-secret"}, /*shows_bytes=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string one = FieldOf(r.output.substr(r.output.find("id=one")), "secret");
  ASSERT_EQ(one.size(), 43u) << r.output;
  EXPECT_THAT(r.output, HasSubstr("secret=" + three));

  // Not one secret's bytes anywhere else.
  const std::string log = broker_.process().Output();
  ASSERT_THAT(log, HasSubstr("secret written"));
  // Each write is logged with the state it leaves: a retirement RETIRED, not
  // the state the secret had before.
  const size_t retired_at = log.find("msg=\"secret written\" method=RetireSecret");
  ASSERT_NE(retired_at, std::string::npos) << log;
  const std::string retired_line = log.substr(retired_at, log.find('\n', retired_at) - retired_at);
  EXPECT_THAT(retired_line, AllOf(HasSubstr("id=two"), HasSubstr("state=RETIRED")));
  for (const std::string& bytes : {one, two, three, short_secret}) {
    EXPECT_EQ(log.find(bytes), std::string::npos) << "in the broker's log: " << bytes;
    for (const std::string& out : outputs_) {
      EXPECT_EQ(out.find(bytes), std::string::npos) << "in turnbrokerctl's output:\n" << out;
    }
  }
}

}  // namespace
}  // namespace turnbroker::testing
