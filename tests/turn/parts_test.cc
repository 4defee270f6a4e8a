// The small parts of the TURN side: key names, the Redis URL, backoff, the
// legacy index, parsing coturn's CLI output, and the session canceller.
#include <gtest/gtest.h>

#include "fake_redis.h"
#include "frames.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/turn/backoff.h"
#include "turnbroker/turn/coturn_admin.h"
#include "turnbroker/turn/legacy_index.h"
#include "turnbroker/turn/schema.h"
#include "turnbroker/turn/session_canceller.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;

TEST(SchemaTest, KeyNamesAreCoturns) {
  EXPECT_EQ(UserKeyName("example.org", "u1"), "turn/realm/example.org/user/u1/key");
  EXPECT_EQ(UserKeyOfMember("example.org/u:1@x"), "turn/realm/example.org/user/u:1@x/key");
  SyncKeys k = SyncKeys::For("node-1");
  EXPECT_EQ(k.position, "turnbroker/sync/node-1/position");
  EXPECT_EQ(k.managed, "turnbroker/sync/node-1/managed");
  EXPECT_EQ(k.legacy, "turnbroker/sync/node-1/legacy");
  EXPECT_EQ(k.cancel, "turnbroker/sync/node-1/cancel");
}

TEST(SchemaTest, MembersSplitAtTheFirstSlash) {
  std::string_view realm, user;
  ASSERT_TRUE(SplitMember("r.org/a:b@c", &realm, &user));
  EXPECT_EQ(realm, "r.org");
  EXPECT_EQ(user, "a:b@c");
  EXPECT_FALSE(SplitMember("no-slash", &realm, &user));
}

TEST(SchemaTest, ManagedValueRoundTrips) {
  int64_t expires = 0;
  std::string issuer, subscriber;
  ASSERT_TRUE(ParseManagedValue(ManagedValue(1'800'000'000'123, "pcscf-1", "sip:a b@x"), &expires,
                                &issuer, &subscriber));
  EXPECT_EQ(expires, 1'800'000'000'123);
  EXPECT_EQ(issuer, "pcscf-1");
  EXPECT_EQ(subscriber, "sip:a b@x");
  ASSERT_TRUE(ParseManagedValue(ManagedValue(5, "", ""), &expires, &issuer, &subscriber));
  EXPECT_EQ(issuer, "");
  EXPECT_EQ(subscriber, "");
  EXPECT_FALSE(ParseManagedValue("garbage", &expires, &issuer, &subscriber));
  EXPECT_FALSE(ParseManagedValue("12x\ta\tb", &expires, &issuer, &subscriber));
}

TEST(SchemaTest, SyncNamesAreTokens) {
  EXPECT_TRUE(ValidateSyncName("turn-1.farm_a", "--name").ok());
  EXPECT_FALSE(ValidateSyncName("", "--name").ok());
  EXPECT_FALSE(ValidateSyncName("a/b", "--name").ok());
  EXPECT_FALSE(ValidateSyncName(std::string(65, 'a'), "--name").ok());
  EXPECT_NE(ValidateSyncName("a b", "--name").message().find("--name"), std::string::npos);
}

TEST(RedisUrlTest, ParsesHostPortPasswordAndDatabase) {
  auto u = ParseRedisUrl("redis://:s3cr:t@10.0.0.1:6380/2", "--redis-url");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "10.0.0.1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->password, "s3cr:t");
  EXPECT_EQ(u->user, "");
  EXPECT_EQ(u->db, 2);
  EXPECT_EQ(u->Redacted(), "redis://:***@10.0.0.1:6380/2");

  auto d = ParseRedisUrl("redis://localhost", "--redis-url");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 6379);
  EXPECT_EQ(d->db, 0);
  auto acl = ParseRedisUrl("redis://turn:pw@[::1]:7000/0", "--redis-url");
  ASSERT_TRUE(acl.ok());
  EXPECT_EQ(acl->user, "turn");
  EXPECT_EQ(acl->host, "::1");
  EXPECT_EQ(acl->port, 7000);
}

TEST(RedisBatchTest, EncodesRespAndDecodesBack) {
  RedisBatch batch;
  batch.Add({"SET", "k", "v\r\n", "PXAT", "123"});
  RedisArgs hset{"HSET", "h"};
  hset.Push("f").Push("");
  batch.Add(hset);
  EXPECT_EQ(batch.encoded(),
            "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$4\r\nPXAT\r\n$3\r\n123\r\n"
            "*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$0\r\n\r\n");
  EXPECT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.name(0), "SET k");
  EXPECT_EQ(batch.name(1), "HSET h");
  EXPECT_EQ(batch.Decode(), (std::vector<RedisCommand>{{"SET", "k", "v\r\n", "PXAT", "123"},
                                                      {"HSET", "h", "f", ""}}));
}

