// coturn's key names and the values the sync writes (schema.h).
#include "turnbroker/turn/schema.h"

#include <gtest/gtest.h>

namespace turnbroker::turn {
namespace {

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

}  // namespace
}  // namespace turnbroker::turn
