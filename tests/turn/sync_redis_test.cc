// turn-credential-sync against a real redis-server and a real turn-broker:
// publish, revoke, restart and resume, gaps, Redis and broker failures, an
// epoch change, bad records from the stream, two syncs on one Redis.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "broker_process.h"
#include "redis_server.h"
#include "sync_fixture.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;
using turnbroker::testing::BrokerProcess;
using turnbroker::testing::RedisServer;
using turnbroker::testing::TempDir;
using turnbroker::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kRealm = "example.org";

std::string Key(const std::string& user, const std::string& realm = kRealm) {
  return UserKeyName(realm, user);
}

std::string Hex(const std::string& user, const std::string& realm = kRealm) {
  return HexLower(KeyOf(user, realm, "pw-" + user));
}

SyncOptions Options(const std::string& name = "node-1") {
  SyncOptions o;
  o.name = name;
  o.realms = {kRealm};
  return o;
}

class SyncRedisTest : public ::testing::Test {
 protected:
  // A broker that holds its connections but sends nothing (SIGSTOP: the
  // kernel still ACKs its TCP segments) is noticed within `within`, and the
  // sync resumes once it runs again.
  void ExpectAFrozenBrokerNoticed(SyncRunnerTiming timing, std::chrono::seconds within) {
    BrokerProcess broker(dir_, {"--ephemeral"});
    BrokerClient client(broker.address());
    SyncRunner sync(broker.address(), redis_.redis_url(), Options(), timing);
    uint64_t r = client.Publish(kRealm, "f1", 60'000);
    ASSERT_TRUE(sync.WaitForRevision(r));
    broker.process().Signal(SIGSTOP);
    EXPECT_TRUE(WaitUntil([&] { return !sync.metrics().synced.load(); }, within));
    broker.process().Signal(SIGCONT);
    r = client.Publish(kRealm, "f2", 60'000);
    ASSERT_TRUE(sync.WaitForRevision(r));
    EXPECT_GE(sync.metrics().stream_reconnects->value(), 1u);
    EXPECT_EQ(redis_.Get(Key("f2")), Hex("f2"));
  }
  TempDir dir_;
  RedisServer redis_{dir_};
};

TEST_F(SyncRedisTest, PublishedKeyHasTheHa1AndTheAbsoluteExpiryAndRevokeDeletesIt) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  BrokerClient client(broker.address());
  SyncRunner sync(broker.address(), redis_.redis_url(), Options());
  int64_t before = Clock::System()->NowMs();
  uint64_t r = client.Publish(kRealm, "alice", 60'000, "sip:alice@example.org", "pcscf-1");
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_EQ(redis_.Get(Key("alice")), Hex("alice"));
  int64_t expiry = redis_.ExpiryMs(Key("alice"));
  EXPECT_GE(expiry, before + 60'000);
  EXPECT_LE(expiry, Clock::System()->NowMs() + 60'000);

  r = client.Revoke(ByUsername("alice", kRealm));
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_FALSE(redis_.Get(Key("alice")));
  EXPECT_EQ(redis_.Command({"HGET", "turnbroker/sync/node-1/position", "revision"}).str,
            std::to_string(r));
}

TEST_F(SyncRedisTest, RestartResumesFromTheStoredRevisionWithoutASnapshot) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  BrokerClient client(broker.address());
  auto first = std::make_unique<SyncRunner>(broker.address(), redis_.redis_url(), Options());
  uint64_t r = client.Publish(kRealm, "u1", 60'000);
  ASSERT_TRUE(first->WaitForRevision(r));
  EXPECT_EQ(first->metrics().snapshots->value(), 1u);  // the first start
  first.reset();

  client.Publish(kRealm, "u2", 60'000);
  uint64_t revoked = client.Revoke(ByUsername("u1", kRealm));
  SyncRunner second(broker.address(), redis_.redis_url(), Options());
  ASSERT_TRUE(second.WaitForRevision(revoked));
  EXPECT_EQ(second.metrics().snapshots->value(), 0u);
  EXPECT_EQ(second.metrics().puts_applied->value(), 1u);  // u2 only: no replay
  EXPECT_FALSE(redis_.Get(Key("u1")));
  EXPECT_EQ(redis_.Get(Key("u2")), Hex("u2"));
}

TEST_F(SyncRedisTest, GapLeadsToASnapshotThatRemovesRevokedKeysAndKeepsForeignOnes) {
  BrokerProcess broker(dir_, {"--ephemeral", "--history-max-events", "3"});
  BrokerClient client(broker.address());
  redis_.Set(Key("static-user"), "0123456789abcdef0123456789abcdef");
  redis_.Set("unrelated", "x");
  auto first = std::make_unique<SyncRunner>(broker.address(), redis_.redis_url(), Options());
  client.Publish(kRealm, "keep", 60'000);
  uint64_t r = client.Publish(kRealm, "gone", 60'000);
  ASSERT_TRUE(first->WaitForRevision(r));
  first.reset();

  // While the sync is away: a revocation, then more events than the
  // broker retains.
  client.Revoke(ByUsername("gone", kRealm));
  for (int i = 0; i < 5; ++i) r = client.Publish(kRealm, "new" + std::to_string(i), 60'000);
  SyncRunner second(broker.address(), redis_.redis_url(), Options());
  ASSERT_TRUE(second.WaitForRevision(r));
  EXPECT_EQ(second.metrics().snapshots->value(), 1u);
  // The snapshot carries the revoked username, which deletes the key before
  // SYNCED; reconciliation would have deleted it as unseen otherwise.
  EXPECT_EQ(second.metrics().keys_deleted_revoked->value(), 1u);
  EXPECT_EQ(second.metrics().keys_deleted_reconciled->value(), 0u);
  EXPECT_FALSE(redis_.Get(Key("gone")));
  EXPECT_EQ(redis_.Get(Key("keep")), Hex("keep"));
  EXPECT_EQ(redis_.Get(Key("new4")), Hex("new4"));
  EXPECT_EQ(redis_.Get(Key("static-user")), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(redis_.ExpiryMs(Key("static-user")), -1);
  EXPECT_EQ(redis_.Get("unrelated"), "x");
}

TEST_F(SyncRedisTest, RedisKilledAndRestartedMidStreamLosesNoEvent) {
  // Redis with an fsync'ed append-only file, so that a SIGKILL keeps what
  // it acknowledged, as a production coturn Redis would.
  TempDir dir;
  RedisServer redis(dir, {"--appendonly", "yes", "--appendfsync", "always"});
  BrokerProcess broker(dir, {"--ephemeral"});
  BrokerClient client(broker.address());
  SyncRunner sync(broker.address(), redis.redis_url(), Options());
  uint64_t r = 0;
  for (int i = 0; i < 5; ++i) r = client.Publish(kRealm, "a" + std::to_string(i), 60'000);
  ASSERT_TRUE(sync.WaitForRevision(r));

  redis.Kill();
  for (int i = 0; i < 5; ++i) r = client.Publish(kRealm, "b" + std::to_string(i), 60'000);
  uint64_t revoked = client.Revoke(ByUsername("a0", kRealm));
  ASSERT_TRUE(WaitUntil([&] { return sync.metrics().redis_errors->value() > 0; }, 5s));
  EXPECT_FALSE(sync.metrics().Healthy(Clock::System()->NowMs(), 30'000));
  EXPECT_LT(sync.sync().position().revision, r);  // never past what Redis has

  redis.Start();
  ASSERT_TRUE(sync.WaitForRevision(revoked));
  EXPECT_TRUE(sync.metrics().Healthy(Clock::System()->NowMs(), 30'000));
  EXPECT_EQ(sync.metrics().snapshots->value(), 1u);  // resumed, not resynced
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(redis.Get(Key("b" + std::to_string(i))), Hex("b" + std::to_string(i))) << i;
  }
  EXPECT_FALSE(redis.Get(Key("a0")));
  EXPECT_TRUE(redis.Get(Key("a1")));
}

TEST_F(SyncRedisTest, RedisRestartedEmptyIsRefilledBySnapshot) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  BrokerClient client(broker.address());
  SyncRunner sync(broker.address(), redis_.redis_url(), Options());
  uint64_t r = client.Publish(kRealm, "x1", 60'000);
  ASSERT_TRUE(sync.WaitForRevision(r));
  redis_.Kill();
  r = client.Publish(kRealm, "x2", 60'000);
  ASSERT_TRUE(WaitUntil([&] { return sync.metrics().redis_errors->value() > 0; }, 5s));
  redis_.Start();  // no persistence: empty, no position
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_EQ(redis_.Get(Key("x1")), Hex("x1"));
  EXPECT_EQ(redis_.Get(Key("x2")), Hex("x2"));
}

TEST_F(SyncRedisTest, NewBrokerEpochKeepsValidKeysAndLaterRevocationsStillRemoveThem) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  BrokerClient client(broker.address());
  SyncRunner sync(broker.address(), redis_.redis_url(), Options());
  client.Publish(kRealm, "sub-a", 60'000, "sip:a@example.org", "pcscf-1");
  client.Publish(kRealm, "sub-b", 60'000, "sip:b@example.org", "pcscf-1");
  client.Publish(kRealm, "iss-c", 60'000, "sip:c@example.org", "pcscf-2");
  uint64_t r = client.Publish(kRealm, "user-d", 60'000, "sip:d@example.org", "pcscf-1");
  ASSERT_TRUE(sync.WaitForRevision(r));
  std::string old_epoch = client.Epoch();

  broker.Restart();  // --ephemeral: an empty store, a new epoch
  ASSERT_NE(client.Epoch(), old_epoch);
  r = client.Publish(kRealm, "fresh", 60'000, "sip:a@example.org", "pcscf-1");
  ASSERT_TRUE(sync.WaitForRevision(r));
  ASSERT_EQ(sync.sync().position().epoch, client.Epoch());
  EXPECT_EQ(sync.sync().legacy_size(), 4u);
  for (const char* u : {"sub-a", "sub-b", "iss-c", "user-d", "fresh"}) {
    EXPECT_TRUE(redis_.Get(Key(u))) << u;
  }

  // Revocations the new broker records by selector reach the old keys.
  r = client.Revoke(BySubscriber("sip:a@example.org"));
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_FALSE(redis_.Get(Key("sub-a")));
  EXPECT_FALSE(redis_.Get(Key("fresh")));
  r = client.Revoke(ByIssuer("pcscf-2"));
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_FALSE(redis_.Get(Key("iss-c")));
  r = client.Revoke(ByUsername("user-d"));
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_FALSE(redis_.Get(Key("user-d")));
  EXPECT_TRUE(redis_.Get(Key("sub-b")));
  EXPECT_EQ(sync.sync().legacy_size(), 1u);
}

TEST_F(SyncRedisTest, TwoSyncsSharingOneRedisAgree) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  BrokerClient client(broker.address());
  SyncRunner one(broker.address(), redis_.redis_url(), Options("node-1"));
  SyncRunner two(broker.address(), redis_.redis_url(), Options("node-2"));
  uint64_t r = client.Publish(kRealm, "shared", 60'000);
  r = client.Publish(kRealm, "both", 60'000);
  ASSERT_TRUE(one.WaitForRevision(r));
  ASSERT_TRUE(two.WaitForRevision(r));
  EXPECT_EQ(redis_.Get(Key("shared")), Hex("shared"));
  r = client.Revoke(ByUsername("shared", kRealm));
  ASSERT_TRUE(one.WaitForRevision(r));
  ASSERT_TRUE(two.WaitForRevision(r));
  EXPECT_FALSE(redis_.Get(Key("shared")));
  EXPECT_TRUE(redis_.Get(Key("both")));
  EXPECT_EQ(redis_.Keys("turnbroker/sync/*/position"),
            (std::vector<std::string>{"turnbroker/sync/node-1/position",
                                      "turnbroker/sync/node-2/position"}));
}

TEST_F(SyncRedisTest, BadRecordsFromTheStreamAreRefusedAndTheSyncGoesOn) {
  const int64_t exp = Clock::System()->NowMs() + 60'000;
  v1::Credential malformed = Cred(kRealm, "short-key", exp);
  malformed.set_key("0123");
  v1::Credential bad_name = Cred(kRealm, "x", exp);
  bad_name.set_username("has space/and slash");
  ScriptedBroker service({
      SnapshotBegin("e1", v1::WatchResponse::NO_RESUME_POINT),
      Events("e1", 0,
             {Put(1, Cred("not-served.org", "other", exp)), Put(2, malformed), Put(3, bad_name),
              Put(4, Cred(kRealm, "good", exp))}),
      Synced("e1", 4),
      Events("e1", 5, {Put(5, Cred(kRealm, "good-too", exp))}),
  });
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  ::testing::internal::CaptureStderr();
  SyncRunner sync("127.0.0.1:" + std::to_string(port), redis_.redis_url(), Options());
  bool reached = sync.WaitForRevision(5);
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(reached);
  EXPECT_EQ(sync.metrics().events_refused->value(), 3u);
  EXPECT_EQ(redis_.Get(Key("good")), Hex("good"));
  EXPECT_EQ(redis_.Get(Key("good-too")), Hex("good-too"));
  EXPECT_FALSE(redis_.Get(Key("other", "not-served.org")));
  EXPECT_FALSE(redis_.Get(Key("short-key")));
  EXPECT_NE(log.find("record refused"), std::string::npos);
  EXPECT_NE(log.find("realm: not served"), std::string::npos);
  EXPECT_NE(log.find("key: "), std::string::npos);
  EXPECT_NE(log.find("username: "), std::string::npos);
  sync.Stop();
  server->Shutdown(std::chrono::system_clock::now());
}

TEST_F(SyncRedisTest, BrokerRestartIsResumedByRevision) {
  BrokerProcess broker(dir_, {"--data-dir", dir_.File("broker-data"), "--no-fsync"});
  BrokerClient client(broker.address());
  SyncRunner sync(broker.address(), redis_.redis_url(), Options());
  uint64_t r = client.Publish(kRealm, "before", 60'000);
  ASSERT_TRUE(sync.WaitForRevision(r));
  broker.Restart();  // the durable store: the same epoch
  // The first call may meet the closing connection ("Socket closed"),
  // which is not what this test is about.
  r = client.PublishOnceServing(kRealm, "after", 60'000);
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_GE(sync.metrics().stream_reconnects->value(), 1u);
  EXPECT_EQ(sync.metrics().snapshots->value(), 1u);  // only the first start
  EXPECT_EQ(redis_.Get(Key("after")), Hex("after"));
}

TEST_F(SyncRedisTest, AFrozenBrokerIsDetectedAndTheStreamReopened) {
  // Not even PROGRESS arrives: the idle watchdog (1.5 s) drops the stream.
  ExpectAFrozenBrokerNoticed(SyncRunnerTiming{}, 5s);
}

TEST_F(SyncRedisTest, KeepaliveDetectsAFrozenBrokerOnAnIdleStream) {
  // The idle watchdog out of the way (10 min): only HTTP/2 keepalive (a ping
  // every second, 1 s to answer) can tell the broker is gone.
  ExpectAFrozenBrokerNoticed(
      SyncRunnerTiming{
          .idle_timeout_ms = 600'000, .keepalive_time_ms = 1'000, .keepalive_timeout_ms = 1'000},
      8s);
}

TEST_F(SyncRedisTest, UnreachableBrokerIsRetriedUntilItComes) {
  TempDir dir;
  int port = turnbroker::testing::FreePort();
  SyncRunner sync("127.0.0.1:" + std::to_string(port), redis_.redis_url(), Options());
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(sync.metrics().synced.load());
  BrokerProcess broker(dir, {"--ephemeral"}, port);
  BrokerClient client(broker.address());
  uint64_t r = client.Publish(kRealm, "late", 60'000);
  ASSERT_TRUE(sync.WaitForRevision(r));
  EXPECT_EQ(redis_.Get(Key("late")), Hex("late"));
}

}  // namespace
}  // namespace turnbroker::turn
