// The credential model's rules, shared by every part: field validation with
// messages that name the field, and the long-term key derivation.
#ifndef TURNBROKER_COMMON_CREDENTIAL_H_
#define TURNBROKER_COMMON_CREDENTIAL_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker {

// (v1 here is ::turnbroker::v1 itself; Clang refuses an alias of the same name.)

// Field limits (docs/contract.md). STUN: USERNAME < 513 bytes, REALM < 128
// characters (RFC 8489 §14.3, §14.9).
inline constexpr size_t kMaxUsernameBytes = 512;
inline constexpr size_t kMaxRealmBytes = 127;
inline constexpr size_t kKeyBytes = 16;
inline constexpr size_t kMaxSubscriberBytes = 256;
inline constexpr size_t kMaxIssuerBytes = 128;
inline constexpr size_t kMaxScopes = 16;
inline constexpr size_t kMaxScopeBytes = 64;
inline constexpr size_t kMaxReasonBytes = 128;
// How far ahead of the broker's clock a publisher's issued_at_ms may be
// (clock skew), and how much time in transit it may credit against --min-ttl.
inline constexpr int64_t kMaxIssuedAtSkewMs = 5'000;
inline constexpr int64_t kMaxTransitMs = 500;

// Bounds a broker enforces on a credential's lifetime (expires_at - now).
struct CredentialLimits {
  int64_t min_ttl_ms = 1'000;
  int64_t max_ttl_ms = 24 * 3600 * 1000;
};

// Each returns OK or INVALID_ARGUMENT with a message "<field>: <problem>",
// where <field> is the `field` argument (e.g. "credentials[3].realm").
absl::Status ValidateRealm(std::string_view realm, std::string_view field);
absl::Status ValidateUsername(std::string_view username, std::string_view field);
absl::Status ValidateKey(std::string_view key, std::string_view field);
absl::Status ValidateSubscriber(std::string_view subscriber, std::string_view field);
absl::Status ValidateIssuer(std::string_view issuer, std::string_view field);
absl::Status ValidateScope(std::string_view scope, std::string_view field);
absl::Status ValidateReason(std::string_view reason, std::string_view field);

// A credential as published: every field above, plus its expiry against
// `now_ms` and `limits`. `field` prefixes the messages ("credentials[3]").
absl::Status ValidateCredential(const v1::Credential& credential, const CredentialLimits& limits,
                                int64_t now_ms, std::string_view field);

// A revocation selector: exactly one of username (realm optional), subscriber
// or issuer, each valid.
absl::Status ValidateSelector(const v1::Selector& selector, std::string_view field);

// The long-term key of RFC 8489 §9.2.2: MD5(username ":" realm ":" password),
// the value coturn's user database holds. (SASLprep of the password is the
// identity for the ASCII passwords this project mints.)
using LongTermKey = std::array<uint8_t, kKeyBytes>;
LongTermKey DeriveLongTermKey(std::string_view username, std::string_view realm,
                              std::string_view password);

// Lowercase hex, as coturn stores keys; and back (false on bad input).
std::string HexLower(std::string_view bytes);
bool ParseHex(std::string_view hex, std::string* bytes);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_CREDENTIAL_H_
