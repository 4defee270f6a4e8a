#include "turnbroker/common/credential.h"

#include <openssl/evp.h>

#include <algorithm>

#include "turnbroker/common/strings.h"

namespace turnbroker {
namespace {

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(StrCat(field, ": ", problem));
}

bool IsAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Token characters: [A-Za-z0-9] plus `extra`.
absl::Status CheckToken(std::string_view value, std::string_view field, size_t max_bytes,
                        std::string_view extra, std::string_view charset_description) {
  if (value.empty()) return Invalid(field, "must not be empty");
  if (value.size() > max_bytes) {
    return Invalid(field, StrCat("too long: ", value.size(), " bytes, at most ", max_bytes));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (!IsAlnum(c) && extra.find(static_cast<char>(c)) == extra.npos) {
      return Invalid(field, StrCat("character at offset ", i,
                                   " is not allowed (allowed: ", charset_description, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPrintable(std::string_view value, std::string_view field, size_t max_bytes,
                            bool allow_space) {
  if (value.size() > max_bytes) {
    return Invalid(field, StrCat("too long: ", value.size(), " bytes, at most ", max_bytes));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    bool ok = (c > 0x20 && c < 0x7f) || (allow_space && c == ' ');
    if (!ok) {
      return Invalid(field, StrCat("character at offset ", i, " is not printable ASCII"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRealm(std::string_view realm, std::string_view field) {
  return CheckToken(realm, field, kMaxRealmBytes, "._-", "A-Z a-z 0-9 . _ -");
}

absl::Status ValidateUsername(std::string_view username, std::string_view field) {
  // RFC 3986 unreserved / sub-delims / ":" / "@", without ";" and ","
  // (they separate parameters and header values in SIP, RFC 3261 §25.1):
  // safe in a Redis key, a SIP header parameter and a log line.
  return CheckToken(username, field, kMaxUsernameBytes, "-._~!$&'()*+=:@",
                    "A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + = : @");
}

absl::Status ValidateKey(std::string_view key, std::string_view field) {
  if (key.size() != kKeyBytes) {
    return Invalid(field, StrCat("must be exactly 16 bytes (MD5 of "
                                 "username:realm:password), got ",
                                 key.size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateSubscriber(std::string_view subscriber, std::string_view field) {
  return CheckPrintable(subscriber, field, kMaxSubscriberBytes, false);
}

absl::Status ValidateIssuer(std::string_view issuer, std::string_view field) {
  if (issuer.empty()) return absl::OkStatus();
  return CheckToken(issuer, field, kMaxIssuerBytes, "._:-", "A-Z a-z 0-9 . _ : -");
}

absl::Status ValidateScope(std::string_view scope, std::string_view field) {
  return CheckToken(scope, field, kMaxScopeBytes, "._-", "A-Z a-z 0-9 . _ -");
}

absl::Status ValidateReason(std::string_view reason, std::string_view field) {
  return CheckPrintable(reason, field, kMaxReasonBytes, true);
}

absl::Status ValidateCredential(const v1::Credential& c, const CredentialLimits& limits,
                                int64_t now_ms, std::string_view field) {
  auto sub = [&](std::string_view name) { return StrCat(field, ".", name); };
  if (auto s = ValidateRealm(c.realm(), sub("realm")); !s.ok()) return s;
  if (auto s = ValidateUsername(c.username(), sub("username")); !s.ok()) return s;
  if (auto s = ValidateKey(c.key(), sub("key")); !s.ok()) return s;
  if (c.expires_at_ms() <= now_ms) {
    return Invalid(sub("expires_at_ms"),
                   StrCat("is not in the future (", c.expires_at_ms(), " <= now ", now_ms, ")"));
  }
  // issued_at, when set, is a recent time: not before the longest lifetime
  // (a 1970 issued_at would stretch the lifetime below) and not ahead of
  // this clock by more than clock skew.
  if (c.issued_at_ms() != 0 && (c.issued_at_ms() < now_ms - limits.max_ttl_ms ||
                                c.issued_at_ms() > now_ms + kMaxIssuedAtSkewMs)) {
    return Invalid(sub("issued_at_ms"), StrCat(c.issued_at_ms(), " is not a recent time (now ",
                                               now_ms, "); give 0 and the broker sets it"));
  }
  // The shortest lifetime is the one the publisher gave (from issued_at,
  // when set), so a credential of exactly --min-ttl is not refused for the
  // time it spent on its way here, up to kMaxTransitMs of it; the longest
  // is counted from now.
  int64_t remaining = c.expires_at_ms() - now_ms;
  int64_t lifetime = c.issued_at_ms() > 0
                         ? c.expires_at_ms() - std::max(c.issued_at_ms(), now_ms - kMaxTransitMs)
                         : remaining;
  if (lifetime < limits.min_ttl_ms || remaining > limits.max_ttl_ms) {
    return Invalid(
        sub("expires_at_ms"),
        StrCat("lifetime ", lifetime < limits.min_ttl_ms ? lifetime : remaining,
               " ms is outside the allowed ", limits.min_ttl_ms, "..", limits.max_ttl_ms, " ms"));
  }
  if (c.issued_at_ms() < 0 || c.issued_at_ms() > c.expires_at_ms()) {
    return Invalid(sub("issued_at_ms"), "must be 0 or between 0 and expires_at_ms");
  }
  if (auto s = ValidateSubscriber(c.subscriber(), sub("subscriber")); !s.ok()) return s;
  if (auto s = ValidateIssuer(c.issuer(), sub("issuer")); !s.ok()) return s;
  if (static_cast<size_t>(c.scopes_size()) > kMaxScopes) {
    return Invalid(sub("scopes"),
                   StrCat("has ", c.scopes_size(), " entries, at most ", kMaxScopes));
  }
  for (int i = 0; i < c.scopes_size(); ++i) {
    if (auto s = ValidateScope(c.scopes(i), StrCat(field, ".scopes[", i, "]")); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateSelector(const v1::Selector& selector, std::string_view field) {
  switch (selector.by_case()) {
    case v1::Selector::kUsername: {
      const auto& ref = selector.username();
      if (!ref.realm().empty()) {
        if (auto s = ValidateRealm(ref.realm(), StrCat(field, ".username.realm")); !s.ok())
          return s;
      }
      return ValidateUsername(ref.username(), StrCat(field, ".username.username"));
    }
    // Each case above returns.
    case v1::Selector::kSubscriber:
      if (selector.subscriber().empty())
        return Invalid(StrCat(field, ".subscriber"), "must not be empty");
      return ValidateSubscriber(selector.subscriber(), StrCat(field, ".subscriber"));
      // Each case returns.
    case v1::Selector::kIssuer:
      if (selector.issuer().empty()) return Invalid(StrCat(field, ".issuer"), "must not be empty");
      return ValidateIssuer(selector.issuer(), StrCat(field, ".issuer"));
    case v1::Selector::BY_NOT_SET:
      break;
  }
  return Invalid(field, "must set one of username, subscriber or issuer");
}

LongTermKey DeriveLongTermKey(std::string_view username, std::string_view realm,
                              std::string_view password) {
  LongTermKey key{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  // MD5 is what RFC 8489's long-term mechanism (and coturn) specify; OpenSSL 3
  // keeps it in the default provider.
  EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
  EVP_DigestUpdate(ctx, username.data(), username.size());
  EVP_DigestUpdate(ctx, ":", 1);
  EVP_DigestUpdate(ctx, realm.data(), realm.size());
  EVP_DigestUpdate(ctx, ":", 1);
  EVP_DigestUpdate(ctx, password.data(), password.size());
  EVP_DigestFinal_ex(ctx, key.data(), &len);
  EVP_MD_CTX_free(ctx);
  return key;
}

std::string HexLower(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 15];
  }
  return out;
}

bool ParseHex(std::string_view hex, std::string* bytes) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  *bytes = std::move(out);
  return true;
}

}  // namespace turnbroker
