#include "turnbroker/common/credential.h"

#include <gtest/gtest.h>

#include "turnbroker/common/random.h"

namespace turnbroker {
namespace {

v1::Credential Valid(int64_t now) {
  v1::Credential c;
  c.set_realm("ims.example.org");
  c.set_username("u-1");
  c.set_key(std::string(16, 'k'));
  c.set_expires_at_ms(now + 60'000);
  return c;
}

constexpr int64_t kNow = 1'700'000'000'000;

absl::Status Check(const v1::Credential& c) {
  return ValidateCredential(c, CredentialLimits{}, kNow, "credentials[2]");
}

void ExpectInvalid(const v1::Credential& c, const std::string& field) {
  absl::Status s = Check(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(std::string(s.message()).rfind("credentials[2]." + field + ":", 0), 0u)
      << "message should start with the field: " << s.message();
}

TEST(CredentialValidationTest, AcceptsAValidCredential) { EXPECT_TRUE(Check(Valid(kNow)).ok()); }

TEST(CredentialValidationTest, RealmEmptyTooLongOrWrongCharset) {
  for (std::string realm : {std::string(), std::string(128, 'a'), std::string("ex/ample"),
                            std::string("a b"), std::string("é")}) {
    auto c = Valid(kNow);
    c.set_realm(realm);
    ExpectInvalid(c, "realm");
  }
  auto c = Valid(kNow);
  c.set_realm(std::string(127, 'a'));
  EXPECT_TRUE(Check(c).ok());
}

TEST(CredentialValidationTest, UsernameEmptyTooLongOrWrongCharset) {
  for (std::string u :
       {std::string(), std::string(513, 'u'), std::string("a/b"), std::string("a b"),
        std::string("a\"b"), std::string("a\nb"), std::string("a;b"), std::string("a,b")}) {
    auto c = Valid(kNow);
    c.set_username(u);
    ExpectInvalid(c, "username");
  }
  auto c = Valid(kNow);
  c.set_username(std::string(512, 'u'));
  EXPECT_TRUE(Check(c).ok());
  c.set_username("1700000000:alice@example.org");  // TURN REST style
  EXPECT_TRUE(Check(c).ok());
}

TEST(CredentialValidationTest, KeyMustBeSixteenBytes) {
  for (size_t n : {0, 15, 17, 32}) {
    auto c = Valid(kNow);
    c.set_key(std::string(n, 'k'));
    ExpectInvalid(c, "key");
  }
}

TEST(CredentialValidationTest, ExpiryInThePastOrTtlOutOfBounds) {
  auto c = Valid(kNow);
  c.set_expires_at_ms(kNow - 1);
  ExpectInvalid(c, "expires_at_ms");
  c.set_expires_at_ms(kNow);
  ExpectInvalid(c, "expires_at_ms");
  c.set_expires_at_ms(kNow + 999);  // below the 1 s minimum
  ExpectInvalid(c, "expires_at_ms");
  c.set_expires_at_ms(kNow + CredentialLimits{}.max_ttl_ms + 1);
  ExpectInvalid(c, "expires_at_ms");
  c.set_expires_at_ms(kNow + CredentialLimits{}.max_ttl_ms);
  EXPECT_TRUE(Check(c).ok());
}

TEST(CredentialValidationTest, MinimumTtlCountsFromIssuedAtSoTransitTimeDoesNotRefuseIt) {
  auto c = Valid(kNow);
  // Issued 5 ms ago with exactly the minimum lifetime: accepted.
  c.set_issued_at_ms(kNow - 5);
  c.set_expires_at_ms(c.issued_at_ms() + CredentialLimits{}.min_ttl_ms);
  EXPECT_TRUE(Check(c).ok()) << Check(c);
  // The same without issued_at has only 995 ms left: refused.
  c.set_issued_at_ms(0);
  ExpectInvalid(c, "expires_at_ms");
  // issued_at cannot stretch the maximum: that counts from now.
  c.set_issued_at_ms(kNow - 60'000);
  c.set_expires_at_ms(kNow + CredentialLimits{}.max_ttl_ms + 1);
  ExpectInvalid(c, "expires_at_ms");
}

TEST(CredentialValidationTest, IssuedAtIsARecentTimeSoItCannotSlipUnderTheMinimumTtl) {
  auto c = Valid(kNow);
  c.set_expires_at_ms(kNow + 10);  // 10 ms left: under --min-ttl (1 s)
  c.set_issued_at_ms(1);           // 1970: a lifetime of 53 years
  ExpectInvalid(c, "issued_at_ms");
  c.set_issued_at_ms(kNow - 60'000);  // a minute ago, yet 10 ms left
  ExpectInvalid(c, "expires_at_ms");
  c = Valid(kNow);
  c.set_issued_at_ms(kNow + 3'600'000);  // the future
  ExpectInvalid(c, "issued_at_ms");
  c.set_issued_at_ms(kNow + 1'000);  // clock skew
  EXPECT_TRUE(Check(c).ok());
}

TEST(CredentialValidationTest, OptionalFields) {
  auto c = Valid(kNow);
  c.set_subscriber(std::string(257, 's'));
  ExpectInvalid(c, "subscriber");
  c = Valid(kNow);
  c.set_subscriber("sip:alice bob@x");
  ExpectInvalid(c, "subscriber");
  c = Valid(kNow);
  c.set_issuer("pcscf 1");
  ExpectInvalid(c, "issuer");
  c = Valid(kNow);
  c.set_issued_at_ms(kNow + 120'000);  // after expiry
  ExpectInvalid(c, "issued_at_ms");
  c = Valid(kNow);
  for (int i = 0; i < 17; ++i) c.add_scopes("farm" + std::to_string(i));
  ExpectInvalid(c, "scopes");
  c = Valid(kNow);
  c.add_scopes("ok");
  c.add_scopes("not ok");
  ExpectInvalid(c, "scopes[1]");
}

TEST(SelectorValidationTest, ExactlyOneValidSelector) {
  v1::Selector s;
  EXPECT_EQ(ValidateSelector(s, "selector").code(), absl::StatusCode::kInvalidArgument);
  s.set_subscriber("");
  EXPECT_EQ(ValidateSelector(s, "selector").message(), "selector.subscriber: must not be empty");
  s.mutable_username()->set_username("u");
  EXPECT_TRUE(ValidateSelector(s, "selector").ok());
  s.mutable_username()->set_realm("bad realm");
  EXPECT_EQ(ValidateSelector(s, "selector").code(), absl::StatusCode::kInvalidArgument);
  s.set_issuer("pcscf-1");
  EXPECT_TRUE(ValidateSelector(s, "selector").ok());
}

TEST(LongTermKeyTest, MatchesCoturnExampleKeys) {
  // coturn's example turnserver.conf: "user=ninefingers:0xbc807ee2..." is
  // the key of password "youhavetoberealistic", "user=gorst:0x7da2270c..."
  // of "hero", both in realm north.gov (what turnadmin -k prints).
  auto hex = [](const LongTermKey& k) {
    return HexLower(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
  };
  EXPECT_EQ(hex(DeriveLongTermKey("ninefingers", "north.gov", "youhavetoberealistic")),
            "bc807ee29df3c9ffa736523fb2c4e8ee");
  EXPECT_EQ(hex(DeriveLongTermKey("gorst", "north.gov", "hero")),
            "7da2270ccfa49786e0115366d3a3d14d");
}

TEST(HexTest, RoundTrip) {
  std::string bytes = RandomBytes(16), back;
  ASSERT_TRUE(ParseHex(HexLower(bytes), &back));
  EXPECT_EQ(back, bytes);
  EXPECT_FALSE(ParseHex("abc", &back));
  EXPECT_FALSE(ParseHex("zz", &back));
}

TEST(Base64UrlTest, Rfc4648Vectors) {
  EXPECT_EQ(Base64Url(""), "");
  EXPECT_EQ(Base64Url("f"), "Zg");
  EXPECT_EQ(Base64Url("fo"), "Zm8");
  EXPECT_EQ(Base64Url("foo"), "Zm9v");
  EXPECT_EQ(Base64Url("foob"), "Zm9vYg");
  EXPECT_EQ(Base64Url("\xfb\xff"), "-_8");
}

}  // namespace
}  // namespace turnbroker
