#include "turnbroker/pcscf/minter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "turnbroker/common/credential.h"

namespace turnbroker::pcscf {
namespace {

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

TEST(MinterTest, UsernameAndPasswordAreBase64UrlOfTheirRandomBytes) {
  Minter minter("example.org");
  for (int i = 0; i < 1000; ++i) {
    MintedSecret s = minter.Mint();
    // 12 bytes -> 16 characters, 18 bytes -> 24: no padding, 6 bits each.
    ASSERT_EQ(s.username.size(), 16u);
    ASSERT_EQ(s.password.size(), 24u);
    for (char c : s.username) ASSERT_TRUE(IsBase64UrlChar(c)) << s.username;
    for (char c : s.password) ASSERT_TRUE(IsBase64UrlChar(c)) << s.password;
  }
}

TEST(MinterTest, CarriesAtLeast96BitsOfUsernameAnd128OfPassword) {
  EXPECT_GE(kUsernameRandomBytes * 8, 96u);
  EXPECT_GE(kPasswordRandomBytes * 8, 128u);
  // Every position takes many values: the text is not a fixed pattern.
  Minter minter("example.org");
  std::vector<std::unordered_set<char>> seen(16);
  for (int i = 0; i < 2000; ++i) {
    std::string u = minter.Mint().username;
    for (size_t p = 0; p < u.size(); ++p) seen[p].insert(u[p]);
  }
  for (size_t p = 0; p < seen.size(); ++p) EXPECT_GT(seen[p].size(), 50u) << "position " << p;
}

// Mints `count` values of N characters and counts the duplicates. Fixed-size
// copies sort fast; the test checks the very text the WIC sees.
template <size_t N>
size_t DuplicatesAmong(int count, std::string (*mint)()) {
  std::vector<std::array<char, N>> v(static_cast<size_t>(count));
  for (auto& item : v) {
    std::string s = mint();
    if (s.size() != N) return SIZE_MAX;
    std::copy(s.begin(), s.end(), item.begin());
  }
  std::sort(v.begin(), v.end());
  return v.size() - static_cast<size_t>(std::unique(v.begin(), v.end()) - v.begin());
}

TEST(MinterTest, UsernamesAreUniqueOverAMillion) {
  EXPECT_EQ(DuplicatesAmong<16>(1'000'000, &Minter::MintUsername), 0u);
}

TEST(MinterTest, PasswordsAreUniqueOverAMillion) {
  EXPECT_EQ(DuplicatesAmong<24>(1'000'000, &Minter::MintPassword), 0u);
}

TEST(MinterTest, MintedUsernamesPassTheBrokersValidation) {
  Minter minter("example.org");
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(ValidateUsername(minter.Mint().username, "username").ok());
  }
}

TEST(MinterTest, KeyIsHa1OfUsernameRealmAndPassword) {
  Minter minter("turn.example.org");
  MintedSecret s = minter.Mint();
  EXPECT_EQ(s.key, DeriveLongTermKey(s.username, "turn.example.org", s.password));
}

std::string Hex(const LongTermKey& k) {
  return HexLower(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

TEST(MinterTest, Ha1MatchesKnownVectors) {
  // RFC 2617 §3.5: HA1 = MD5("Mufasa:testrealm@host.com:Circle Of Life").
  EXPECT_EQ(Hex(DeriveLongTermKey("Mufasa", "testrealm@host.com", "Circle Of Life")),
            "939e7578ed9e3c518a452acee763bce9");
  // coturn's documentation (turnadmin -k -u ninefingers -r north.gov
  // -p youhavetoberealistic): the key its Redis user database holds.
  EXPECT_EQ(Hex(DeriveLongTermKey("ninefingers", "north.gov", "youhavetoberealistic")),
            "bc807ee29df3c9ffa736523fb2c4e8ee");
  // Empty fields: MD5("::").
  EXPECT_EQ(Hex(DeriveLongTermKey("", "", "")), "4501c091b0366d76ea3218b6cfdd8097");
}

}  // namespace
}  // namespace turnbroker::pcscf
