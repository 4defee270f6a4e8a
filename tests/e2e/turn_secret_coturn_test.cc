// Approach 1 end to end with the real parts (docs/approach1.md):
// redis-server, an unmodified coturn 4.6.1 with --use-auth-secret and no
// static secret, turn-broker, the turn-credential-sync binary in
// --auth-mode=shared-secret, turnbrokerctl's secret verbs, and TURN clients
// (turnutils_uclient) whose TURN REST API credentials the test computes as
// an eP-CSCF would.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "turn_secret_farm.h"
#include "turnbroker/turn/coturn_admin.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;
using namespace turnbroker::testing;
using namespace std::chrono_literals;

constexpr size_t npos = std::string::npos;

class TurnSecretE2eTest : public ::testing::Test {
 protected:
  SecretFarm farm_;
};

TEST_F(TurnSecretE2eTest, ACredentialFromAnAddedSecretIsAcceptedUntilTheSecretIsRetired) {
  const std::string secret = farm_.AddSecret("s1");
  ASSERT_FALSE(secret.empty());
  EXPECT_GE(secret.size(), 32u);

  const std::string user = RestUsername(NowS() + 600);
  const std::string password = RestPassword(secret, user);
  EXPECT_TRUE(farm_.Allocates(user, password));
  // One byte of the password changed: refused.
  std::string tampered = password;
  tampered[0] = tampered[0] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(farm_.Allocates(user, tampered));
  // Signed right, but its expiry has passed: refused.
  const std::string expired = RestUsername(NowS() - 5);
  EXPECT_FALSE(farm_.Allocates(expired, RestPassword(secret, expired)));
  // Not signed with a secret of the realm: refused.
  EXPECT_FALSE(farm_.Allocates(user, RestPassword(secret + "x", user)));

  // The broker knows the sync applied it (Acknowledge).
  EXPECT_TRUE(WaitUntil(
      [&] {
        return farm_.Ctl({"secret", "list", "--realm", SecretFarm::kRealm})
                   .output.find("syncs_acknowledged=e2e-secret") != npos;
      },
      5s))
      << farm_.Ctl({"secret", "list", "--realm", SecretFarm::kRealm}).output;
  EXPECT_EQ(farm_.Metrics().find("turnbroker_sync_acknowledgements_total{result=\"ok\"} 0"), npos);

  RunResult retire =
      farm_.Ctl({"secret", "retire", "--realm", SecretFarm::kRealm, "--id", "s1", "--force"});
  ASSERT_EQ(retire.exit_code, 0) << retire.output;
  ASSERT_TRUE(WaitUntil([&] { return farm_.SecretSet().empty(); }, 5s))
      << farm_.sync().process().Output();
  EXPECT_FALSE(farm_.Allocates(user, password));

  // The secret's bytes are in no log line of the sync.
  EXPECT_EQ(farm_.sync().process().Output().find(secret), npos);
  const std::string metrics = farm_.Metrics();
  EXPECT_NE(metrics.find("turnbroker_sync_events_applied_total{kind=\"secret\"} 1"), npos)
      << metrics;
  EXPECT_NE(metrics.find("turnbroker_sync_secrets_removed_total{reason=\"retired\"} 1"), npos);
  EXPECT_EQ(metrics.find(secret), npos);
}

