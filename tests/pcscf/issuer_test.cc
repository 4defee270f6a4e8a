#include "turnbroker/pcscf/issuer.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "fake_broker_client.h"
#include "turnbroker/pcscf/sip_header.h"

namespace turnbroker::pcscf {
namespace {

using testing::FakeBrokerClient;
using testing::WaitFor;

constexpr int64_t kT0 = 1'800'000'000'000;

class IssuerTest : public ::testing::Test {
 protected:
  IssuerTest() : clock_(kT0) {
    options_.realm = "example.org";
    options_.issuer = "pcscf-1";
    options_.turn_uris = {"turn:turn.example.org:3478?transport=udp"};
    options_.default_ttl_s = 3600;
    options_.reuse_min_remaining_s = 600;
    options_.overlap_ms = 50;
    options_.status_interval_ms = 0;
  }
  void Start() {
    publisher_ = std::make_unique<Publisher>(&broker_, publisher_options_);
    issuer_ = std::make_unique<Issuer>(publisher_.get(), options_, &clock_);
  }
  void TearDown() override {
    issuer_.reset();
    publisher_.reset();
  }

  // Polls `done`, moving the clock `step_ms` at each look, so that the
  // issuer's scheduled work (overlaps, retries, status polls) comes due in
  // the clock's time.
  bool WaitMovingClock(const std::function<bool()>& done, int64_t step_ms = 100) {
    return WaitFor([&] {
      if (done()) return true;
      clock_.Advance(step_ms);
      return false;
    });
  }

  ManualClock clock_;
  FakeBrokerClient broker_;
  IssuerOptions options_;
  PublisherOptions publisher_options_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Issuer> issuer_;
};

TEST_F(IssuerTest, IssuesACredentialTheBrokerHoldsWithTheRightKey) {
  Start();
  auto c = issuer_->Issue("sip:alice@example.org", "alice@example.org", 0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->reused);
  EXPECT_EQ(c->expires_at_ms, kT0 + 3'600'000);
  v1::Credential stored;
  ASSERT_TRUE(broker_.Get(c->username, &stored)) << "acknowledged means committed";
  LongTermKey key = DeriveLongTermKey(c->username, "example.org", c->password);
  EXPECT_EQ(stored.key(), std::string(reinterpret_cast<const char*>(key.data()), key.size()));
  EXPECT_EQ(stored.subscriber(), "sip:alice@example.org");
  EXPECT_EQ(stored.issuer(), "pcscf-1");
  EXPECT_EQ(stored.realm(), "example.org");
  EXPECT_EQ(stored.expires_at_ms(), kT0 + 3'600'000);
  EXPECT_NE(stored.SerializeAsString().find(c->username), std::string::npos);
  EXPECT_EQ(stored.SerializeAsString().find(c->password), std::string::npos)
      << "the password never reaches the broker";
}

TEST_F(IssuerTest, HeaderCarriesTheCredentialAndUris) {
  Start();
  auto c = issuer_->Issue("sip:alice@example.org", "", 600);
  ASSERT_TRUE(c.ok());
  clock_.Advance(10'500);
  auto h = ParseTurnCredentialHeader(issuer_->HeaderValue(*c));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->username, c->username);
  EXPECT_EQ(h->password, c->password);
  EXPECT_EQ(h->ttl_s, 589);
  EXPECT_EQ(h->expires_at_s, (kT0 + 600'000) / 1000);
  EXPECT_EQ(h->urls, options_.turn_uris);
}

TEST_F(IssuerTest, ReRegisterReusesWhileEnoughLifetimeIsLeftThenRotates) {
  Start();
  auto first = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(first.ok());
  clock_.Advance(2'000'000);  // 1600 s left >= 600
  auto again = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->reused);
  EXPECT_EQ(again->username, first->username);
  EXPECT_EQ(again->password, first->password);
  EXPECT_EQ(broker_.publish_calls(), 2) << "reuse publishes the same record again";
  EXPECT_EQ(broker_.live_count(), 1u) << "an idempotent no-op at the broker";

  clock_.Advance(1'100'000);  // 500 s left < 600: rotate
  auto rotated = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(rotated.ok());
  EXPECT_FALSE(rotated->reused);
  EXPECT_NE(rotated->username, first->username);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(broker_.IsLive(first->username)) << "the old one overlaps for a while";
  clock_.Advance(options_.overlap_ms);
  ASSERT_TRUE(WaitFor([&] { return !broker_.IsLive(first->username); }));
  EXPECT_TRUE(broker_.IsLive(rotated->username));
  EXPECT_EQ(broker_.revoked_usernames(), std::vector<std::string>{first->username});
}

TEST_F(IssuerTest, ACredentialIsReusedOnlyForTheIdentityItWasIssuedTo) {
  Start();
  auto first = issuer_->Issue("sip:alice@example.org", "alice@example.org", 0);
  ASSERT_TRUE(first.ok());
  auto same = issuer_->Issue("sip:alice@example.org", "alice@example.org", 0);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->reused);
  for (const char* other : {"mallory@example.org", ""}) {
    auto c = issuer_->Issue("sip:alice@example.org", other, 0);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->reused) << "impi '" << other << "'";
    EXPECT_NE(c->password, first->password) << "alice's password handed to '" << other << "'";
  }
}

TEST_F(IssuerTest, ReRegisterAfterAnOperatorRevokedTheCredentialMintsANewOne) {
  Start();
  auto first = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(first.ok());
  broker_.RevokeOutOfBand(first->username);  // turnbrokerctl revoke, say
  clock_.Advance(60'000);
  auto again = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->reused);
  EXPECT_NE(again->username, first->username) << "never hands out a revoked credential";
  EXPECT_NE(again->password, first->password);
  EXPECT_TRUE(broker_.IsLive(again->username));
  EXPECT_FALSE(broker_.IsLive(first->username));
  EXPECT_EQ(issuer_->live_credentials(), 1u) << "the revoked one is forgotten";
  EXPECT_EQ(issuer_->pending_revocations(), 0u) << "nothing left to revoke";
  // And the new one is reused at the next re-REGISTER.
  auto third = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->reused);
  EXPECT_EQ(third->username, again->username);
}

