// End to end with the real parts: redis-server, an unmodified coturn
// (turnserver --redis-userdb --lt-cred-mech), turn-broker, the
// turn-credential-sync binary, and TURN clients (turnutils_uclient).
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <regex>
#include <thread>

#include "broker_process.h"
#include "coturn.h"
#include "promtool.h"
#include "redis_server.h"
#include "sync_fixture.h"
#include "sync_process.h"
#include "turnbroker/turn/coturn_admin.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;
using namespace turnbroker::testing;
using namespace std::chrono_literals;

const std::string kRealm = "example.org";
const std::string kCliPassword = "cli-secret";

// turn-credential-sync (tests/support), with its metrics endpoint.
class MonitoredSync {
 public:
  MonitoredSync(const TempDir& dir, const std::string& broker, const RedisServer& redis,
                int cli_port)
      : sync_(dir, redis,
              SyncProcessOptions{
                  .broker = broker,
                  .realm = kRealm,
                  .name = "e2e",
                  .coturn_cli_port = cli_port,
                  .coturn_cli_password = kCliPassword,
                  .extra_args = {"--metrics-listen", "127.0.0.1:0", "--progress-interval", "200",
                                 "--backoff-max", "300"}}) {}

  // GET on the metrics server: status and body (status 0: no answer).
  std::pair<int, std::string> Get(const std::string& path) {
    httplib::Client http("127.0.0.1", sync_.metrics_port());
    http.set_connection_timeout(1);
    auto res = http.Get(path.c_str());
    if (!res) return {0, ""};
    return {res->status, res->body};
  }
  bool Healthy() { return Get("/healthz").first == 200; }
  Subprocess& process() { return sync_.process(); }

 private:
  SyncProcess sync_;
};

class TurnE2eTest : public ::testing::Test {
 protected:
  explicit TurnE2eTest(bool with_cli = false)
      : coturn_(dir_, CoturnOptions{kRealm, redis_.port(), with_cli ? kCliPassword : ""}),
        sync_(dir_, broker_.address(), redis_, with_cli ? coturn_.cli_port() : 0) {
    EXPECT_TRUE(WaitUntil([&] { return sync_.Healthy(); }, 10s)) << sync_.process().Output();
  }

  bool KeyPresent(const std::string& user) {
    return redis_.Get(UserKeyName(kRealm, user)).has_value();
  }
  bool Allocates(const std::string& user, const std::string& password) {
    return TryAllocate(dir_, coturn_, peer_, user, password);
  }

  TempDir dir_;
  RedisServer redis_{dir_};
  BrokerProcess broker_{dir_, {"--ephemeral"}};
  BrokerClient client_{broker_.address()};
  TurnPeer peer_{dir_};
  CoturnServer coturn_;
  MonitoredSync sync_;
};

