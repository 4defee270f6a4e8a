#include "turnbroker/broker/secrets.h"

#include <algorithm>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::broker {
namespace {

bool IsBase64UrlChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool IsWatcherNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

}  // namespace

absl::Status ValidateSecretId(std::string_view id, std::string_view field) {
  // The same rules as a TURN farm's name: 1..64 of [A-Za-z0-9._-].
  static_assert(kMaxSecretIdBytes == kMaxScopeBytes);
  return ValidateScope(id, field);
}

absl::Status ValidateSecretBytes(std::string_view secret, std::string_view field) {
  if (secret.size() < kMinSecretBytes) {
    return absl::InvalidArgumentError(
        StrCat(field, ": ", secret.size(), " bytes, at least ", kMinSecretBytes));
  }
  if (secret.size() > kMaxSecretBytes) {
    return absl::InvalidArgumentError(
        StrCat(field, ": ", secret.size(), " bytes, at most ", kMaxSecretBytes));
  }
  for (size_t i = 0; i < secret.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(secret[i]);
    if (c < 0x21 || c > 0x7e) {
      // The offset only: the byte itself is part of the secret.
      return absl::InvalidArgumentError(
          StrCat(field, ": byte at offset ", i,
                 " is not printable ASCII (0x21..0x7e; coturn reads the secret as text)"));
    }
  }
  return absl::OkStatus();
}

std::optional<int64_t> Approach1Expiry(std::string_view username) {
  size_t colon = username.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 19) return std::nullopt;
  std::string_view digits = username.substr(0, colon), id = username.substr(colon + 1);
  if (id.empty() || id.size() > 128) return std::nullopt;
  int64_t expiry = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    if (expiry > (INT64_MAX - 9) / 10) return std::nullopt;
    expiry = expiry * 10 + (c - '0');
  }
  if (!std::all_of(id.begin(), id.end(), IsBase64UrlChar)) return std::nullopt;
  return expiry;
}

bool SyncAck::Covers(std::string_view realm) const {
  return realms.empty() || std::find(realms.begin(), realms.end(), realm) != realms.end();
}

absl::Status ValidateAcknowledge(const v1::AcknowledgeRequest& r) {
  const std::string& name = r.watcher_name();
  if (name.empty() || name.size() > 128 ||
      !std::all_of(name.begin(), name.end(), IsWatcherNameChar)) {
    return absl::InvalidArgumentError(
        "watcher_name: required, 1..128 characters of A-Z a-z 0-9 . _ : - (the name of its Watch)");
  }
  if (r.epoch().empty() || r.epoch().size() > 64) {
    return absl::InvalidArgumentError(
        "epoch: required, the epoch of the revision applied (at most 64 bytes)");
  }
  if (r.realms_size() > 1'000) {
    return absl::InvalidArgumentError(
        StrCat("realms: ", r.realms_size(), " entries, at most 1000"));
  }
  for (int i = 0; i < r.realms_size(); ++i) {
    if (auto s = ValidateRealm(r.realms(i), StrCat("realms[", i, "]")); !s.ok()) return s;
  }
  if (!r.farm().empty()) {
    if (auto s = ValidateScope(r.farm(), "farm"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

SyncAck ToSyncAck(const v1::AcknowledgeRequest& r, int64_t at_ms) {
  SyncAck a;
  a.name = r.watcher_name();
  a.epoch = r.epoch();
  a.revision = r.revision();
  a.realms.assign(r.realms().begin(), r.realms().end());
  std::sort(a.realms.begin(), a.realms.end());
  a.realms.erase(std::unique(a.realms.begin(), a.realms.end()), a.realms.end());
  a.farm = r.farm();
  a.at_ms = at_ms;
  return a;
}

void SyncRegistry::ForgetLocked(int64_t horizon) {
  absl::erase_if(acks_, [this, horizon](const auto& e) {
    if (e.second.at_ms >= horizon) return false;
    realms_ -= e.second.realms.size();
    return true;
  });
}

bool SyncRegistry::FitsLocked(const std::string& name, size_t realms) const {
  auto it = acks_.find(name);
  size_t replaced = it == acks_.end() ? 0 : it->second.realms.size();
  return realms_ - replaced + realms <= kMaxSyncRealms;
}

absl::Status SyncRegistry::Record(SyncAck ack) {
  std::lock_guard<std::mutex> lock(mu_);
  // Forget syncs silent for ten windows before refusing a new one.
  const int64_t horizon = ack.at_ms - 10 * kSyncAckWindowMs;
  if (acks_.size() >= kMaxSyncs && !acks_.contains(ack.name)) {
    ForgetLocked(horizon);
    if (acks_.size() >= kMaxSyncs) {
      return absl::ResourceExhaustedError(
          StrCat("watcher_name: ", kMaxSyncs, " syncs reported recently, at most ", kMaxSyncs));
    }
  }
  if (!FitsLocked(ack.name, ack.realms.size())) {
    ForgetLocked(horizon);
    if (!FitsLocked(ack.name, ack.realms.size())) {
      return absl::ResourceExhaustedError(StrCat("realms: the syncs' recent reports list ", realms_,
                                                 " realms, at most ", kMaxSyncRealms, " in all"));
    }
  }
  PutLocked(std::move(ack));
  return absl::OkStatus();
}

void SyncRegistry::PutLocked(SyncAck ack) {
  realms_ += ack.realms.size();
  auto it = acks_.find(ack.name);
  if (it != acks_.end()) {
    realms_ -= it->second.realms.size();
    it->second = std::move(ack);
    return;
  }
  std::string name = ack.name;
  acks_.emplace(std::move(name), std::move(ack));
}

void SyncRegistry::Merge(std::vector<SyncAck> acks) {
  std::lock_guard<std::mutex> lock(mu_);
  for (SyncAck& a : acks) {
    if (!FitsLocked(a.name, a.realms.size())) continue;
    auto it = acks_.find(a.name);
    if (it == acks_.end() ? acks_.size() >= kMaxSyncs : it->second.at_ms >= a.at_ms) continue;
    PutLocked(std::move(a));
  }
}

std::vector<SyncAck> SyncRegistry::Recent(int64_t now_ms, int64_t window_ms) const {
  std::vector<SyncAck> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, ack] : acks_) {
      if (ack.at_ms >= now_ms - window_ms) out.push_back(ack);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const SyncAck& a, const SyncAck& b) { return a.name < b.name; });
  return out;
}

StagingProgress Progress(const v1::SharedSecret& secret, Revision staged_revision,
                         const std::vector<SyncAck>& recent, std::string_view epoch,
                         const SecretPolicy& policy) {
  StagingProgress p;
  p.grace_ends_at_ms = secret.added_at_ms() + policy.stage_grace_ms;
  p.reports_complete_at_ms = policy.reports_complete_at_ms;
  for (const SyncAck& a : recent) {
    if (!a.Covers(secret.realm())) continue;
    if (a.epoch == epoch && a.revision >= staged_revision)
      p.acknowledged.push_back(a.name);
    else
      p.pending.push_back(a.name);
  }
  return p;
}

v1::SharedSecret Redacted(const v1::SharedSecret& secret) {
  v1::SharedSecret out = secret;
  out.clear_secret();
  return out;
}

std::string_view SecretStateName(v1::SecretState state) {
  // "SECRET_STATE_ACTIVE" -> "ACTIVE" (the generated name is static).
  std::string_view name = v1::SecretState_Name(state);
  constexpr std::string_view kPrefix = "SECRET_STATE_";
  if (name.starts_with(kPrefix)) name.remove_prefix(kPrefix.size());
  return name;
}

}  // namespace turnbroker::broker
