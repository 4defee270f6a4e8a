// Approach 1 on the Redis store: broker replicas (BrokerServer, --store=redis)
// on one real redis-server, over real gRPC sockets. A secret written through
// one replica is served by every other, a new replica loads it, a reload for
// a new epoch keeps it, and every replica sees every sync's Acknowledge
// (docs/approach1.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "in_process_broker.h"
#include "process.h"
#include "redis_server.h"
#include "turnbroker/broker/server.h"
#include "watch_client.h"

namespace turnbroker::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::WatchClient;

constexpr char kRealm[] = "ims.example.org";
const std::string kBytesA = "AAAAaaaa-secret-number-one-0123456789_xyz";
const std::string kBytesB = "BBBBbbbb-secret-number-two-0123456789_xyz";

struct Replica {
  std::unique_ptr<BrokerServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::CredentialBroker::Stub> stub;
};

class BrokerSecretRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* r : {&a_, &b_}) Start(*r);
  }
  void Start(Replica& r) {
    BrokerOptions o;
    o.use_redis = true;
    o.redis.target.url = redis_.redis_url();
    o.store.secrets.stage_grace_ms = 3'600'000;
    turnbroker::testing::InProcessBroker b;
    ASSERT_NO_FATAL_FAILURE(turnbroker::testing::StartInProcessBroker(o, &b));
    r.server = std::move(b.server);
    r.channel = b.channel;
    r.stub = v1::CredentialBroker::NewStub(r.channel);
  }
  static void Deadline(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }
  // Plaintext peers hold every role (development mode).
  static grpc::Status Add(Replica& r, const std::string& id, const std::string& bytes,
                          v1::SecretResponse* out = nullptr) {
    v1::AddSecretRequest req;
    req.mutable_secret()->set_realm(kRealm);
    req.mutable_secret()->set_id(id);
    req.mutable_secret()->set_secret(bytes);
    v1::SecretResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    grpc::Status s = r.stub->AddSecret(&ctx, req, &resp);
    if (out) *out = resp;
    return s;
  }
  static grpc::Status Activate(Replica& r, const std::string& id) {
    v1::ActivateSecretRequest req;
    req.mutable_ref()->set_realm(kRealm);
    req.mutable_ref()->set_id(id);
    v1::SecretResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return r.stub->ActivateSecret(&ctx, req, &resp);
  }
  static grpc::Status Retire(Replica& r, const std::string& id) {
    v1::RetireSecretRequest req;
    req.mutable_ref()->set_realm(kRealm);
    req.mutable_ref()->set_id(id);
    req.set_force(true);
    v1::SecretResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return r.stub->RetireSecret(&ctx, req, &resp);
  }
  static grpc::Status Acknowledge(Replica& r, const std::string& name, uint64_t revision) {
    v1::AcknowledgeRequest req;
    req.set_watcher_name(name);
    req.set_epoch(r.server->store().state().epoch());
    req.set_revision(revision);
    v1::AcknowledgeResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return r.stub->Acknowledge(&ctx, req, &resp);
  }
  static v1::ListSecretsResponse List(Replica& r) {
    v1::ListSecretsResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    EXPECT_TRUE(r.stub->ListSecrets(&ctx, {}, &resp).ok());
    return resp;
  }
  static std::unique_ptr<WatchClient> WatchSecrets(Replica& r) {
    v1::WatchRequest req;
    req.add_kinds(v1::RECORD_KIND_SHARED_SECRET);
    return std::make_unique<WatchClient>(r.channel, req);
  }
  // The secrets a watcher holds at its last SYNCED, id -> secret.
  static std::map<std::string, v1::SharedSecret> Synced(WatchClient& w) {
    EXPECT_TRUE(w.WaitFor([](const WatchClient::Responses& rs) {
      return WatchClient::Count(rs, v1::WatchResponse::SYNCED) >= 1;
    }));
    std::map<std::string, v1::SharedSecret> out;
    for (const v1::Event& e : WatchClient::Events(w.responses())) {
      if (e.has_secret()) out[e.secret().id()] = e.secret();
      if (e.has_secret_retired()) out.erase(e.secret_retired().id());
    }
    return out;
  }

  turnbroker::testing::TempDir dir_;
  turnbroker::testing::RedisServer redis_{dir_};
  Replica a_, b_;
};

