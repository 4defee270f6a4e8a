// The Redis keys turn-credential-sync reads and writes: coturn's own user
// database schema, and the bookkeeping of one sync (docs/turn-plugin.md).
//
//   turn/realm/<realm>/user/<username>/key   coturn's long-term key: the HA1
//                                            as 32 lowercase hex, PXAT expiry
//   turnbroker/sync/<name>/position          hash {epoch, revision,
//                                            updated_at_ms}: the resume point
//   turnbroker/sync/<name>/managed           hash <realm>/<username> ->
//                                            "<expires_at_ms>\t<issuer>\t
//                                            <subscriber>": the keys it wrote
//   turnbroker/sync/<name>/legacy            zset <realm>/<username> ->
//                                            expires_at_ms: keys learned in an
//                                            earlier broker epoch
//   turnbroker/sync/<name>/cancel            zset <realm>/<username> ->
//                                            expires_at_ms: revoked users whose
//                                            coturn sessions are to be ended
//
// In --auth-mode=shared-secret (approach 1, docs/approach1.md) instead of the
// user keys, the position and the index:
//
//   turn/realm/<realm>/secret                coturn's set of TURN REST API
//                                            secrets (--use-auth-secret)
//   turnbroker/sync/<name>/secret-position   the resume point, as position
//                                            (its own: a sync that changes mode
//                                            starts with a snapshot)
//   turnbroker/sync/<name>/secrets           hash <realm>/<id>[/legacy] ->
//                                            "<drop_at_ms>\t<max_credential_
//                                            ttl_ms>\t<secret>": the secrets it
//                                            wrote (secrets.h)
//
// A "member" names one credential in the sync's sets: "<realm>/<username>".
// Neither a realm ([A-Za-z0-9._-]) nor a username (RFC 3986 unreserved,
// sub-delims, ':' and '@') can hold '/', so the first '/' splits it.
#ifndef TURNBROKER_TURN_SCHEMA_H_
#define TURNBROKER_TURN_SCHEMA_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace turnbroker::turn {

// How the TURN farm authenticates (--auth-mode): per-credential long-term
// keys (approach 2) or TURN REST API shared secrets (approach 1).
enum class AuthMode { kPerCredential, kSharedSecret };

// coturn's set of a realm's TURN REST API shared secrets (coturn's
// --use-auth-secret reads it, SMEMBERS, on every authentication).
std::string SecretSetName(std::string_view realm);

// coturn's key for a long-term credential (coturn's --redis-userdb reads it
// on every new allocation).
std::string UserKeyName(std::string_view realm, std::string_view username);

std::string MemberName(std::string_view realm, std::string_view username);
// Splits a member; false if it has no '/'.
bool SplitMember(std::string_view member, std::string_view* realm, std::string_view* username);
// coturn's key for a member.
std::string UserKeyOfMember(std::string_view member);

// The sync's own keys.
struct SyncKeys {
  std::string position;
  std::string managed;
  std::string legacy;
  std::string cancel;
  std::string secrets;

  // The position differs per mode (schema above).
  static SyncKeys For(std::string_view sync_name, AuthMode mode = AuthMode::kPerCredential);
};

// A sync name: 1..64 characters of [A-Za-z0-9._-]. INVALID_ARGUMENT names
// `field`.
absl::Status ValidateSyncName(std::string_view name, std::string_view field);

// A managed entry's value: the credential's expiry, and who it was issued
// to and by (for revocation by selector of keys the broker no longer knows).
std::string ManagedValue(int64_t expires_at_ms, std::string_view issuer,
                         std::string_view subscriber);
// False if the value is malformed.
bool ParseManagedValue(std::string_view value, int64_t* expires_at_ms, std::string* issuer,
                       std::string* subscriber);

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_SCHEMA_H_
