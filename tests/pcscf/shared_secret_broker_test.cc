// Shared-secret mode (approach 1) of the library against a real turn-broker
// over gRPC: the secret watched as a minter, activation, rotation and
// retirement reaching the agent, minting while the broker is down, resuming
// after a restart, revocation at de-REGISTER, and an agent that never
// reached the broker.
#include <gtest/gtest.h>

#include "broker_process.h"
#include "broker_view.h"
#include "pki.h"
#include "turnbroker/pcscf/issuer.h"
#include "wait_for.h"

namespace turnbroker::pcscf {
namespace {

using testing::BrokerView;
using testing::WaitFor;
using ::turnbroker::testing::BrokerProcess;
using ::turnbroker::testing::FreePort;
using ::turnbroker::testing::MakeTestPki;
using ::turnbroker::testing::Pki;
using ::turnbroker::testing::TempDir;

const std::string kSecret1 = "broker-test-secret-one-0123456789abcdefghij";
const std::string kSecret2 = "broker-test-secret-two-0123456789abcdefghij";

std::unique_ptr<CredentialService> Connect(const std::string& broker, TlsFiles tls = {}) {
  IssuerOptions issuer;
  issuer.mode = CredentialMode::kSharedSecret;
  issuer.realm = "example.org";
  issuer.issuer = "pcscf-it";
  issuer.turn_uris = {"turn:127.0.0.1:3478?transport=udp"};
  issuer.status_interval_ms = 0;
  // Replaced credentials expire rather than being revoked later: the only
  // revocations are the test's own.
  issuer.overlap_ms = -1;
  ChannelOptions channel(broker);
  channel.tls = std::move(tls);
  channel.max_reconnect_backoff_ms = 200;
  SecretWatchOptions watch;
  watch.backoff = BackoffOptions{20, 200, 2.0};
  watch.progress_interval_ms = 500;
  auto s = CredentialService::Connect(channel, PublisherOptions(), issuer, nullptr, Clock::System(),
                                      watch);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

// The secret id the service mints with now ("" if it cannot).
std::string MintsWith(CredentialService& s, const std::string& impu = "sip:x@example.org") {
  auto c = s.issuer().Issue(impu, "", 600);
  return c.ok() ? c->secret_id : "";
}

void AddAndActivate(BrokerView& view, const std::string& id, const std::string& bytes) {
  grpc::Status added = view.AddSecret("example.org", id, bytes);
  ASSERT_TRUE(added.ok()) << added.error_message();
  grpc::Status activated = view.ActivateSecret("example.org", id);
  ASSERT_TRUE(activated.ok()) << activated.error_message();
}

TEST(SharedSecretBrokerTest, MintsOnlyOnceASecretIsActiveWithNoBrokerCallPerIssue) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  BrokerView view(broker.address());
  auto service = Connect(broker.address());
  ASSERT_TRUE(service);
  ASSERT_TRUE(WaitFor([&] { return service->secret_watcher()->synced(); }));
  auto none = service->issuer().Issue("sip:alice@example.org", "", 600);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable) << none.status();

  ASSERT_TRUE(view.AddSecret("example.org", "s1", kSecret1).ok());
  ASSERT_TRUE(WaitFor([&] { return service->secrets()->Counts().staged == 1; }));
  EXPECT_EQ(MintsWith(*service), "") << "a staged secret is not minted with";

  ASSERT_TRUE(view.ActivateSecret("example.org", "s1").ok());
  ASSERT_TRUE(WaitFor([&] { return MintsWith(*service) == "s1"; }));
  auto c = service->issuer().Issue("sip:alice@example.org", "alice@example.org", 600);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->password, TurnRestPassword(kSecret1, c->username));
  EXPECT_EQ(view.Status()->live_credentials(), 0u) << "nothing published";
}

TEST(SharedSecretBrokerTest, RotationAndRetirementReachTheAgent) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  BrokerView view(broker.address());
  auto service = Connect(broker.address());
  ASSERT_TRUE(service);
  AddAndActivate(view, "s1", kSecret1);
  ASSERT_TRUE(WaitFor([&] { return MintsWith(*service) == "s1"; }));
  AddAndActivate(view, "s2", kSecret2);
  ASSERT_TRUE(WaitFor([&] { return MintsWith(*service) == "s2"; }));
  EXPECT_EQ(service->secrets()->Counts().superseded, 1u);
  grpc::Status retired = view.RetireSecret("example.org", "s1", /*force=*/true);
  ASSERT_TRUE(retired.ok()) << retired.error_message();
  ASSERT_TRUE(WaitFor([&] { return service->secrets()->Counts().superseded == 0; }));
  EXPECT_EQ(MintsWith(*service), "s2");
}