TEST_F(BrokerSecretRedisTest, ASecretWrittenThroughOneReplicaIsServedByEvery) {
  auto watch_b = WatchSecrets(b_);
  ASSERT_TRUE(Add(a_, "a", kBytesA).ok());
  ASSERT_TRUE(Activate(a_, "a").ok());
  ASSERT_TRUE(watch_b->WaitFor([](const WatchClient::Responses& rs) {
    for (const v1::Event& e : WatchClient::Events(rs))
      if (e.has_secret() && e.secret().state() == v1::SECRET_STATE_ACTIVE) return true;
    return false;
  }));
  EXPECT_EQ(Synced(*watch_b)["a"].secret(), kBytesA);

  // Through the other replica: the rotation goes on, the first one hears.
  auto watch_a = WatchSecrets(a_);
  // Its snapshot first: a stream that reaches the broker only after the
  // retirement gets a snapshot without "a", not the retirement event.
  ASSERT_EQ(Synced(*watch_a).size(), 1u);
  ASSERT_TRUE(Add(b_, "b", kBytesB).ok());
  ASSERT_TRUE(Activate(b_, "b").ok());
  ASSERT_TRUE(Retire(b_, "a").ok());
  ASSERT_TRUE(watch_a->WaitFor([](const WatchClient::Responses& rs) {
    for (const v1::Event& e : WatchClient::Events(rs))
      if (e.has_secret_retired() && e.secret_retired().id() == "a") return true;
    return false;
  }));
  auto held = Synced(*watch_a);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held["b"].state(), v1::SECRET_STATE_ACTIVE);

  // In Redis: one key per known secret, none for the retired one.
  EXPECT_THAT(redis_.Keys("{turnbroker}:s:*"), ElementsAre("{turnbroker}:s:ims.example.org/b"));

  // A replica started now loads it, with the revision it was staged at.
  Replica c;
  Start(c);
  v1::ListSecretsResponse list = List(c);
  ASSERT_EQ(list.secrets_size(), 1);
  EXPECT_EQ(list.secrets(0).secret().id(), "b");
  EXPECT_EQ(list.secrets(0).staged_revision(), 3u);
  EXPECT_EQ(list.secrets(0).secret().state(), v1::SECRET_STATE_ACTIVE);
  auto watch_c = WatchSecrets(c);
  EXPECT_EQ(Synced(*watch_c)["b"].secret(), kBytesB);
}

TEST_F(BrokerSecretRedisTest, AReloadForANewEpochKeepsTheSecrets) {
  ASSERT_TRUE(Add(a_, "a", kBytesA).ok());
  ASSERT_TRUE(Activate(a_, "a").ok());
  ASSERT_TRUE(Add(a_, "b", kBytesB).ok());
  auto watch_b = WatchSecrets(b_);
  ASSERT_EQ(Synced(*watch_b).size(), 2u);
  const std::string epoch = b_.server->store().state().epoch();
  // The dataset is given another epoch (as after a failover that lost
  // writes): every replica reloads its state from Redis.
  redis_.Set("{turnbroker}:epoch", "0123456789abcdef0123456789abcdef");
  // The moment the new epoch shows, the state holds the whole dataset: the
  // log's replay is part of the reload, so no Watch can begin on the keys
  // alone (whose changes still in the log were set aside for the replay).
  const CredentialState& state = b_.server->store().state();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (state.epoch() == epoch && std::chrono::steady_clock::now() < until) {
  }
  ASSERT_NE(state.epoch(), epoch);
  EXPECT_EQ(state.Secrets(kRealm).size(), 2u);
  ASSERT_TRUE(watch_b->WaitForEnd(std::chrono::seconds(10)));
  auto again = WatchSecrets(b_);
  auto held = Synced(*again);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held["a"].state(), v1::SECRET_STATE_ACTIVE);
  EXPECT_EQ(held["a"].secret(), kBytesA);
  EXPECT_EQ(held["b"].state(), v1::SECRET_STATE_STAGED);
  EXPECT_EQ(List(b_).secrets(1).staged_revision(), 3u);
}

TEST_F(BrokerSecretRedisTest, EveryReplicaSeesEverySyncsAcknowledgement) {
  ASSERT_TRUE(Acknowledge(a_, "turn-1", 0).ok());
  v1::SecretResponse added;
  ASSERT_TRUE(Add(b_, "a", kBytesA, &added).ok());
  // b plans the activation against the reports in Redis, a's included.
  grpc::Status s = Activate(b_, "a");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("not acknowledged it yet: turn-1"));
  ASSERT_TRUE(Acknowledge(a_, "turn-1", added.revision()).ok());
  // ListSecrets on b shows it once b has read the hash (every second).
  ASSERT_TRUE(turnbroker::testing::WaitUntil(
      [&] {
        auto list = List(b_);
        return list.secrets_size() == 1 && list.secrets(0).syncs_acknowledged_size() == 1;
      },
      std::chrono::seconds(5)));
  EXPECT_TRUE(Activate(b_, "a").ok());
  EXPECT_EQ(redis_.Command({"HLEN", "{turnbroker}:syncs"}).integer, 1);
}

}  // namespace
}  // namespace turnbroker::broker
