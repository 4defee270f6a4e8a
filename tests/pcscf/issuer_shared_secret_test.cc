// The Issuer's lifecycle in shared-secret mode (approach 1): minted without a
// broker call, reuse only while minted with the active secret, 503 without
// one, revocation of each username as a minter.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "fake_broker_client.h"
#include "fake_secret_source.h"
#include "turnbroker/pcscf/issuer.h"

namespace turnbroker::pcscf {
namespace {

using testing::FakeBrokerClient;
using testing::MakeSecret;
using testing::SecretEvent;
using testing::SnapshotFrames;
using testing::WaitFor;

constexpr int64_t kT0 = 1'800'000'000'000;
constexpr char kRealm[] = "example.org";
const std::string kSecretA = "sB3yq0d7W4Ff9mQ2xKZ_cT8vLp5nRj1hEuY6aGoX-Ik";
const std::string kSecretB = "Q9v2Lr7TnXk4Wc1Zp8Hs3Jd6Gf0Ym5Ba-Ue_RoIiOtA";

class IssuerSharedSecretTest : public ::testing::Test {
 protected:
  IssuerSharedSecretTest() : clock_(kT0), book_(&clock_), minting_(&book_, kRealm, 60, &clock_) {
    options_.mode = CredentialMode::kSharedSecret;
    options_.realm = kRealm;
    options_.issuer = "pcscf-1";
    options_.turn_uris = {"turn:turn.example.org:3478?transport=udp"};
    options_.overlap_ms = 50;
    options_.status_interval_ms = 0;
    publisher_ = std::make_unique<Publisher>(&broker_, PublisherOptions());
    issuer_ = std::make_unique<Issuer>(publisher_.get(), options_, &clock_, nullptr, &minting_);
  }
  ~IssuerSharedSecretTest() override {
    issuer_.reset();
    publisher_.reset();
  }
  void Activate(const std::string& id, const std::string& bytes, uint64_t revision) {
    if (!book_.synced()) {
      for (const auto& f : SnapshotFrames("e1", revision, {})) ASSERT_TRUE(book_.Apply(f).ok());
    }
    ASSERT_TRUE(book_
                    .Apply(SecretEvent("e1", revision,
                                       MakeSecret(kRealm, id, v1::SECRET_STATE_ACTIVE, bytes,
                                                  86'400'000, 0, 0, clock_.NowMs())))
                    .ok());
  }
  std::vector<std::string> RevokedUsernamesSorted() { return Sorted(broker_.revoked_usernames()); }
  static std::vector<std::string> Sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }
  bool WaitMovingClock(const std::function<bool()>& done) {
    return WaitFor([&] {
      if (done()) return true;
      clock_.Advance(100);
      return false;
    });
  }

