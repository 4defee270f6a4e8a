// Approach 1 over gRPC sockets and mTLS with the embedded store: who may do
// what, Watch delivering secrets (snapshot and live) by role, Acknowledge
// gating activation, ListSecrets and the metrics showing progress, and the
// durable store keeping secrets across a restart (docs/approach1.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "promtool.h"
#include "secret_broker_fixture.h"

namespace turnbroker::broker::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using turnbroker::testing::WatchClient;

const std::string kBytesA = "AAAAaaaa-secret-number-one-0123456789_xyz";
const std::string kBytesB = "BBBBbbbb-secret-number-two-0123456789_xyz";

bool IsSecret(const v1::Event& e, const std::string& id, v1::SecretState state) {
  return e.has_secret() && e.secret().id() == id && e.secret().state() == state;
}

TEST_F(SecretBrokerTest, WatchersGetSecretsAsTheirRoleAllows) {
  Start();
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ASSERT_TRUE(Activate("a").ok());

  auto minter = WatchSecrets("minter");
  auto subscriber = WatchSecrets("subscriber");
  auto operator_ = WatchSecrets("operator");
  auto plain = WatchSecrets("subscriber", {});  // credentials only
  for (auto* w : {minter.get(), subscriber.get(), operator_.get()}) {
    ASSERT_TRUE(WaitForEvent(
        *w, [](const v1::Event& e) { return IsSecret(e, "a", v1::SECRET_STATE_ACTIVE); }));
    ASSERT_TRUE(w->WaitFor([](const WatchClient::Responses& rs) {
      return WatchClient::Count(rs, v1::WatchResponse::SYNCED) == 1;
    }));
  }
  // The snapshot: one event per known secret, with its bytes for those that
  // use them.
  auto snapshot_secret = [](WatchClient& w) {
    for (const v1::Event& e : WatchClient::Events(w.responses()))
      if (e.has_secret()) return e.secret();
    return v1::SharedSecret();
  };
  EXPECT_EQ(snapshot_secret(*minter).secret(), kBytesA);
  EXPECT_EQ(snapshot_secret(*subscriber).secret(), kBytesA);
  EXPECT_EQ(snapshot_secret(*operator_).secret(), "") << "operators never see secret bytes";
  EXPECT_EQ(snapshot_secret(*operator_).state(), v1::SECRET_STATE_ACTIVE);

  // Live: a rotation reaches every secret watcher in order.
  ASSERT_TRUE(Add("b", kBytesB).ok());
  ASSERT_TRUE(Activate("b").ok());
  for (auto* w : {minter.get(), subscriber.get(), operator_.get()}) {
    ASSERT_TRUE(WaitForEvent(
        *w, [](const v1::Event& e) { return IsSecret(e, "b", v1::SECRET_STATE_ACTIVE); }));
  }
  std::vector<std::string> seen;
  for (const v1::Event& e : WatchClient::Events(minter->responses())) {
    if (e.has_secret())
      seen.push_back(StrCat(e.secret().id(), ":", v1::SecretState_Name(e.secret().state())));
  }
  EXPECT_THAT(seen, ElementsAre("a:SECRET_STATE_ACTIVE", "b:SECRET_STATE_STAGED",
                                "a:SECRET_STATE_SUPERSEDED", "b:SECRET_STATE_ACTIVE"));
  ASSERT_TRUE(Retire("a", /*force=*/true).ok());
  ASSERT_TRUE(WaitForEvent(*subscriber, [](const v1::Event& e) {
    return e.has_secret_retired() && e.secret_retired().id() == "a";
  }));

  // A minter revokes one approach-1 username: the TURN side hears of it
  // (to end its allocations), the agents do not.
  const std::string username = StrCat(Clock::System()->NowMs() / 1000 + 600, ":AbCdEf_-12");
  ASSERT_TRUE(RevokeUsername(username, "minter").ok());
  ASSERT_TRUE(WaitForEvent(*subscriber, [&](const v1::Event& e) {
    return e.has_revoke() && e.revoke().credentials_size() == 1 &&
           e.revoke().credentials(0).username() == username;
  }));
  ASSERT_TRUE(WaitForEvent(*plain, [&](const v1::Event& e) { return e.has_revoke(); }))
      << plain->responses().size() << " "
      << (plain->finished() ? plain->finished()->error_message() : "");
  ASSERT_TRUE(RevokeUsername(username, "minter").ok()) << "again: nothing new to record";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (const v1::Event& e : WatchClient::Events(minter->responses())) {
    EXPECT_FALSE(e.has_revoke() || e.has_put()) << e.ShortDebugString();
  }
  for (const v1::Event& e : WatchClient::Events(plain->responses())) {
    EXPECT_FALSE(e.has_secret() || e.has_secret_retired()) << "not asked for";
  }

  // A client with both roles (an eP-CSCF in both modes) gets the minter's
  // rules for an approach-1 username: recorded, with its tombstone.
  const std::string other = StrCat(Clock::System()->NowMs() / 1000 + 300, ":Both_roles");
  ASSERT_TRUE(RevokeUsername(other, "publisher-minter").ok());
  EXPECT_TRUE(server_->store().state().IsRevoked(kSecretRealm, other));
  ASSERT_TRUE(WaitForEvent(*subscriber, [&](const v1::Event& e) {
    return e.has_revoke() && e.revoke().credentials_size() == 1 &&
           e.revoke().credentials(0).username() == other;
  }));

  v1::GetStatusResponse status;
  grpc::ClientContext ctx;
  Deadline(&ctx);
  ASSERT_TRUE(Stub("minter")->GetStatus(&ctx, {}, &status).ok());
  EXPECT_EQ(status.shared_secrets(), 1u);
}

