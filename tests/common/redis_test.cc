// The Redis URL and the RESP encoding of the Redis client (redis.h).
#include "turnbroker/common/redis.h"

#include <gtest/gtest.h>

namespace turnbroker {
namespace {

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
  for (const char* bad :
       {"http://h:1/0", "redis://", "redis://h:0/0", "redis://h:99999/0", "redis://h:1/x",
        "redis://nopass@h:1/0", "redis://:@h:1/0", "redis://h:/0", "redis://[::1/0"}) {
    auto u = ParseRedisUrl(bad, "--redis-url");
    EXPECT_FALSE(u.ok()) << bad;
    EXPECT_NE(u.status().message().find("--redis-url"), std::string::npos);
  }
  auto secret = ParseRedisUrl("redis://:topsecret@h:1/x", "--redis-url");
  EXPECT_EQ(secret.status().message().find("topsecret"), std::string::npos);
}

}  // namespace
}  // namespace turnbroker