  ManualClock clock_;
  SecretBook book_;
  SharedSecretMinting minting_;
  FakeBrokerClient broker_;
  IssuerOptions options_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Issuer> issuer_;
};

TEST_F(IssuerSharedSecretTest, UnavailableUntilASecretIsActive) {
  auto c = issuer_->Issue("sip:alice@example.org", "alice@example.org", 0);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(issuer_->live_credentials(), 0u);
  Activate("a", kSecretA, 2);
  EXPECT_TRUE(issuer_->Issue("sip:alice@example.org", "alice@example.org", 0).ok());
}

TEST_F(IssuerSharedSecretTest, MintsWithoutABrokerCallEvenWhenTheBrokerIsDown) {
  Activate("a", kSecretA, 2);
  broker_.SetUnavailable(true);
  auto c = issuer_->Issue("sip:alice@example.org", "alice@example.org", 600);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(broker_.publish_calls(), 0);
  EXPECT_EQ(c->username.find("alice"), std::string::npos) << "never the IMPU";
  EXPECT_EQ(c->password, TurnRestPassword(kSecretA, c->username));
  EXPECT_EQ(c->expires_at_ms, kT0 + 600'000);
  EXPECT_NE(issuer_->HeaderValue(*c).find("username=\"" + c->username + "\""), std::string::npos);
}

TEST_F(IssuerSharedSecretTest, ReusesWhileTheSecretIsActiveThenRotatesAndKeepsTheReplacedOne) {
  Activate("a", kSecretA, 2);
  auto first = issuer_->Issue("sip:alice@example.org", "alice@example.org", 3600);
  ASSERT_TRUE(first.ok());
  auto again = issuer_->Issue("sip:alice@example.org", "alice@example.org", 3600);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->reused);
  EXPECT_EQ(again->username, first->username);

  clock_.Advance(1'000);
  Activate("b", kSecretB, 3);
  auto rotated = issuer_->Issue("sip:alice@example.org", "alice@example.org", 3600);
  ASSERT_TRUE(rotated.ok());
  EXPECT_FALSE(rotated->reused);
  EXPECT_EQ(rotated->secret_id, "b");
  EXPECT_EQ(rotated->password, TurnRestPassword(kSecretB, rotated->username));
  // The replaced one is not revoked after the overlap: coturn could not
  // refuse it anyway, and its revocation would end the calls relayed with
  // it. It stays held until the de-REGISTER, which revokes both.
  for (int i = 0; i < 20; ++i) clock_.Advance(100);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(broker_.revoked_usernames().empty());
  EXPECT_EQ(issuer_->live_credentials(), 2u);
  ASSERT_TRUE(issuer_->RevokeSubscriber("sip:alice@example.org", "de-REGISTER").ok());
  EXPECT_EQ(RevokedUsernamesSorted(), Sorted({first->username, rotated->username}));
  EXPECT_EQ(broker_.publish_calls(), 0);
}

TEST_F(IssuerSharedSecretTest, DeRegisterRevokesEachUsernameNeverTheSubscriber) {
  Activate("a", kSecretA, 2);
  auto one = issuer_->Issue("sip:alice@example.org", "", 3600);
  ASSERT_TRUE(one.ok());
  auto two = issuer_->Refresh(one->username, 0);
  ASSERT_TRUE(two.ok());
  ASSERT_TRUE(issuer_->RevokeSubscriber("sip:alice@example.org", "de-REGISTER").ok());
  EXPECT_EQ(RevokedUsernamesSorted(), Sorted({one->username, two->username}));
  EXPECT_TRUE(broker_.revoked_subscribers().empty()) << "a minter revokes usernames only";
  EXPECT_EQ(issuer_->live_credentials(), 0u);
  // Nothing held (e.g. after a restart): nothing to revoke, and no error.
  EXPECT_TRUE(issuer_->RevokeSubscriber("sip:bob@example.org", "de-REGISTER").ok());
}

TEST_F(IssuerSharedSecretTest, ARevocationTheBrokerMissedIsRetriedByUsername) {
  Activate("a", kSecretA, 2);
  auto c = issuer_->Issue("sip:alice@example.org", "", 3600);
  ASSERT_TRUE(c.ok());
  broker_.SetUnavailable(true);
  auto s = issuer_->RevokeSubscriber("sip:alice@example.org", "de-REGISTER");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(issuer_->pending_revocations(), 1u);
  broker_.SetUnavailable(false);
  ASSERT_TRUE(WaitMovingClock([&] { return issuer_->pending_revocations() == 0; }));
  ASSERT_EQ(broker_.revoked_usernames().size(), 1u);
  EXPECT_EQ(broker_.revoked_usernames()[0], c->username);
}

TEST_F(IssuerSharedSecretTest, ReadyFollowsTheSecretNotTheBroker) {
  EXPECT_FALSE(issuer_->Ready(absl::OkStatus()).ok());
  Activate("a", kSecretA, 2);
  EXPECT_TRUE(issuer_->Ready(absl::UnavailableError("down")).ok());
  EXPECT_EQ(issuer_->mode(), CredentialMode::kSharedSecret);
}

}  // namespace
}  // namespace turnbroker::pcscf