TEST_F(SecretBrokerTest, EachSecretsExpiryIsAMetricForAlerts) {
  Start();
  ASSERT_TRUE(Add("forever", kBytesA).ok());
  const int64_t expires_at_ms = 4'000'000'000'000;  // 2096
  v1::AddSecretRequest req;
  req.mutable_secret()->set_realm(kSecretRealm);
  req.mutable_secret()->set_id("ends");
  req.mutable_secret()->set_secret(kBytesB);
  req.mutable_secret()->set_expires_at_ms(expires_at_ms);
  v1::SecretResponse resp;
  grpc::ClientContext ctx;
  Deadline(&ctx);
  ASSERT_TRUE(Stub("secret-admin")->AddSecret(&ctx, req, &resp).ok());
  std::string metrics = server_->metrics().Render();
  EXPECT_THAT(metrics, HasSubstr("turnbroker_secret_expiry_seconds{realm=\"ims.example.org\","
                                 "id=\"ends\",state=\"staged\"} 4000000000"));
  EXPECT_THAT(metrics, Not(HasSubstr("id=\"forever\",state=\"staged\"} ")))
      << "a secret without an expiry has no expiry sample";
  EXPECT_EQ(turnbroker::testing::PromtoolProblems(metrics), "");
}

TEST_F(SecretBrokerTest, AcknowledgementsGateActivationAndShowInListAndMetrics) {
  Start();
  ASSERT_TRUE(Acknowledge("turn-1", 0).ok());
  ASSERT_TRUE(Acknowledge("turn-2", 0).ok());
  v1::SecretResponse added;
  ASSERT_TRUE(Add("a", kBytesA, "secret-admin", kSecretRealm, &added).ok());
  grpc::Status s = Activate("a");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("not acknowledged it yet: turn-1, turn-2"));

  ASSERT_TRUE(Acknowledge("turn-1", added.revision()).ok());
  v1::ListSecretsResponse list;
  ASSERT_TRUE(List(&list).ok());
  ASSERT_EQ(list.secrets_size(), 1);
  const v1::SecretInfo& info = list.secrets(0);
  EXPECT_EQ(info.secret().secret(), "");
  EXPECT_EQ(info.staged_revision(), added.revision());
  EXPECT_THAT(info.syncs_acknowledged(), ElementsAre("turn-1"));
  EXPECT_THAT(info.syncs_pending(), ElementsAre("turn-2"));
  EXPECT_EQ(info.stage_grace_ends_at_ms(), info.secret().added_at_ms() + 60'000);
  ASSERT_TRUE(List(&list, "operator").ok()) << "operators read the progress too";
  ASSERT_TRUE(List(&list, "secret-admin", /*include_secret=*/true).ok());
  EXPECT_EQ(list.secrets(0).secret().secret(), kBytesA);

  std::string metrics = server_->metrics().Render();
  EXPECT_THAT(metrics, AllOf(HasSubstr("turnbroker_secret_syncs{realm=\"ims.example.org\",id=\"a\","
                                       "state=\"acknowledged\"} 1"),
                             HasSubstr("turnbroker_secret_syncs{realm=\"ims.example.org\",id=\"a\","
                                       "state=\"pending\"} 1"),
                             HasSubstr("turnbroker_shared_secrets 1")));
  EXPECT_EQ(turnbroker::testing::PromtoolProblems(metrics), "");
  EXPECT_EQ(metrics.find(kBytesA), std::string::npos);

  ASSERT_TRUE(Acknowledge("turn-2", added.revision() + 1).ok());
  EXPECT_TRUE(Activate("a").ok());
}

