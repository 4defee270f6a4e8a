#include "turnbroker/turn/schema.h"

#include "turnbroker/common/credential.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::turn {

std::string UserKeyName(std::string_view realm, std::string_view username) {
  return StrCat("turn/realm/", realm, "/user/", username, "/key");
}

std::string MemberName(std::string_view realm, std::string_view username) {
  return StrCat(realm, "/", username);
}

bool SplitMember(std::string_view member, std::string_view* realm,
                 std::string_view* username) {
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

SyncKeys SyncKeys::For(std::string_view sync_name) {
  std::string prefix = StrCat("turnbroker/sync/", sync_name, "/");
  return SyncKeys{StrCat(prefix, "position"), StrCat(prefix, "managed"),
                  StrCat(prefix, "owners"), StrCat(prefix, "legacy"),
                  StrCat(prefix, "cancel")};
}

absl::Status ValidateSyncName(std::string_view name, std::string_view field) {
  // The same token rules as a farm name.
  return ValidateScope(name, field);
}

std::string OwnerValue(std::string_view issuer, std::string_view subscriber) {
  // An issuer holds no tab ([A-Za-z0-9._:-]); a subscriber is printable ASCII.
  return StrCat(issuer, "\t", subscriber);
}

void ParseOwnerValue(std::string_view value, std::string* issuer,
                     std::string* subscriber) {
  size_t tab = value.find('\t');
  if (tab == value.npos) {
    *issuer = std::string(value);
    subscriber->clear();
    return;
  }
  *issuer = std::string(value.substr(0, tab));
  *subscriber = std::string(value.substr(tab + 1));
}

}  // namespace turnbroker::turn