TEST_F(TurnSecretE2eTest, RevokingAnApproach1UsernameEndsItsLiveAllocation) {
  const std::string secret = farm_.AddSecret("s1");
  ASSERT_FALSE(secret.empty());
  const std::string carol = RestUsername(NowS() + 600);
  const std::string dave = RestUsername(NowS() + 600);
  TurnClient carol_client(farm_.dir(), farm_.coturn(), farm_.peer(), carol,
                          RestPassword(secret, carol));
  TurnClient dave_client(farm_.dir(), farm_.coturn(), farm_.peer(), dave,
                         RestPassword(secret, dave));
  ASSERT_TRUE(carol_client.Allocated());
  ASSERT_TRUE(dave_client.Allocated());

  CoturnCli cli(CoturnCliOptions{{"127.0.0.1", static_cast<uint16_t>(farm_.coturn().cli_port())},
                                 SecretFarm::kCliPassword});
  auto sessions = [&](const std::string& user) {
    auto ids = cli.Sessions(SecretFarm::kRealm, user);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? ids->size() : 0;
  };
  ASSERT_TRUE(WaitUntil([&] { return sessions(carol) > 0; }, 5s));

  // coturn would accept carol's credential again (it recomputes the
  // password); the revocation ends what is live (docs/approach1.md).
  RunResult revoke = farm_.Ctl(
      {"revoke", "--realm", SecretFarm::kRealm, "--username", carol, "--reason", "de-REGISTER"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.output;
  EXPECT_TRUE(WaitUntil([&] { return sessions(carol) == 0; }, 10s))
      << farm_.sync().process().Output();
  EXPECT_GT(sessions(dave), 0u);
  EXPECT_NE(farm_.Metrics().find("turnbroker_sync_sessions_cancelled_total"), npos);
}

TEST_F(TurnSecretE2eTest, AnExpiringSecretLeavesCoturnsSetAtItsExpiry) {
  const std::vector<std::string> before = farm_.SecretSet();
  RunResult add = farm_.Ctl(
      {"secret", "add", "--realm", SecretFarm::kRealm, "--id", "brief", "--expires-in", "2"});
  ASSERT_EQ(add.exit_code, 0) << add.output;
  ASSERT_TRUE(WaitUntil([&] { return farm_.SecretSet().size() == 1; }, 5s));
  const std::string secret = farm_.SecretSet().front();
  const std::string user = RestUsername(NowS() + 600);
  EXPECT_TRUE(farm_.Allocates(user, RestPassword(secret, user)));
  // No event: the sync's timer removes it at its expiry.
  ASSERT_TRUE(WaitUntil([&] { return farm_.SecretSet().empty(); }, 5s))
      << farm_.sync().process().Output();
  EXPECT_FALSE(farm_.Allocates(user, RestPassword(secret, user)));
  EXPECT_NE(farm_.Metrics().find("turnbroker_sync_secrets_removed_total{reason=\"expired\"} 1"),
            npos);
}

TEST_F(TurnSecretE2eTest, CoturnsRedisRestartedEmptyGetsTheSecretsBack) {
  const std::string secret = farm_.AddSecret("s1");
  ASSERT_FALSE(secret.empty());
  const std::string user = RestUsername(NowS() + 600);
  ASSERT_TRUE(farm_.Allocates(user, RestPassword(secret, user)));
  farm_.redis().Kill();
  EXPECT_FALSE(farm_.Allocates(user, RestPassword(secret, user)));  // coturn cannot read the set
  farm_.redis().Start();                                            // empty: no persistence
  // No event at the broker: the sync notices at a PROGRESS marker.
  ASSERT_TRUE(WaitUntil([&] { return farm_.SecretSet() == std::vector<std::string>{secret}; }, 10s))
      << farm_.sync().process().Output();
  EXPECT_TRUE(farm_.Allocates(user, RestPassword(secret, user)));
}

// A broker whose store is made anew (a new epoch) has lost the secret: the
// sync keeps it until every credential minted with it has expired (the
// broker's --max-ttl), so no client is refused meanwhile.
class TurnSecretEpochE2eTest : public ::testing::Test {
 protected:
  SecretFarm farm_{{"--max-ttl", "3", "--min-ttl", "1"}};
};

TEST_F(TurnSecretEpochE2eTest, ASecretLostWithTheBrokersStoreIsKeptForItsCredentialsLifetime) {
  const std::string secret = farm_.AddSecret("s1");
  ASSERT_FALSE(secret.empty());
  const std::string user = RestUsername(NowS() + 60);
  ASSERT_TRUE(farm_.Allocates(user, RestPassword(secret, user)));

  farm_.broker().Restart();  // --ephemeral: an empty store, another epoch
  ASSERT_TRUE(WaitUntil(
      [&] { return farm_.Metrics().find("turnbroker_sync_secrets_retained_total 1") != npos; },
      10s))
      << farm_.sync().process().Output();
  EXPECT_EQ(farm_.SecretSet(), std::vector<std::string>{secret});
  EXPECT_TRUE(farm_.Allocates(user, RestPassword(secret, user)));
  // Then it goes: no credential made with it can still be valid.
  EXPECT_TRUE(WaitUntil([&] { return farm_.SecretSet().empty(); }, 6s));
}

// The same farm with mTLS on every hop: the sync watches secrets and
// acknowledges with its subscriber certificate, the operator adds and
// activates with a secret-admin one.
class TurnSecretMtlsE2eTest : public ::testing::Test {
 protected:
  TurnSecretMtlsE2eTest() {
    std::string error;
    EXPECT_TRUE(MakeTestPki(pki_dir_.path(), &pki_, &error)) << error;
    farm_ = std::make_unique<SecretFarm>(std::vector<std::string>{}, &pki_);
  }
  TempDir pki_dir_;
  Pki pki_;
  std::unique_ptr<SecretFarm> farm_;
};

TEST_F(TurnSecretMtlsE2eTest, TheSyncWatchesAndAcknowledgesWithItsSubscriberCertificate) {
  EXPECT_NE(farm_->sync().process().Output().find("tls=true"), npos);
  const std::string secret = farm_->AddSecret("s1");
  ASSERT_FALSE(secret.empty());
  // Accepted long before the broker's 60 s grace: the sync's Acknowledge
  // was taken under its subscriber role.
  RunResult activate =
      farm_->Ctl({"secret", "activate", "--realm", SecretFarm::kRealm, "--id", "s1"});
  for (int i = 0; i < 50 && activate.exit_code != 0; ++i) {
    std::this_thread::sleep_for(100ms);
    activate = farm_->Ctl({"secret", "activate", "--realm", SecretFarm::kRealm, "--id", "s1"});
  }
  EXPECT_EQ(activate.exit_code, 0) << activate.output;
  const std::string user = RestUsername(NowS() + 600);
  EXPECT_TRUE(farm_->Allocates(user, RestPassword(secret, user)));
  EXPECT_NE(farm_->Metrics().find("turnbroker_sync_acknowledgements_total{result=\"failed\"} 0"),
            npos);
}

TEST(TurnSecretSyncCommandLineTest, AuthModeIsDocumentedAndABadOneStopsIt) {
  RunResult help = turnbroker::testing::Run({BuiltBinary("turn-credential-sync"), "--help"});
  EXPECT_NE(help.output.find("--auth-mode"), std::string::npos);
  EXPECT_NE(help.output.find("TURNBROKER_SYNC_AUTH_MODE"), std::string::npos);
  RunResult bad = turnbroker::testing::Run(
      {BuiltBinary("turn-credential-sync"), "--realm", "r", "--auth-mode", "static-secret"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--auth-mode"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace turnbroker::turn