TEST_F(IssuerTest, ReRegisterWithTheBrokerDownHandsOutNothingAndKeepsTheCredential) {
  options_.publish_timeout_ms = 200;
  Start();
  auto first = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(first.ok());
  broker_.SetUnavailable(true);
  auto down = issuer_->Issue("sip:alice@example.org", "", 0);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  EXPECT_EQ(std::string(down.status().message()).find(first->password), std::string::npos);
  EXPECT_EQ(issuer_->live_credentials(), 1u);
  EXPECT_EQ(issuer_->pending_revocations(), 0u)
      << "the WIC still holds it from the previous REGISTER: not revoked";
  broker_.SetUnavailable(false);
  auto back = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->reused);
  EXPECT_EQ(back->username, first->username);
  EXPECT_TRUE(broker_.IsLive(first->username));
}

TEST_F(IssuerTest, ReRegisterRefusedForAnotherReasonIsThatError) {
  Start();
  auto first = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(first.ok());
  broker_.FailNextPublishes(1, absl::PermissionDeniedError("Publish needs role publisher"));
  auto refused = issuer_->Issue("sip:alice@example.org", "", 0);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(broker_.publish_calls(), 2) << "no new credential minted behind a refusal";
  auto again = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->username, first->username);
}

TEST_F(IssuerTest, RotatesAtEveryRegisterWithoutReuse) {
  options_.reuse = false;
  options_.overlap_ms = -1;  // old ones just expire
  Start();
  std::set<std::string> usernames;
  for (int i = 0; i < 3; ++i) {
    auto c = issuer_->Issue("sip:alice@example.org", "", 0);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->reused);
    usernames.insert(c->username);
  }
  EXPECT_EQ(usernames.size(), 3u);
  clock_.Advance(60'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(broker_.revoked_usernames().empty());
}

TEST_F(IssuerTest, RefreshMintsANewOneAndRevokesTheOldAfterTheOverlap) {
  options_.reuse_min_remaining_s = 300;  // the overlap below moves the clock
  Start();
  auto old = issuer_->Issue("sip:alice@example.org", "", 600);
  ASSERT_TRUE(old.ok());
  auto fresh = issuer_->Refresh(old->username, 0);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->username, old->username);
  EXPECT_EQ(fresh->subscriber, "sip:alice@example.org");
  EXPECT_EQ(fresh->expires_at_ms - fresh->issued_at_ms, 600'000) << "the old lifetime";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(broker_.IsLive(old->username)) << "the old one overlaps for a while";
  clock_.Advance(options_.overlap_ms);
  ASSERT_TRUE(WaitFor([&] { return !broker_.IsLive(old->username); }));
  EXPECT_TRUE(broker_.IsLive(fresh->username));
  // The refreshed one is now the registration's current credential.
  auto again = issuer_->Issue("sip:alice@example.org", "", 600);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->username, fresh->username);
}

