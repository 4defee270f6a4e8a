// turn-credential-sync in --auth-mode=shared-secret against a real
// redis-server (frames fed in process): coturn's secret set after adds,
// retirements, a reconciling snapshot, a restart of the sync, a secret's
// expiry on the timer, and a Redis restarted empty; and over gRPC against a
// scripted broker: what it asks for in Watch and reports in Acknowledge, and
// bad or hostile secrets refused without their bytes in the log.
#include <gtest/gtest.h>

#include <algorithm>

#include "frames.h"
#include "redis_server.h"
#include "sync_fixture.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/turn/sync.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;
using turnbroker::testing::RedisServer;
using turnbroker::testing::TempDir;
using turnbroker::testing::WaitUntil;
using WR = v1::WatchResponse;
using namespace std::chrono_literals;

const std::string kRealm = "example.org";
const std::string kEpoch = "epoch-1";
const std::string kSecretA = "A-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
const std::string kSecretB = "B-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";

class SecretRedisTest : public ::testing::Test {
 protected:
  SecretRedisTest() { Make(); }

  void Make() {
    sync_.reset();
    RedisOptions ro;
    ro.url = redis_.redis_url();
    ro.connect_timeout_ms = 500;
    ro.io_timeout_ms = 2'000;
    client_ = std::make_unique<HiredisClient>(ro);
    SyncOptions o;
    o.name = "node-1";
    o.realms = {kRealm};
    o.auth_mode = AuthMode::kSharedSecret;
    sync_ = std::make_unique<CredentialSync>(o, client_.get(), Clock::System(), &metrics_);
    ASSERT_TRUE(sync_->Prepare().ok());
  }

  void Apply(const WR& frame) { ASSERT_TRUE(sync_->OnFrame(frame).ok()); }

  std::vector<std::string> Set() {
    RedisReply r = redis_.Command({"SMEMBERS", SecretSetName(kRealm)});
    std::vector<std::string> out;
    for (const RedisReply& m : r.elements) out.push_back(m.str);
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir dir_;
  RedisServer redis_{dir_};
  MetricsRegistry registry_;
  SyncMetrics metrics_{&registry_, Clock::System()};
  std::unique_ptr<HiredisClient> client_;
  std::unique_ptr<CredentialSync> sync_;
};

TEST_F(SecretRedisTest, TheSetFollowsAddsRetirementsSnapshotsAndRestarts) {
  Apply(SnapshotBegin(kEpoch, WR::NO_RESUME_POINT));
  Apply(Synced(kEpoch, 0));
  Apply(Events(kEpoch, 2,
               {SecretEvent(1, kRealm, "a", kSecretA), SecretEvent(2, kRealm, "b", kSecretB)}));
  EXPECT_EQ(Set(), (std::vector<std::string>{kSecretA, kSecretB}));

  Make();  // the sync restarts: the retirement needs the bytes it stored
  EXPECT_EQ(sync_->position(), (Position{kEpoch, 2}));
  Apply(Events(kEpoch, 3, {SecretRetired(3, kRealm, "a")}));
  EXPECT_EQ(Set(), (std::vector<std::string>{kSecretB}));

  // Pasted by hand: not a secret of the broker, gone at the next snapshot.
  redis_.Command({"SADD", SecretSetName(kRealm), "pasted-by-hand-0123456789abcdef"});
  Apply(SnapshotBegin(kEpoch, WR::HISTORY_COMPACTED));
  Apply(Events(kEpoch, 0, {SecretEvent(2, kRealm, "b", kSecretB)}));
  Apply(Synced(kEpoch, 4));
  EXPECT_EQ(Set(), (std::vector<std::string>{kSecretB}));
  EXPECT_EQ(redis_.Command({"HGET", "turnbroker/sync/node-1/secret-position", "revision"}).str,
            "4");
}

TEST_F(SecretRedisTest, TheTimerRemovesASecretAtItsExpiry) {
  Apply(SnapshotBegin(kEpoch, WR::NO_RESUME_POINT));
  Apply(Synced(kEpoch, 0));
  const int64_t expiry = Clock::System()->NowMs() + 1'000;
  Apply(Events(kEpoch, 1, {SecretEvent(1, kRealm, "brief", kSecretA, expiry)}));
  EXPECT_EQ(Set().size(), 1u);
  SecretExpiryTimer timer(sync_.get(), Clock::System(), 50);
  timer.Start();
  ASSERT_TRUE(WaitUntil([&] { return Set().empty(); }, 5s));
  EXPECT_GE(Clock::System()->NowMs(), expiry);
  // Counted once the timer's write returned, a moment after the set shows it.
  EXPECT_TRUE(WaitUntil([&] { return metrics_.secrets_removed_expired->value() == 1u; }, 5s))
      << metrics_.secrets_removed_expired->value();
}

TEST_F(SecretRedisTest, ARedisRestartedEmptyIsRefilledFromASnapshot) {
  Apply(SnapshotBegin(kEpoch, WR::NO_RESUME_POINT));
  Apply(Events(kEpoch, 0, {SecretEvent(1, kRealm, "a", kSecretA)}));
  Apply(Synced(kEpoch, 1));
  redis_.Kill();
  redis_.Start();  // no persistence: empty
  // The next PROGRESS marker finds the position gone.
  EXPECT_FALSE(sync_->OnFrame(Frame(kEpoch, 1, WR::PROGRESS)).ok());
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok()) << from.status();
  EXPECT_EQ(from->revision, 0u);
  Apply(SnapshotBegin(kEpoch, WR::NO_RESUME_POINT));
  Apply(Events(kEpoch, 0, {SecretEvent(1, kRealm, "a", kSecretA)}));
  Apply(Synced(kEpoch, 1));
  EXPECT_EQ(Set(), (std::vector<std::string>{kSecretA}));
}

