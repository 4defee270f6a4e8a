#include "turnbroker/turn/schema.h"

#include <charconv>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::turn {

std::string UserKeyName(std::string_view realm, std::string_view username) {
  return StrCat("turn/realm/", realm, "/user/", username, "/key");
}

std::string SecretSetName(std::string_view realm) {
  return StrCat("turn/realm/", realm, "/secret");
}

std::string MemberName(std::string_view realm, std::string_view username) {
  return StrCat(realm, "/", username);
}

bool SplitMember(std::string_view member, std::string_view* realm, std::string_view* username) {
  size_t slash = member.find('/');
  if (slash == member.npos) return false;
  *realm = member.substr(0, slash);
  *username = member.substr(slash + 1);
  return true;
}

std::string UserKeyOfMember(std::string_view member) {
  std::string_view realm, username;
  if (!SplitMember(member, &realm, &username)) return std::string();
  return UserKeyName(realm, username);
}

SyncKeys SyncKeys::For(std::string_view sync_name, AuthMode mode) {
  std::string prefix = StrCat("turnbroker/sync/", sync_name, "/");
  return SyncKeys{StrCat(prefix, mode == AuthMode::kSharedSecret ? "secret-position" : "position"),
                  StrCat(prefix, "managed"), StrCat(prefix, "legacy"), StrCat(prefix, "cancel"),
                  StrCat(prefix, "secrets")};
}

absl::Status ValidateSyncName(std::string_view name, std::string_view field) {
  // The same token rules as a farm name.
  return ValidateScope(name, field);
}

std::string ManagedValue(int64_t expires_at_ms, std::string_view issuer,
                         std::string_view subscriber) {
  // An issuer holds no tab ([A-Za-z0-9._:-]); a subscriber is printable ASCII.
  return StrCat(expires_at_ms, "\t", issuer, "\t", subscriber);
}

bool ParseManagedValue(std::string_view value, int64_t* expires_at_ms, std::string* issuer,
                       std::string* subscriber) {
  size_t first = value.find('\t');
  if (first == value.npos) return false;
  size_t second = value.find('\t', first + 1);
  if (second == value.npos) return false;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + first, *expires_at_ms);
  if (ec != std::errc() || ptr != value.data() + first) return false;
  *issuer = std::string(value.substr(first + 1, second - first - 1));
  *subscriber = std::string(value.substr(second + 1));
  return true;
}

}  // namespace turnbroker::turn
