// Two broker replicas (BrokerServer with the Redis store) on one real
// redis-server, over real gRPC sockets: what a watcher and a publisher see.
#include <gtest/gtest.h>

#include <thread>

#include "broker_client.h"
#include "in_process_broker.h"
#include "process.h"
#include "redis_server.h"
#include "turnbroker/broker/server.h"
#include "turnbroker/common/channel.h"
#include "watch_client.h"

namespace turnbroker::broker {
namespace {

using testing::BrokerClient;
using testing::WatchClient;
using Marker = v1::WatchResponse;

struct Replica {
  std::unique_ptr<BrokerServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<BrokerClient> client;
};

class RedisReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* r : {&a_, &b_}) Start(*r);
  }
  void Start(Replica& r) {
    BrokerOptions o;
    o.use_redis = true;
    o.redis.target.url = redis_.redis_url();
    testing::InProcessBroker b;
    ASSERT_NO_FATAL_FAILURE(testing::StartInProcessBroker(o, &b));
    r.server = std::move(b.server);
    r.channel = b.channel;
    r.client = std::make_unique<BrokerClient>(r.channel);
  }
  static v1::Credential Cred(const std::string& username) {
    return testing::TestCredential(username, "ims.example.org", 600'000);
  }
  static std::vector<std::string> PutNames(const WatchClient::Responses& rs) {
    std::vector<std::string> out;
    for (const auto& e : WatchClient::Events(rs))
      if (e.has_put()) out.push_back(e.put().username());
    return out;
  }

  turnbroker::testing::TempDir dir_;
  turnbroker::testing::RedisServer redis_{dir_};
  Replica a_, b_;
};

TEST_F(RedisReplicasTest, AWatcherOfOneReplicaSeesPublishesOnTheOther) {
  WatchClient w(b_.channel, v1::WatchRequest());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  v1::PublishResponse ack;
  ASSERT_TRUE(a_.client->Publish({Cred("alice")}, &ack).ok());
  ASSERT_TRUE(
      w.WaitFor([](auto& rs) { return PutNames(rs) == std::vector<std::string>{"alice"}; }));
  EXPECT_EQ(b_.client->Status().epoch(), ack.epoch());
  EXPECT_EQ(b_.client->Status().store().rfind("redis:", 0), 0u) << b_.client->Status().store();
}

TEST_F(RedisReplicasTest, AWatcherResumesOnAnotherReplicaWithoutASnapshot) {
  v1::PublishResponse ack;
  ASSERT_TRUE(a_.client->Publish({Cred("u1")}, &ack).ok());
  ASSERT_TRUE(a_.client->Publish({Cred("u2")}).ok());
  // Replica b tails the log: once it has u2 (under load it may lag a few
  // ms; a resume point ahead of a replica's head is REVISION_AHEAD there).
  ASSERT_TRUE(::turnbroker::testing::WaitUntil(
      [&] { return b_.client->Status().revision() >= ack.revision() + 1; },
      std::chrono::seconds(10)));
  // Seen up to u1 on replica a; resumed on b.
  v1::WatchRequest resume;
  resume.set_resume_revision(ack.revision());
  resume.set_resume_epoch(ack.epoch());
  WatchClient w(b_.channel, resume);
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  auto rs = w.responses();
  EXPECT_EQ(WatchClient::Count(rs, Marker::SNAPSHOT_BEGIN), 0);
  EXPECT_EQ(PutNames(rs), std::vector<std::string>{"u2"});
}

TEST_F(RedisReplicasTest, WatchersAreToldToResyncWhenRedisLosesTheDataset) {
  ASSERT_TRUE(a_.client->Publish({Cred("carol")}).ok());
  WatchClient w(b_.channel, v1::WatchRequest());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  std::string epoch = b_.client->Status().epoch();
  redis_.Kill();
  redis_.Start();
  ASSERT_TRUE(w.WaitForEnd(std::chrono::seconds(10)));
  EXPECT_EQ(w.finished()->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(b_.client->Status().epoch(), epoch);
  // Replica a notices on its own (its log thread): until then it still
  // serves the old epoch, and a resume there is a replay.
  ASSERT_TRUE(::turnbroker::testing::WaitUntil([&] { return a_.client->Status().epoch() != epoch; },
                                               std::chrono::seconds(5)));
  // Resuming with the old epoch gives a snapshot of the new one.
  v1::WatchRequest resume;
  resume.set_resume_revision(1);
  resume.set_resume_epoch(epoch);
  WatchClient again(a_.channel, resume);
  ASSERT_TRUE(again.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  EXPECT_EQ(again.responses().front().snapshot_reason(), v1::WatchResponse::EPOCH_CHANGED);
}

TEST_F(RedisReplicasTest, AClientGivenEveryReplicaFailsOverWhenItsReplicaStops) {
  auto ch = MakeChannel(ChannelOptions{"127.0.0.1:" + std::to_string(a_.server->port()) +
                                       ",127.0.0.1:" + std::to_string(b_.server->port())});
  ASSERT_TRUE(ch.ok()) << ch.status();
  BrokerClient client(*ch);
  ASSERT_TRUE(client.Publish({Cred("kim")}).ok());
  a_.server->Shutdown();
  bool published = false;
  for (int i = 0; i < 50 && !published; ++i) {
    published = client.Publish({Cred("lee")}).ok();
    if (!published) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(published);
  EXPECT_EQ(b_.client->Status().live_credentials(), 2u);
}

TEST_F(RedisReplicasTest, RedisDownRefusesWritesQuicklyAndKeepsWatchersAndReadsGoing) {
  ASSERT_TRUE(a_.client->Publish({Cred("mia")}).ok());
  WatchClient w(b_.channel, v1::WatchRequest());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  redis_.Kill();
  auto start = std::chrono::steady_clock::now();
  grpc::Status refused = a_.client->Publish({Cred("noah")});
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1'500));
  std::this_thread::sleep_for(std::chrono::milliseconds(1'500));
  EXPECT_FALSE(w.finished().has_value());                 // the stream stays open
  EXPECT_EQ(b_.client->Status().live_credentials(), 1u);  // reads from memory
}

}  // namespace
}  // namespace turnbroker::broker