TEST(RedisUrlTest, RefusesBadUrlsWithoutEchoingThem) {
  for (const char* bad : {"http://h:1/0", "redis://", "redis://h:0/0", "redis://h:99999/0",
                          "redis://h:1/x", "redis://nopass@h:1/0", "redis://:@h:1/0",
                          "redis://h:/0", "redis://[::1/0"}) {
    auto u = ParseRedisUrl(bad, "--redis-url");
    EXPECT_FALSE(u.ok()) << bad;
    EXPECT_NE(u.status().message().find("--redis-url"), std::string::npos);
  }
  auto secret = ParseRedisUrl("redis://:topsecret@h:1/x", "--redis-url");
  EXPECT_EQ(secret.status().message().find("topsecret"), std::string::npos);
}

TEST(BackoffTest, GrowsWithJitterUpToTheMaximumAndResets) {
  Backoff b(BackoffOptions{100, 1'000, 2.0}, /*seed=*/42);
  int64_t bases[] = {100, 200, 400, 800, 1'000, 1'000};
  for (int64_t base : bases) {
    int64_t d = b.NextDelayMs();
    EXPECT_GE(d, base / 2);
    EXPECT_LE(d, base);
  }
  b.Reset();
  EXPECT_LE(b.NextDelayMs(), 100);
}

TEST(BackoffTest, JitterSpreadsDelays) {
  Backoff a(BackoffOptions{1'000, 1'000, 2.0}, 1), b(BackoffOptions{1'000, 1'000, 2.0}, 2);
  int same = 0;
  for (int i = 0; i < 20; ++i) same += a.NextDelayMs() == b.NextDelayMs();
  EXPECT_LT(same, 5);
}

TEST(LegacyIndexTest, MatchesSelectorsAndForgets) {
  LegacyIndex index;
  index.Add({"r1/u1", 2'000, "pcscf-1", "sip:a@x"});
  index.Add({"r2/u1", 2'000, "pcscf-2", "sip:b@x"});
  index.Add({"r1/u2", 2'000, "pcscf-1", "sip:b@x"});
  index.Add({"r1/gone", 500, "pcscf-1", "sip:a@x"});  // expired at 1'000
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(index.Match(ByUsername("u1"), 1'000)), (std::vector<std::string>{"r1/u1", "r2/u1"}));
  EXPECT_EQ(index.Match(ByUsername("u1", "r2"), 1'000), (std::vector<std::string>{"r2/u1"}));
  EXPECT_EQ(sorted(index.Match(BySubscriber("sip:b@x"), 1'000)),
            (std::vector<std::string>{"r1/u2", "r2/u1"}));
  EXPECT_EQ(sorted(index.Match(ByIssuer("pcscf-1"), 1'000)),
            (std::vector<std::string>{"r1/u1", "r1/u2"}));
  index.Remove("r1/u2");
  EXPECT_EQ(index.Match(ByIssuer("pcscf-1"), 1'000), (std::vector<std::string>{"r1/u1"}));
  EXPECT_EQ(index.size(), 3u);
  EXPECT_TRUE(index.Match(BySubscriber("sip:nobody"), 1'000).empty());
}

constexpr char kPsOutput[] =
    "\r\n    1) id=001000000000000003, user <alice>:\r\n"
    "      realm: example.org\r\n"
    "      started 37 secs ago\r\n"
    "      client protocol UDP, relay protocol UDP\r\n\r\n"
    "    2) id=000000000000000004, user <alice>:\r\n"
    "      realm: other.org\r\n\r\n"
    "    3) id=000000000000000009, user <alice2>:\r\n"
    "      realm: example.org\r\n\r\n"
    "    4) id=000000000000000010, user <alice>:\r\n"
    "      realm: example.org\r\n\r\n"
    "  Total sessions: 4\r\n\r\n> ";

TEST(CoturnCliTest, ParsesTheSessionsOfExactlyOneUserInOneRealm) {
  EXPECT_EQ(ParseSessionIds(kPsOutput, "example.org", "alice"),
            (std::vector<std::string>{"001000000000000003", "000000000000000010"}));
  EXPECT_EQ(ParseSessionIds(kPsOutput, "other.org", "alice"),
            (std::vector<std::string>{"000000000000000004"}));
  EXPECT_TRUE(ParseSessionIds(kPsOutput, "example.org", "bob").empty());
  EXPECT_TRUE(ParseSessionIds("\r\n  Total sessions: 0\r\n\r\n> ", "example.org", "a").empty());
}

TEST(CoturnCliTest, StripsTelnetNegotiation) {
  std::string in = "\xff\xfb\x01TURN\xff\xff\xff\xfa\x18\x01\xff\xf0> ";
  EXPECT_EQ(StripTelnet(in), "TURN\xff> ");
}

class FakeCoturn : public CoturnAdmin {
 public:
  absl::StatusOr<std::vector<std::string>> Sessions(std::string_view realm,
                                                    std::string_view username) override {
    if (down) return absl::UnavailableError("cli down");
    listed.push_back(std::string(realm) + "/" + std::string(username));
    auto it = sessions.find(std::string(username));
    return it == sessions.end() ? std::vector<std::string>{} : it->second;
  }
  absl::Status Cancel(std::string_view id) override {
    if (down) return absl::UnavailableError("cli down");
    cancelled.push_back(std::string(id));
    for (auto& [user, ids] : sessions) std::erase(ids, std::string(id));
    return absl::OkStatus();
  }
  bool down = false;
  std::map<std::string, std::vector<std::string>> sessions;
  std::vector<std::string> listed, cancelled;
};

class SessionCancellerTest : public ::testing::Test {
 protected:
  static constexpr int64_t kNow = 1'800'000'000'000;
  void Queue(const std::string& member, int64_t expires) {
    redis_.Pipeline({{"ZADD", keys_.cancel, std::to_string(expires), member}}).IgnoreError();
  }
  ManualClock clock_{kNow};
  FakeRedis redis_{&clock_};
  MetricsRegistry registry_;
  SyncMetrics metrics_{&registry_, &clock_};
  SyncKeys keys_ = SyncKeys::For("n");
  FakeCoturn coturn_;
  SessionCancellerOptions options_{5'000, 0, 100, {}};
  SessionCanceller canceller_{options_, &redis_, keys_, &coturn_, &clock_, &metrics_};
};

TEST_F(SessionCancellerTest, EndsTheSessionsOfQueuedUsersAndDequeuesThem) {
  coturn_.sessions["alice"] = {"11", "12"};
  coturn_.sessions["bob"] = {"21"};
  Queue("example.org/alice", kNow + 60'000);
  ASSERT_TRUE(canceller_.RunOnce().ok());
  EXPECT_EQ(coturn_.cancelled, (std::vector<std::string>{"11", "12"}));
  EXPECT_TRUE(redis_.ZSet(keys_.cancel).empty());
  EXPECT_EQ(metrics_.sessions_cancelled->value(), 2u);
  EXPECT_EQ(coturn_.sessions["bob"].size(), 1u);
}

TEST_F(SessionCancellerTest, KeepsTheQueueWhileCoturnIsUnreachable) {
  coturn_.sessions["alice"] = {"11"};
  Queue("example.org/alice", kNow + 60'000);
  coturn_.down = true;
  EXPECT_FALSE(canceller_.RunOnce().ok());
  EXPECT_EQ(redis_.ZSet(keys_.cancel).size(), 1u);
  coturn_.down = false;
  ASSERT_TRUE(canceller_.RunOnce().ok());
  EXPECT_EQ(coturn_.cancelled, (std::vector<std::string>{"11"}));
}

TEST_F(SessionCancellerTest, DropsUsersWhoseCredentialExpired) {
  Queue("example.org/old", kNow - 1);
  ASSERT_TRUE(canceller_.RunOnce().ok());
  EXPECT_TRUE(coturn_.listed.empty());
  EXPECT_TRUE(redis_.ZSet(keys_.cancel).empty());
}

TEST_F(SessionCancellerTest, ChecksAHandledUserOnceMore) {
  Queue("example.org/alice", kNow + 60'000);
  ASSERT_TRUE(canceller_.RunOnce().ok());  // no session yet
  coturn_.sessions["alice"] = {"31"};      // authenticated as the key went
  ASSERT_TRUE(canceller_.RunOnce().ok());  // recheck_after_ms = 0
  EXPECT_EQ(coturn_.cancelled, (std::vector<std::string>{"31"}));
}

}  // namespace
}  // namespace turnbroker::turn
