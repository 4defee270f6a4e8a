#include "turnbroker/pcscf/registry.h"

#include <algorithm>

namespace turnbroker::pcscf {

std::optional<IssuedCredential> CredentialRegistry::Reusable(std::string_view subscriber,
                                                             int64_t min_remaining_ms) const {
  std::lock_guard lock(mu_);
  auto s = by_subscriber_.find(std::string(subscriber));
  if (s == by_subscriber_.end() || s->second.empty()) return std::nullopt;
  auto e = by_username_.find(s->second.back());
  if (e == by_username_.end() || e->second.retiring) return std::nullopt;
  if (e->second.credential.expires_at_ms - clock_->NowMs() < min_remaining_ms) return std::nullopt;
  return e->second.credential;
}

std::optional<IssuedCredential> CredentialRegistry::Add(IssuedCredential credential) {
  std::lock_guard lock(mu_);
  std::optional<IssuedCredential> previous;
  auto& usernames = by_subscriber_[credential.subscriber];
  if (!usernames.empty()) {
    auto e = by_username_.find(usernames.back());
    if (e != by_username_.end() && !e->second.retiring &&
        e->second.credential.expires_at_ms > clock_->NowMs()) {
      e->second.retiring = true;
      previous = e->second.credential;
    }
  }
  if (by_username_.count(credential.username)) EraseLocked(credential.username);
  by_subscriber_[credential.subscriber].push_back(credential.username);
  by_expiry_.emplace(credential.expires_at_ms, credential.username);
  std::string username = credential.username;
  by_username_[username] = Entry{std::move(credential), false};
  return previous;
}

std::optional<IssuedCredential> CredentialRegistry::Find(std::string_view username) const {
  std::lock_guard lock(mu_);
  auto e = by_username_.find(std::string(username));
  if (e == by_username_.end() || e->second.credential.expires_at_ms <= clock_->NowMs())
    return std::nullopt;
  return e->second.credential;
}

void CredentialRegistry::EraseLocked(const std::string& username) {
  auto e = by_username_.find(std::string(username));
  if (e == by_username_.end()) return;
  auto s = by_subscriber_.find(e->second.credential.subscriber);
  if (s != by_subscriber_.end()) {
    auto& v = s->second;
    v.erase(std::remove(v.begin(), v.end(), username), v.end());
    if (v.empty()) by_subscriber_.erase(s);
  }
  by_expiry_.erase({e->second.credential.expires_at_ms, username});
  by_username_.erase(e);
}

std::optional<IssuedCredential> CredentialRegistry::Remove(std::string_view username) {
  std::lock_guard lock(mu_);
  auto e = by_username_.find(std::string(username));
  if (e == by_username_.end()) return std::nullopt;
  IssuedCredential c = std::move(e->second.credential);
  EraseLocked(c.username);
  if (c.expires_at_ms <= clock_->NowMs()) return std::nullopt;
  return c;
}

std::vector<IssuedCredential> CredentialRegistry::RemoveSubscriber(std::string_view subscriber) {
  std::lock_guard lock(mu_);
  std::vector<IssuedCredential> out;
  auto s = by_subscriber_.find(std::string(subscriber));
  if (s == by_subscriber_.end()) return out;
  int64_t now = clock_->NowMs();
  for (const std::string& u : s->second) {
    auto e = by_username_.find(u);
    if (e == by_username_.end()) continue;
    by_expiry_.erase({e->second.credential.expires_at_ms, u});
    if (e->second.credential.expires_at_ms > now) out.push_back(std::move(e->second.credential));
    by_username_.erase(e);
  }
  by_subscriber_.erase(s);
  return out;
}

std::vector<IssuedCredential> CredentialRegistry::Live() const {
  std::lock_guard lock(mu_);
  std::vector<IssuedCredential> out;
  int64_t now = clock_->NowMs();
  for (const auto& [username, e] : by_username_) {
    if (e.credential.expires_at_ms > now) out.push_back(e.credential);
  }
  return out;
}

size_t CredentialRegistry::RemoveExpired() {
  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowMs();
  size_t removed = 0;
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    std::string username = by_expiry_.begin()->second;
    EraseLocked(username);  // erases it from by_expiry_ too
    ++removed;
  }
  return removed;
}

size_t CredentialRegistry::size() const {
  std::lock_guard lock(mu_);
  return by_username_.size();
}

size_t RevokedUsernames::Add(const std::string& username, int64_t expires_at_ms) {
  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowMs();
  if (expires_at_ms <= now) return 0;
  if (max_ == 0) return 1;
  if (auto it = expiry_.find(username); it != expiry_.end()) {
    if (it->second >= expires_at_ms) return 0;
    by_expiry_.erase({it->second, username});
    it->second = expires_at_ms;
    by_expiry_.insert({expires_at_ms, username});
    return 0;
  }
  size_t forgotten = 0;
  if (expiry_.size() >= max_) {
    DropExpiredLocked(now);
    if (expiry_.size() >= max_) {
      if (by_expiry_.begin()->first >= expires_at_ms) return 1;  // this one goes first
      expiry_.erase(by_expiry_.begin()->second);
      by_expiry_.erase(by_expiry_.begin());
      forgotten = 1;
    }
  }
  expiry_.emplace(username, expires_at_ms);
  by_expiry_.insert({expires_at_ms, username});
  return forgotten;
}

std::vector<std::pair<std::string, int64_t>> RevokedUsernames::Live() {
  std::lock_guard lock(mu_);
  DropExpiredLocked(clock_->NowMs());
  std::vector<std::pair<std::string, int64_t>> out;
  out.reserve(by_expiry_.size());
  for (const auto& [expires, username] : by_expiry_) out.emplace_back(username, expires);
  return out;
}

size_t RevokedUsernames::size() const {
  std::lock_guard lock(mu_);
  return expiry_.size();
}

void RevokedUsernames::DropExpiredLocked(int64_t now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    expiry_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
}

}  // namespace turnbroker::pcscf