TEST_F(IssuerTest, RefreshOfAnUnknownUsernameIsNotFound) {
  Start();
  auto r = issuer_->Refresh("nobody1234567890", 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(r.status().message()).rfind("username: ", 0), 0u);
}

TEST_F(IssuerTest, RevokesBySubscriberAndForgetsTheRegistration) {
  Start();
  auto c = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(issuer_->RevokeSubscriber("sip:alice@example.org", "de-REGISTER").ok());
  EXPECT_FALSE(broker_.IsLive(c->username));
  EXPECT_EQ(issuer_->live_credentials(), 0u);
  auto next = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->username, c->username) << "never hands out a revoked credential";
}

TEST_F(IssuerTest, RevokesAUsernameItDoesNotHold) {
  Start();
  EXPECT_TRUE(issuer_->RevokeUsername("fromBeforeRestart", "operator").ok());
  EXPECT_EQ(broker_.revoked_usernames(), std::vector<std::string>{"fromBeforeRestart"});
}

TEST_F(IssuerTest, BrokerDownHandsOutNothingAndRevokesWhatMayHaveLanded) {
  Start();
  broker_.SetUnavailable(true);
  auto c = issuer_->Issue("sip:alice@example.org", "", 0);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(issuer_->live_credentials(), 0u);
  EXPECT_EQ(issuer_->pending_revocations(), 1u);
  broker_.SetUnavailable(false);
  // The background revocation of the unacknowledged username gets through.
  ASSERT_TRUE(WaitMovingClock([&] { return broker_.revoked_usernames().size() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return issuer_->pending_revocations() == 0; }));
  EXPECT_EQ(broker_.live_count(), 0u);
}

TEST_F(IssuerTest, AnUnacknowledgedRevocationIsRetriedByUsername) {
  Start();
  auto c = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(c.ok());
  broker_.SetUnavailable(true);
  auto s = issuer_->RevokeSubscriber("sip:alice@example.org", "de-REGISTER");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  broker_.SetUnavailable(false);
  ASSERT_TRUE(WaitMovingClock([&] { return !broker_.IsLive(c->username); }));
  EXPECT_EQ(broker_.revoked_usernames(), std::vector<std::string>{c->username})
      << "retried by username, never by subscriber";
}

TEST_F(IssuerTest, ReassertsLiveCredentialsWhenTheBrokerEpochChanges) {
  options_.status_interval_ms = 20;
  Start();
  auto a = issuer_->Issue("sip:alice@example.org", "", 0);
  auto b = issuer_->Issue("sip:bob@example.org", "", 0);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(issuer_->RevokeSubscriber("sip:bob@example.org", "de-REGISTER").ok());
  broker_.LoseState();
  // The status poll notices the new epoch and re-publishes what is live.
  ASSERT_TRUE(WaitMovingClock([&] { return broker_.IsLive(a->username); }, 20));
  EXPECT_FALSE(broker_.IsLive(b->username)) << "a revoked credential is never re-asserted";
}

TEST_F(IssuerTest, AReassertionTheBrokerDoesNotAnswerIsRetriedUntilItDoes) {
  options_.status_interval_ms = 20;
  // The Publisher does not retry UNAVAILABLE itself: each failure reaches
  // the issuer (as after its retry window in a longer outage).
  publisher_options_.retry_unavailable_for_ms = 0;
  Start();
  auto a = issuer_->Issue("sip:alice@example.org", "", 0);
  ASSERT_TRUE(a.ok());
  // A new epoch that comes with a failover: the first re-assertions find
  // the broker still away.
  broker_.FailNextPublishes(3, absl::UnavailableError("failing over"));
  broker_.LoseState();
  ASSERT_TRUE(WaitMovingClock([&] { return broker_.IsLive(a->username); }, 200))
      << "re-asserted once the broker answered";
}

