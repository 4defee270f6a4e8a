#include "turnbroker/turn/legacy_index.h"

#include "turnbroker/turn/schema.h"

namespace turnbroker::turn {
namespace {

std::string UsernameOf(const std::string& member) {
  std::string_view realm, username;
  if (!SplitMember(member, &realm, &username)) return member;
  return std::string(username);
}

}  // namespace

void LegacyIndex::Add(LegacyKey key) {
  Remove(key.member);
  std::string member = key.member;
  by_username_[UsernameOf(member)].insert(member);
  if (!key.subscriber.empty()) by_subscriber_[key.subscriber].insert(member);
  if (!key.issuer.empty()) by_issuer_[key.issuer].insert(member);
  keys_.emplace(std::move(member), std::move(key));
}

void LegacyIndex::Unlink(absl::flat_hash_map<std::string, Members>* index, const std::string& value,
                         const std::string& member) {
  auto it = index->find(value);
  if (it == index->end()) return;
  it->second.erase(member);
  if (it->second.empty()) index->erase(it);
}

void LegacyIndex::Remove(const std::string& member) {
  auto it = keys_.find(member);
  if (it == keys_.end()) return;
  Unlink(&by_username_, UsernameOf(member), member);
  Unlink(&by_subscriber_, it->second.subscriber, member);
  Unlink(&by_issuer_, it->second.issuer, member);
  keys_.erase(it);
}

bool LegacyIndex::Contains(const std::string& member) const { return keys_.contains(member); }

int64_t LegacyIndex::ExpiresAt(const std::string& member) const {
  auto it = keys_.find(member);
  return it == keys_.end() ? 0 : it->second.expires_at_ms;
}

void LegacyIndex::Collect(const absl::flat_hash_map<std::string, Members>& index,
                          const std::string& value, int64_t now_ms,
                          std::vector<std::string>* out) const {
  auto it = index.find(value);
  if (it == index.end()) return;
  for (const std::string& member : it->second) {
    if (ExpiresAt(member) > now_ms) out->push_back(member);
  }
}

std::vector<std::string> LegacyIndex::Match(const v1::Selector& selector, int64_t now_ms) const {
  std::vector<std::string> out;
  switch (selector.by_case()) {
    case v1::Selector::kUsername: {
      const v1::CredentialRef& ref = selector.username();
      if (ref.realm().empty()) {
        Collect(by_username_, ref.username(), now_ms, &out);
      } else {
        std::string member = MemberName(ref.realm(), ref.username());
        if (ExpiresAt(member) > now_ms) out.push_back(member);
      }
      break;
    }
    case v1::Selector::kSubscriber:
      Collect(by_subscriber_, selector.subscriber(), now_ms, &out);
      break;
    case v1::Selector::kIssuer:
      Collect(by_issuer_, selector.issuer(), now_ms, &out);
      break;
    default:
      break;
  }
  return out;
}

void LegacyIndex::Clear() {
  keys_.clear();
  by_username_.clear();
  by_subscriber_.clear();
  by_issuer_.clear();
}

}  // namespace turnbroker::turn