TEST_F(TurnE2eTest, CoturnAcceptsPublishedCredentialsAndRefusesWrongOrRevokedOnes) {
  client_.Publish(kRealm, "alice", 120'000, "sip:alice@example.org", "pcscf-1");
  ASSERT_TRUE(WaitUntil([&] { return KeyPresent("alice"); }, 5s));
  EXPECT_TRUE(Allocates("alice", "pw-alice"));
  EXPECT_FALSE(Allocates("alice", "wrong-password"));
  EXPECT_FALSE(Allocates("nobody", "pw-nobody"));

  client_.Revoke(BySubscriber("sip:alice@example.org"));
  ASSERT_TRUE(WaitUntil([&] { return !KeyPresent("alice"); }, 5s));
  EXPECT_FALSE(Allocates("alice", "pw-alice"));
}

TEST_F(TurnE2eTest, CoturnRefusesAnExpiredCredential) {
  client_.Publish(kRealm, "brief", 2'000);
  ASSERT_TRUE(WaitUntil([&] { return KeyPresent("brief"); }, 5s));
  EXPECT_TRUE(Allocates("brief", "pw-brief"));
  // Redis drops the key at its absolute expiry, with no event at all.
  ASSERT_TRUE(WaitUntil([&] { return !KeyPresent("brief"); }, 5s));
  EXPECT_FALSE(Allocates("brief", "pw-brief"));
}

TEST_F(TurnE2eTest, HealthAndMetricsFollowRedis) {
  client_.Publish(kRealm, "m1", 60'000);
  ASSERT_TRUE(WaitUntil([&] { return KeyPresent("m1"); }, 5s));
  // The counters move once the write returned, a moment after the key shows.
  std::string body;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto [status, text] = sync_.Get("/metrics");
        body = text;
        return status == 200 && body.find("turnbroker_sync_events_applied_total{kind=\"put\"} 1") !=
                                    std::string::npos;
      },
      5s))
      << body;
  EXPECT_NE(body.find("turnbroker_sync_last_applied_revision 1"), std::string::npos);
  EXPECT_NE(body.find("turnbroker_sync_lag_seconds"), std::string::npos);
  EXPECT_EQ(PromtoolProblems(body), "") << body;

  redis_.Kill();
  client_.Publish(kRealm, "m2", 60'000);  // a write that fails
  EXPECT_TRUE(WaitUntil([&] { return !sync_.Healthy(); }, 5s));
  EXPECT_NE(sync_.Get("/metrics").second.find("turnbroker_sync_redis_up 0"), std::string::npos);
  redis_.Start();
  EXPECT_TRUE(WaitUntil([&] { return sync_.Healthy(); }, 10s));
  EXPECT_TRUE(WaitUntil([&] { return KeyPresent("m2"); }, 5s));
}

TEST_F(TurnE2eTest, AnIdleSyncRefillsARedisThatRestartedEmpty) {
  client_.Publish(kRealm, "idle", 120'000);
  ASSERT_TRUE(WaitUntil([&] { return KeyPresent("idle"); }, 5s));
  std::this_thread::sleep_for(1s);  // the stream idles: PROGRESS markers only
  redis_.Kill();
  // Empty: no persistence. (Not checked here: with PROGRESS every 200 ms the
  // sync may refill it before a check could look.)
  redis_.Start();
  // No publish: the sync notices on a PROGRESS marker and resyncs.
  EXPECT_TRUE(WaitUntil([&] { return KeyPresent("idle"); }, 5s)) << sync_.process().Output();
  EXPECT_TRUE(WaitUntil([&] { return sync_.Healthy(); }, 5s));
  EXPECT_TRUE(Allocates("idle", "pw-idle"));

  // Flushed with the connection kept: only the check on PROGRESS sees it.
  redis_.Command({"FLUSHALL"});
  EXPECT_TRUE(WaitUntil([&] { return KeyPresent("idle"); }, 5s)) << sync_.process().Output();
  EXPECT_NE(sync_.process().Output().find("redis lost the sync's state"), std::string::npos);
  EXPECT_NE(sync_.Get("/metrics").second.find("turnbroker_sync_redis_state_lost_total 1"),
            std::string::npos);
  EXPECT_TRUE(WaitUntil([&] { return sync_.Healthy(); }, 5s));
}

class TurnRevocationE2eTest : public TurnE2eTest {
 protected:
  TurnRevocationE2eTest() : TurnE2eTest(/*with_cli=*/true) {}
};

TEST_F(TurnRevocationE2eTest, RevocationEndsTheLiveAllocationsOfTheUser) {
  client_.Publish(kRealm, "carol", 120'000, "sip:carol@example.org");
  client_.Publish(kRealm, "dave", 120'000, "sip:dave@example.org");
  ASSERT_TRUE(WaitUntil([&] { return KeyPresent("carol") && KeyPresent("dave"); }, 5s));
  TurnClient carol(dir_, coturn_, peer_, "carol", "pw-carol");
  TurnClient dave(dir_, coturn_, peer_, "dave", "pw-dave");
  ASSERT_TRUE(carol.Allocated());
  ASSERT_TRUE(dave.Allocated());

  CoturnCli cli(
      CoturnCliOptions{{"127.0.0.1", static_cast<uint16_t>(coturn_.cli_port())}, kCliPassword});
  auto sessions = [&](const std::string& user) {
    auto ids = cli.Sessions(kRealm, user);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? ids->size() : 0;
  };
  ASSERT_TRUE(WaitUntil([&] { return sessions("carol") > 0; }, 5s));

  // Deleting the key alone would leave carol's allocation running: coturn
  // keeps the key of a live session. The sync ends it through the CLI.
  client_.Revoke(BySubscriber("sip:carol@example.org"));
  EXPECT_TRUE(WaitUntil([&] { return sessions("carol") == 0; }, 10s)) << sync_.process().Output();
  EXPECT_FALSE(KeyPresent("carol"));
  EXPECT_GT(sessions("dave"), 0u);
  EXPECT_NE(sync_.Get("/metrics").second.find("turnbroker_sync_sessions_cancelled_total"),
            std::string::npos);
  EXPECT_EQ(redis_.Command({"ZCARD", "turnbroker/sync/e2e/cancel"}).integer, 0);
}

TEST(TurnSyncCommandLineTest, HelpDocumentsEveryFlagAndBadFlagsStopIt) {
  RunResult help = turnbroker::testing::Run({BuiltBinary("turn-credential-sync"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag :
       {"--broker", "--redis-url", "--realm", "--farm", "--name", "--coturn-admin",
        "--coturn-admin-password", "--metrics-listen", "--tls-cert", "--tls-key", "--tls-ca",
        "--log-level", "--log-format", "--progress-interval", "--backoff-max", "--connect-timeout",
        "TURNBROKER_SYNC_REDIS_URL"}) {
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
  }
  RunResult no_realm = turnbroker::testing::Run({BuiltBinary("turn-credential-sync")});
  EXPECT_EQ(no_realm.exit_code, 106);  // CLI11: a required option is missing
  RunResult bad_url = turnbroker::testing::Run(
      {BuiltBinary("turn-credential-sync"), "--realm", "r", "--redis-url", "redis://:pw@h:0/0"});
  EXPECT_EQ(bad_url.exit_code, 2);
  EXPECT_NE(bad_url.output.find("--redis-url"), std::string::npos);
  EXPECT_EQ(bad_url.output.find(":pw@"), std::string::npos);
  RunResult bad_realm =
      turnbroker::testing::Run({BuiltBinary("turn-credential-sync"), "--realm", "bad realm"});
  EXPECT_EQ(bad_realm.exit_code, 2);
  EXPECT_NE(bad_realm.output.find("--realm"), std::string::npos);
  TempDir dir;
  const std::string password_file = dir.File("cli-password");
  std::ofstream(password_file) << kCliPassword << "\n";
  RunResult file_without_admin =
      turnbroker::testing::Run({BuiltBinary("turn-credential-sync"), "--realm", "r",
                                "--coturn-admin-password-file", password_file});
  EXPECT_EQ(file_without_admin.exit_code, 2);
  EXPECT_NE(file_without_admin.output.find("--coturn-admin-password-file"), std::string::npos);
  EXPECT_NE(file_without_admin.output.find("--coturn-admin "), std::string::npos)
      << file_without_admin.output;
  // The password itself (flag or TURNBROKER_SYNC_COTURN_ADMIN_PASSWORD),
  // likewise: silently ignoring it would leave revocation incomplete.
  RunResult password_without_admin = turnbroker::testing::Run(
      {BuiltBinary("turn-credential-sync"), "--realm", "r", "--coturn-admin-password", "secret"});
  EXPECT_EQ(password_without_admin.exit_code, 2);
  EXPECT_NE(password_without_admin.output.find("--coturn-admin-password:"), std::string::npos)
      << password_without_admin.output;
  EXPECT_EQ(password_without_admin.output.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace turnbroker::turn