TEST_F(IssuerTest, RevokesAgainWhatANewEpochLostTheRevocationOf) {
  options_.status_interval_ms = 20;
  Start();
  auto a = issuer_->Issue("sip:alice@example.org", "", 0);
  auto b = issuer_->Issue("sip:bob@example.org", "", 0);
  auto c = issuer_->Issue("sip:carol@example.org", "", 0);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  v1::Credential bob, carol;
  ASSERT_TRUE(broker_.Get(b->username, &bob) && broker_.Get(c->username, &carol));
  ASSERT_TRUE(issuer_->RevokeSubscriber("sip:bob@example.org", "de-REGISTER").ok());
  ASSERT_TRUE(issuer_->RevokeUsername(c->username, "de-REGISTER").ok());
  EXPECT_EQ(issuer_->remembered_revocations(), 2u);
  // The promoted replica had the puts but lost both acknowledged revocations.
  broker_.LoseStateKeeping({bob, carol});
  ASSERT_TRUE(WaitMovingClock(
      [&] {
        return broker_.IsLive(a->username) && !broker_.IsLive(b->username) &&
               !broker_.IsLive(c->username);
      },
      20));
}

TEST_F(IssuerTest, ValidationErrorsNameTheField) {
  Start();
  auto message = [](const absl::Status& s) { return std::string(s.message()); };
  EXPECT_EQ(message(issuer_->Issue("", "", 0).status()), "impu: must not be empty");
  EXPECT_EQ(message(issuer_->Issue("sip:a b@x", "", 0).status()).rfind("impu: ", 0), 0u);
  EXPECT_EQ(message(issuer_->Issue("sip:a@x", "i\x01", 0).status()).rfind("impi: ", 0), 0u);
  EXPECT_EQ(message(issuer_->Issue("sip:a@x", "", 59).status()),
            "ttl: must be between 60 and 86400 seconds, got 59");
  EXPECT_EQ(message(issuer_->Issue("sip:a@x", "", 86401).status()).rfind("ttl: ", 0), 0u);
  EXPECT_EQ(message(issuer_->Refresh("bad name", 0).status()).rfind("username: ", 0), 0u);
  EXPECT_EQ(message(issuer_->RevokeUsername("", "x")).rfind("username: ", 0), 0u);
  EXPECT_EQ(message(issuer_->RevokeSubscriber("", "x")), "impu: must not be empty");
  EXPECT_EQ(broker_.publish_calls(), 0);
}

TEST_F(IssuerTest, OptionsAreValidatedNamingTheOption) {
  IssuerOptions o = options_;
  EXPECT_TRUE(o.Validate().ok());
  o.realm = "bad realm";
  EXPECT_EQ(std::string(o.Validate().message()).rfind("realm: ", 0), 0u);
  o = options_;
  o.turn_uris = {"turn:ok", "http://no"};
  EXPECT_EQ(std::string(o.Validate().message()).rfind("turn_uris[1]: ", 0), 0u);
  o = options_;
  o.turn_uris.clear();
  EXPECT_EQ(std::string(o.Validate().message()).rfind("turn_uris: ", 0), 0u);
  o = options_;
  o.default_ttl_s = 10;
  EXPECT_EQ(std::string(o.Validate().message()).rfind("ttl: ", 0), 0u);
  o = options_;
  o.issuer = "has space";
  EXPECT_EQ(std::string(o.Validate().message()).rfind("issuer: ", 0), 0u);
}

TEST_F(IssuerTest, ManyWorkersIssueConcurrentlyAndShareBrokerCalls) {
  broker_.SetDelayMs(2);
  Start();
  constexpr int kThreads = 16, kEach = 50;
  std::mutex mu;
  std::set<std::string> usernames;
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto c = issuer_->Issue("sip:u" + std::to_string(t * kEach + i) + "@example.org", "", 0);
        ASSERT_TRUE(c.ok()) << c.status();
        std::lock_guard lock(mu);
        usernames.insert(c->username);
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(usernames.size(), size_t{kThreads * kEach});
  EXPECT_EQ(broker_.live_count(), size_t{kThreads * kEach});
  EXPECT_LT(broker_.publish_calls(), kThreads * kEach / 2) << "publishes were batched";
}

}  // namespace
}  // namespace turnbroker::pcscf