TEST_F(SecretBrokerTest, TheDurableStoreKeepsSecretsAcrossARestart) {
  options_.ephemeral = false;
  options_.data_dir = dir_.File("data");
  Start();
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ASSERT_TRUE(Activate("a").ok());
  ASSERT_TRUE(Add("b", kBytesB).ok());
  const uint64_t head = server_->store().state().head();
  server_->Shutdown();
  server_.reset();
  Start();
  EXPECT_EQ(server_->store().state().head(), head);
  auto minter = WatchSecrets("minter");
  ASSERT_TRUE(minter->WaitFor([](const WatchClient::Responses& rs) {
    return WatchClient::Count(rs, v1::WatchResponse::SYNCED) == 1;
  }));
  std::map<std::string, v1::SharedSecret> known;
  for (const v1::Event& e : WatchClient::Events(minter->responses()))
    known[e.secret().id()] = e.secret();
  ASSERT_EQ(known.size(), 2u);
  EXPECT_EQ(known["a"].state(), v1::SECRET_STATE_ACTIVE);
  EXPECT_EQ(known["a"].secret(), kBytesA);
  EXPECT_EQ(known["b"].state(), v1::SECRET_STATE_STAGED);
  v1::ListSecretsResponse list;
  ASSERT_TRUE(List(&list).ok());
  ASSERT_EQ(list.secrets_size(), 2);
  EXPECT_EQ(list.secrets(1).staged_revision(), 3u);
  // The syncs' reports did not survive the restart: activations wait one
  // report window (30 s) for them, or the stage grace.
  EXPECT_GT(list.secrets(1).reports_complete_at_ms(), 0);
  auto early = Activate("b");
  EXPECT_EQ(early.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(early.error_message(), ::testing::HasSubstr("the broker restarted"));
  server_->Shutdown();
  server_.reset();
  options_.store.secrets.stage_grace_ms = 0;
  Start();
  minter = WatchSecrets("minter");
  EXPECT_TRUE(Activate("b").ok()) << "the stage grace has passed";
  ASSERT_TRUE(minter->WaitFor([](const WatchClient::Responses& rs) {
    for (const v1::Event& e : WatchClient::Events(rs))
      if (e.secret().id() == "b" && e.secret().state() == v1::SECRET_STATE_ACTIVE) return true;
    return false;
  }));
}

}  // namespace
}  // namespace turnbroker::broker::testing
