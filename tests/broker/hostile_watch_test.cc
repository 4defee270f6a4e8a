// Client-sized work (docs/security.md#broker-bounded-work-per-request):
// every list a client sends is bounded, and a watcher with a huge filter
// does not slow publishes down. Against the real turn-broker binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <future>

#include "broker_client.h"
#include "broker_process.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/credential.h"
#include "watch_client.h"

namespace turnbroker::testing {
namespace {

using ::testing::HasSubstr;

// The bounds of docs/contract.md.
constexpr int kMaxWatchRealms = 1'000;
constexpr int kMaxWatchKinds = 16;

class HostileWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(dir_, std::vector<std::string>{"--ephemeral"});
    auto ch = MakeChannel(ChannelOptions{broker_->address()});
    ASSERT_TRUE(ch.ok());
    channel_ = *ch;
    client_ = std::make_unique<BrokerClient>(channel_);
  }

  // A realm list of `n` names none of which is published (same length as
  // the real one, so a linear match compares bytes).
  static v1::WatchRequest Filter(int n) {
    v1::WatchRequest r;
    char name[32];
    for (int i = 0; i < n; ++i) {
      std::snprintf(name, sizeof name, "x%014d", i);
      r.add_realms(name);
    }
    r.set_watcher_name("hostile");
    return r;
  }

  grpc::Status WatchStatus(const v1::WatchRequest& request) {
    WatchClient w(channel_, request);
    if (!w.WaitForEnd(std::chrono::seconds(5))) return grpc::Status::OK;  // it streams
    return *w.finished();
  }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BrokerClient> client_;
};

TEST_F(HostileWatchTest, OversizeListsAreRefusedNamingTheField) {
  grpc::Status s = WatchStatus(Filter(kMaxWatchRealms + 1));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("realms: 1001 entries, at most 1000"));

  v1::WatchRequest kinds;
  for (int i = 0; i <= kMaxWatchKinds; ++i) kinds.add_kinds(v1::RECORD_KIND_LONG_TERM_CREDENTIAL);
  s = WatchStatus(kinds);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("kinds: 17 entries, at most 16"));

  v1::ListRequest list;
  list.set_page_size(1001);
  v1::ListResponse lr;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  s = client_->stub()->List(&ctx, list, &lr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_size: at most 1000"));

  v1::Credential scoped = TestCredential("scoped");
  for (size_t i = 0; i <= kMaxScopes; ++i) scoped.add_scopes("farm" + std::to_string(i));
  s = client_->Publish({scoped});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("credentials[0].scopes: has 17 entries, at most 16"));

  std::vector<v1::Credential> batch(10'001, TestCredential("same"));
  s = client_->Publish(batch);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("credentials: 10001 in one request, at most 10000"));
}

TEST_F(HostileWatchTest, PublishesStayOnTimeWhileAHugeFilterConnects) {
  // A live set the hostile filters must be matched against.
  for (int b = 0; b < 4; ++b) {
    std::vector<v1::Credential> batch;
    for (int i = 0; i < 5'000; ++i)
      batch.push_back(TestCredential("c" + std::to_string(b) + "-" + std::to_string(i)));
    ASSERT_TRUE(client_->Publish(batch).ok());
  }
  // Publishes go on, each with the deadline an eP-CSCF gives one (here
  // 3 s; they take milliseconds), while hostile watchers connect.
  std::atomic<bool> stop{false};
  auto publisher = std::async(std::launch::async, [&] {
    auto stub = v1::CredentialBroker::NewStub(channel_);
    std::vector<grpc::Status> failed;
    for (int i = 0; !stop.load() || i < 20; ++i) {
      v1::PublishRequest req;
      *req.add_credentials() = TestCredential("p" + std::to_string(i));
      v1::PublishResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
      grpc::Status s = stub->Publish(&ctx, req, &resp);
      if (!s.ok()) failed.push_back(s);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return failed;
  });
  // Past the bound: refused before it costs anything.
  std::vector<std::unique_ptr<WatchClient>> watchers;
  watchers.push_back(std::make_unique<WatchClient>(channel_, Filter(200'000)));
  // At the bound, matching nothing: the snapshot walks the whole live set.
  for (int i = 0; i < 3; ++i)
    watchers.push_back(std::make_unique<WatchClient>(channel_, Filter(kMaxWatchRealms)));
  for (size_t i = 1; i < watchers.size(); ++i) {
    EXPECT_TRUE(watchers[i]->WaitFor(
        [](auto& rs) { return WatchClient::Count(rs, v1::WatchResponse::SYNCED) == 1; },
        std::chrono::seconds(30)));
    EXPECT_EQ(WatchClient::Events(watchers[i]->responses()).size(), 0u);
  }
  stop = true;
  std::vector<grpc::Status> failed = publisher.get();
  EXPECT_TRUE(failed.empty()) << failed.size() << " publishes failed, e.g. "
                              << failed.front().error_code() << " "
                              << failed.front().error_message();
  ASSERT_TRUE(watchers[0]->WaitForEnd(std::chrono::seconds(5)));
  EXPECT_EQ(watchers[0]->finished()->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(watchers[0]->finished()->error_message(), HasSubstr("realms: 200000 entries"));
}

}  // namespace
}  // namespace turnbroker::testing