TEST(SharedSecretBrokerTest, KeepsMintingWhileTheBrokerIsDownAndResumesAfterItsRestart) {
  TempDir dir;
  // No stage grace: the activation after the restart does not wait the
  // report window a restarted broker gives the TURN syncs (no sync here).
  BrokerProcess broker(dir, {"--data-dir", dir.File("store"), "--secret-stage-grace", "0"});
  BrokerView view(broker.address());
  auto service = Connect(broker.address());
  ASSERT_TRUE(service);
  AddAndActivate(view, "s1", kSecret1);
  ASSERT_TRUE(WaitFor([&] { return MintsWith(*service) == "s1"; }));
  const uint64_t streams = service->secret_watcher()->streams();

  broker.process().Kill();
  ASSERT_TRUE(WaitFor([&] { return !service->secret_watcher()->synced(); }));
  EXPECT_EQ(MintsWith(*service), "s1") << "an agent with the active secret keeps minting";
  auto down = service->issuer().RevokeSubscriber("sip:x@example.org", "de-REGISTER");
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;

  broker.Restart();  // the same durable store: the same epoch
  ASSERT_TRUE(WaitFor([&] { return service->secret_watcher()->synced(); }));
  EXPECT_GT(service->secret_watcher()->streams(), streams);
  ASSERT_TRUE(WaitFor([&] { return service->issuer().pending_revocations() == 0; }))
      << "the revocation the broker missed is retried";
  AddAndActivate(view, "s2", kSecret2);
  ASSERT_TRUE(WaitFor([&] { return MintsWith(*service) == "s2"; }));
}

TEST(SharedSecretBrokerTest, DeRegisterRevokesTheUsernameAtTheBroker) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  BrokerView view(broker.address());
  auto service = Connect(broker.address());
  ASSERT_TRUE(service);
  AddAndActivate(view, "s1", kSecret1);
  ASSERT_TRUE(WaitFor([&] { return MintsWith(*service, "sip:warmup@example.org") == "s1"; }));
  auto c = service->issuer().Issue("sip:alice@example.org", "", 600);
  ASSERT_TRUE(c.ok()) << c.status();
  const uint64_t before = view.Status()->revision();
  absl::Status s = service->issuer().RevokeSubscriber("sip:alice@example.org", "de-REGISTER");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GT(view.Status()->revision(), before) << "a revocation event recorded";
}

TEST(SharedSecretBrokerTest, AnAgentThatNeverReachedTheBrokerAnswersUnavailable) {
  auto service = Connect("127.0.0.1:" + std::to_string(FreePort()));
  ASSERT_TRUE(service);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto c = service->issuer().Issue("sip:alice@example.org", "", 600);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("no shared secret received"), std::string::npos)
      << c.status();
  EXPECT_GE(service->secret_watcher()->streams(), 2u) << "it keeps trying";
}

// Over mTLS, with each part's role from its certificate (tests/support/pki.h).
class SharedSecretMtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(MakeTestPki(dir_.path(), &pki_, &error)) << error;
    broker_ = std::make_unique<BrokerProcess>(
        dir_, std::vector<std::string>{"--ephemeral", "--tls-cert", pki_.Cert("server"),
                                       "--tls-key", pki_.Key("server"), "--tls-ca", pki_.ca});
    admin_ = std::make_unique<BrokerView>(Channel("secret-admin"));
    operator_ = std::make_unique<BrokerView>(Channel("operator"));
  }
  TlsFiles Files(const std::string& who) { return {pki_.Cert(who), pki_.Key(who), pki_.ca}; }
  std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    ChannelOptions o(broker_->address());
    o.tls = Files(who);
    auto channel = MakeChannel(o);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return *channel;
  }
  TempDir dir_;
  Pki pki_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<BrokerView> admin_, operator_;
};

TEST_F(SharedSecretMtlsTest, AMinterWatchesTheSecretAndRevokesItsUsernames) {
  auto service = Connect(broker_->address(), Files("minter"));
  ASSERT_TRUE(service);
  AddAndActivate(*admin_, "s1", kSecret1);
  ASSERT_TRUE(WaitFor([&] { return MintsWith(*service, "sip:warmup@example.org") == "s1"; }));
  auto c = service->issuer().Issue("sip:alice@example.org", "", 600);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->password, TurnRestPassword(kSecret1, c->username));
  const uint64_t before = operator_->Status()->revoked_usernames();
  absl::Status s = service->issuer().RevokeSubscriber("sip:alice@example.org", "de-REGISTER");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(operator_->Status()->revoked_usernames(), before + 1)
      << "revoked until the expiry in the username";
}

TEST_F(SharedSecretMtlsTest, ACertificateWithoutTheMinterRoleGetsNoSecret) {
  AddAndActivate(*admin_, "s1", kSecret1);
  auto service = Connect(broker_->address(), Files("publisher"));
  ASSERT_TRUE(service);
  ASSERT_TRUE(WaitFor([&] { return service->secret_watcher()->streams() >= 2; }));
  auto c = service->issuer().Issue("sip:alice@example.org", "", 600);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
}

}  // namespace
}  // namespace turnbroker::pcscf
