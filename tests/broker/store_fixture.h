// An embedded store on a manual clock, with synchronous helpers.
#ifndef TURNBROKER_TESTS_BROKER_STORE_FIXTURE_H_
#define TURNBROKER_TESTS_BROKER_STORE_FIXTURE_H_

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>

#include "turnbroker/broker/embedded_store.h"
#include "turnbroker/common/clock.h"

namespace turnbroker::broker::testing {

inline constexpr int64_t kStart = 1'800'000'000'000;

inline v1::Credential MakeCredential(const std::string& username, int64_t expires_at_ms,
                                     const std::string& realm = "ims.example.org",
                                     const std::string& subscriber = "",
                                     const std::string& issuer = "") {
  v1::Credential c;
  c.set_realm(realm);
  c.set_username(username);
  c.set_key(std::string(16, static_cast<char>('a' + username.size() % 26)));
  c.set_expires_at_ms(expires_at_ms);
  c.set_subscriber(subscriber);
  c.set_issuer(issuer);
  return c;
}

inline absl::StatusOr<v1::PublishResponse> PublishSync(Store& store,
                                                       const v1::PublishRequest& request) {
  std::promise<absl::StatusOr<v1::PublishResponse>> done;
  store.Publish(&request,
                [&](absl::StatusOr<v1::PublishResponse> r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

inline absl::StatusOr<v1::RevokeResponse> RevokeSync(Store& store,
                                                     const v1::RevokeRequest& request) {
  std::promise<absl::StatusOr<v1::RevokeResponse>> done;
  store.Revoke(&request,
               [&](absl::StatusOr<v1::RevokeResponse> r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(std::unique_ptr<Journal> journal = nullptr) {
    store_.reset();
    auto s = EmbeddedStore::Open(journal ? std::move(journal) : NewMemoryJournal(), options_,
                                 &clock_, nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  absl::StatusOr<v1::PublishResponse> Publish(std::initializer_list<v1::Credential> creds) {
    v1::PublishRequest r;
    for (const auto& c : creds) *r.add_credentials() = c;
    return PublishSync(*store_, r);
  }
  absl::StatusOr<v1::PublishResponse> Publish(const v1::PublishRequest& r) {
    return PublishSync(*store_, r);
  }
  absl::StatusOr<v1::RevokeResponse> RevokeUsername(const std::string& username,
                                                    const std::string& realm = "") {
    v1::RevokeRequest r;
    r.mutable_selector()->mutable_username()->set_username(username);
    r.mutable_selector()->mutable_username()->set_realm(realm);
    return RevokeSync(*store_, r);
  }
  absl::StatusOr<v1::RevokeResponse> Revoke(const v1::RevokeRequest& r) {
    return RevokeSync(*store_, r);
  }
  const CredentialState& state() { return store_->state(); }
  // Runs expiry now, on the commit thread (which also runs it every 100 ms
  // of the clock on its own).
  void Expire() { store_->MaintainNow(); }

  std::vector<Change> History(Revision after = 0) {
    std::vector<Change> out;
    EXPECT_EQ(state().ReadHistory(after, 1'000'000, &out), CredentialState::HistoryRead::kOk);
    return out;
  }

  ManualClock clock_{kStart};
  EmbeddedStoreOptions options_;
  std::unique_ptr<EmbeddedStore> store_;
};

}  // namespace turnbroker::broker::testing

#endif  // TURNBROKER_TESTS_BROKER_STORE_FIXTURE_H_
