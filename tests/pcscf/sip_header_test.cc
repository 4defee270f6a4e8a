#include "turnbroker/pcscf/sip_header.h"

#include <gtest/gtest.h>

namespace turnbroker::pcscf {
namespace {

TurnCredentialHeader Example() {
  TurnCredentialHeader h;
  h.username = "Yc3kV0aQxJ2m8PLq";
  h.password = "n1_2kXcQ-9vZ0pLq7tRw3yAa";
  h.ttl_s = 3600;
  h.expires_at_s = 1764302400;
  h.urls = {"turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349?transport=tcp"};
  return h;
}

TEST(SipHeaderTest, FormatsTheDocumentedSyntax) {
  auto v = FormatTurnCredentialHeader(Example());
  ASSERT_TRUE(v.ok()) << v.status();
  // The example in docs/sip-header.md.
  EXPECT_EQ(*v,
            "username=\"Yc3kV0aQxJ2m8PLq\";password=\"n1_2kXcQ-9vZ0pLq7tRw3yAa\";"
            "ttl=3600;expires_at=1764302400;"
            "urls=\"turn:turn.example.org:3478?transport=udp "
            "turns:turn.example.org:5349?transport=tcp\"");
  EXPECT_EQ(kTurnCredentialHeader, "TURN-Credential");
}

TEST(SipHeaderTest, ParsesWhatItFormats) {
  auto v = FormatTurnCredentialHeader(Example());
  ASSERT_TRUE(v.ok());
  auto h = ParseTurnCredentialHeader(*v);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->username, Example().username);
  EXPECT_EQ(h->password, Example().password);
  EXPECT_EQ(h->ttl_s, 3600);
  EXPECT_EQ(h->expires_at_s, 1764302400);
  EXPECT_EQ(h->urls, Example().urls);
}

TEST(SipHeaderTest, ParserToleratesSpacesCaseAndUnknownParameters) {
  auto h = ParseTurnCredentialHeader(
      " Username=\"u1\" ; PASSWORD=p1;ttl=5 ;expires_at=99; future=\"x;y\"; "
      "urls=\"turn:a:3478  turn:b:3478?transport=tcp\"");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->username, "u1");
  EXPECT_EQ(h->password, "p1");
  EXPECT_EQ(h->ttl_s, 5);
  EXPECT_EQ(h->urls, (std::vector<std::string>{"turn:a:3478", "turn:b:3478?transport=tcp"}));
}

TEST(SipHeaderTest, ParserNamesTheMissingOrBadParameter) {
  EXPECT_EQ(ParseTurnCredentialHeader("password=\"p\";ttl=1;expires_at=2;urls=\"turn:a\"")
                .status()
                .message(),
            "username: is missing");
  EXPECT_EQ(
      ParseTurnCredentialHeader("username=u;ttl=1;expires_at=2;urls=\"turn:a\"").status().message(),
      "password: is missing");
  EXPECT_EQ(ParseTurnCredentialHeader("username=u;password=p;ttl=x;expires_at=2;urls=turn:a")
                .status()
                .message(),
            "ttl: is not a number");
  EXPECT_EQ(ParseTurnCredentialHeader("username=u;password=p;ttl=1;urls=turn:a").status().message(),
            "expires_at: is missing");
  EXPECT_EQ(
      ParseTurnCredentialHeader("username=u;password=p;ttl=1;expires_at=2").status().message(),
      "urls: is missing");
}

TEST(SipHeaderTest, RefusesValuesTheSyntaxCannotCarry) {
  for (const char* bad : {"a\"b", "a;b", "a,b", "a b", "a\\b", "a\nb", ""}) {
    TurnCredentialHeader h = Example();
    h.password = bad;
    auto v = FormatTurnCredentialHeader(h);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(std::string(v.status().message()).rfind("password: ", 0), 0u) << bad;
  }
  TurnCredentialHeader h = Example();
  h.urls.clear();
  EXPECT_EQ(FormatTurnCredentialHeader(h).status().message(), "urls: must have at least one URL");
  h = Example();
  h.urls[1] = "http://x";
  EXPECT_EQ(FormatTurnCredentialHeader(h).status().message(),
            "urls[1]: must start with turn:, turns:, stun: or stuns:");
}

TEST(SipHeaderTest, ValidatesIceServerUrls) {
  EXPECT_TRUE(ValidateIceServerUrl("turn:10.0.0.1:3478?transport=udp", "u").ok());
  EXPECT_TRUE(ValidateIceServerUrl("turns:turn.example.org:443?transport=tcp", "u").ok());
  EXPECT_TRUE(ValidateIceServerUrl("stun:stun.example.org", "u").ok());
  EXPECT_TRUE(ValidateIceServerUrl("TURN:[2001:db8::1]:3478", "u").ok());
  EXPECT_FALSE(ValidateIceServerUrl("turn:", "u").ok());
  EXPECT_FALSE(ValidateIceServerUrl("turn:?transport=udp", "u").ok());
  EXPECT_FALSE(ValidateIceServerUrl("turn:a b", "u").ok());
  EXPECT_FALSE(ValidateIceServerUrl("turn:a,turn:b", "u").ok());
  EXPECT_EQ(ValidateIceServerUrl("sip:a", "--turn-uri").message(),
            "--turn-uri: must start with turn:, turns:, stun: or stuns:");
}

}  // namespace
}  // namespace turnbroker::pcscf
