// Parsing what coturn's telnet CLI prints (coturn_admin.h).
#include "turnbroker/turn/coturn_admin.h"

#include <gtest/gtest.h>

namespace turnbroker::turn {
namespace {

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

}  // namespace
}  // namespace turnbroker::turn