TEST_F(SecretRedisTest, WatchesSecretsAcknowledgesAndRefusesBadSecretsWithoutLoggingThem) {
  const std::string hostile = "bad\nline injected " + std::string(30, 'x');  // not printable
  const std::string too_short = "short-but-secret";
  ScriptedBroker service({
      SnapshotBegin("e1", WR::NO_RESUME_POINT),
      Events("e1", 0,
             {SecretEvent(1, kRealm, "good", kSecretA), SecretEvent(2, kRealm, "short", too_short),
              SecretEvent(3, kRealm, "hostile", hostile),
              SecretEvent(4, "not-served.org", "other", kSecretB)}),
      Synced("e1", 4),
      Frame("e1", 6, WR::PROGRESS),
  });
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  SyncOptions o;
  o.name = "node-7";
  o.realms = {kRealm};
  o.farm = "farm-x";
  o.auth_mode = AuthMode::kSharedSecret;
  ::testing::internal::CaptureStderr();
  SyncRunner sync("127.0.0.1:" + std::to_string(port), redis_.redis_url(), o);
  bool reached = WaitUntil([&] { return service.acknowledgements().size() >= 2; }, 5s);
  sync.Stop();
  std::string log = ::testing::internal::GetCapturedStderr();
  server->Shutdown(std::chrono::system_clock::now());
  ASSERT_TRUE(reached) << log;

  ASSERT_FALSE(service.watches().empty());
  const v1::WatchRequest watch = service.watches().front();
  ASSERT_EQ(watch.kinds_size(), 1);
  EXPECT_EQ(watch.kinds(0), v1::RECORD_KIND_SHARED_SECRET);
  EXPECT_EQ(watch.watcher_name(), "node-7");
  EXPECT_EQ(watch.farm(), "farm-x");
  // After SYNCED, then at the PROGRESS marker.
  auto acks = service.acknowledgements();
  EXPECT_EQ(acks[0].revision(), 4u);
  EXPECT_EQ(acks[1].revision(), 6u);
  for (const v1::AcknowledgeRequest& a : acks) {
    EXPECT_EQ(a.watcher_name(), "node-7");
    EXPECT_EQ(a.epoch(), "e1");
    EXPECT_EQ(a.farm(), "farm-x");
    EXPECT_EQ(std::vector<std::string>(a.realms().begin(), a.realms().end()),
              std::vector<std::string>{kRealm});
  }
  EXPECT_EQ(Set(), std::vector<std::string>{kSecretA});
  EXPECT_EQ(sync.metrics().events_refused->value(), 3u);
  EXPECT_NE(log.find("secret refused"), std::string::npos);
  EXPECT_NE(log.find("id=hostile"), std::string::npos);
  for (const std::string& bytes : {kSecretA, kSecretB, too_short, hostile}) {
    EXPECT_EQ(log.find(bytes), std::string::npos) << "secret bytes in the log";
  }
  EXPECT_EQ(sync.RenderMetrics().find(kSecretA), std::string::npos);
}

}  // namespace
}  // namespace turnbroker::turn
