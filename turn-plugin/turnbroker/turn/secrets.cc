#include "turnbroker/turn/secrets.h"

#include <algorithm>
#include <charconv>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/turn/schema.h"

namespace turnbroker::turn {
namespace {

constexpr size_t kMinSecretBytes = 32;
constexpr size_t kMaxSecretBytes = 256;
constexpr size_t kMaxIdBytes = 64;
constexpr std::string_view kLegacySuffix = "/legacy";
// How long a legacy secret whose record gives no credential lifetime is
// kept: the broker's default --max-ttl.
constexpr int64_t kDefaultCredentialTtlMs = 86'400'000;
// Logged values from the stream are cut to this length.
constexpr size_t kMaxLoggedBytes = 80;

bool IdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool ParseInt(std::string_view s, int64_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// The earlier of two drop times, 0 meaning never.
int64_t EarlierDrop(int64_t a, int64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

}  // namespace

std::string SecretField(const KnownSecret& s) {
  return StrCat(s.realm, "/", s.id, s.legacy ? kLegacySuffix : "");
}

std::string SecretValue(const KnownSecret& s) {
  return StrCat(s.drop_at_ms, "\t", s.max_credential_ttl_ms, "\t", s.secret);
}

bool ParseSecretEntry(std::string_view field, std::string_view value, KnownSecret* out) {
  out->legacy = field.size() > kLegacySuffix.size() &&
                field.substr(field.size() - kLegacySuffix.size()) == kLegacySuffix;
  if (out->legacy) field.remove_suffix(kLegacySuffix.size());
  size_t slash = field.find('/');
  if (slash == field.npos || slash == 0 || slash + 1 == field.size()) return false;
  out->realm = std::string(field.substr(0, slash));
  out->id = std::string(field.substr(slash + 1));
  size_t first = value.find('\t');
  if (first == value.npos) return false;
  size_t second = value.find('\t', first + 1);
  if (second == value.npos) return false;
  if (!ParseInt(value.substr(0, first), &out->drop_at_ms) ||
      !ParseInt(value.substr(first + 1, second - first - 1), &out->max_credential_ttl_ms)) {
    return false;
  }
  out->secret = std::string(value.substr(second + 1));
  return !out->secret.empty();
}

absl::Status ValidateSharedSecret(const v1::SharedSecret& s) {
  if (auto st = ValidateRealm(s.realm(), "secret.realm"); !st.ok()) return st;
  if (s.id().empty() || s.id().size() > kMaxIdBytes ||
      !std::all_of(s.id().begin(), s.id().end(), IdChar)) {
    return absl::InvalidArgumentError("secret.id: not 1..64 characters of [A-Za-z0-9._-]");
  }
  const std::string& b = s.secret();
  if (b.size() < kMinSecretBytes || b.size() > kMaxSecretBytes) {
    return absl::InvalidArgumentError(
        StrCat("secret.secret: ", b.size(), " bytes, not 32..256 (bytes not shown)"));
  }
  if (!std::all_of(b.begin(), b.end(), [](char c) { return c >= 0x21 && c <= 0x7e; })) {
    return absl::InvalidArgumentError(
        "secret.secret: not printable ASCII 0x21..0x7e (bytes not shown)");
  }
  if (s.expires_at_ms() < 0 || s.max_credential_ttl_ms() < 0) {
    return absl::InvalidArgumentError("secret: negative expires_at_ms or max_credential_ttl_ms");
  }
  return absl::OkStatus();
}

bool ParseRestUsername(std::string_view username, int64_t* expires_at_ms) {
  size_t colon = username.find(':');
  // At most 12 digits: Unix seconds up to the year 33658, and no overflow.
  if (colon == username.npos || colon == 0 || colon > 12 || colon + 1 == username.size()) {
    return false;
  }
  int64_t seconds = 0;
  if (!ParseInt(username.substr(0, colon), &seconds) || username[0] == '-' || username[0] == '+') {
    return false;
  }
  *expires_at_ms = seconds * 1000;
  return true;
}

SecretSet::SecretSet(std::vector<std::string> realms)
    : realms_(std::move(realms)), served_(realms_.begin(), realms_.end()) {}

bool SecretSet::Serves(std::string_view realm) const {
  return served_.contains(absl::string_view(realm.data(), realm.size()));
}

void SecretSet::Load(const std::vector<std::pair<std::string, std::string>>& entries) {
  secrets_.clear();
  AbandonSnapshot();
  for (const auto& [field, value] : entries) {
    KnownSecret s;
    if (!ParseSecretEntry(field, value, &s)) {
      LogWarn("malformed entry of the sync's secrets hash skipped")
          .Kv("field", std::string_view(field).substr(0, kMaxLoggedBytes));
      continue;
    }
    secrets_.insert_or_assign(field, std::move(s));
  }
}

void SecretSet::Put(KnownSecret s, UserDb::Transaction* txn) {
  std::string field = SecretField(s);
  txn->AddSecretMember(s.realm, s.secret);
  txn->RecordSecret(field, SecretValue(s));
  secrets_.insert_or_assign(std::move(field), std::move(s));
}

void SecretSet::Remove(const std::string& field, UserDb::Transaction* txn) {
  auto it = secrets_.find(field);
  if (it == secrets_.end()) return;
  KnownSecret gone = std::move(it->second);
  secrets_.erase(it);
  txn->ForgetSecret(field);
  bool held = std::any_of(secrets_.begin(), secrets_.end(), [&](const auto& e) {
    return e.second.realm == gone.realm && e.second.secret == gone.secret;
  });
  if (!held) txn->RemoveSecretMember(gone.realm, gone.secret);
}

void SecretSet::MakeLegacy(const std::string& field, int64_t now_ms, UserDb::Transaction* txn) {
  auto it = secrets_.find(field);
  if (it == secrets_.end() || it->second.legacy) return;
  KnownSecret s = std::move(it->second);
  secrets_.erase(it);
  txn->ForgetSecret(field);
  const int64_t ttl =
      s.max_credential_ttl_ms > 0 ? s.max_credential_ttl_ms : kDefaultCredentialTtlMs;
  s.drop_at_ms = EarlierDrop(s.drop_at_ms, now_ms + ttl);
  s.legacy = true;
  // An older legacy secret of the same id (a second epoch change) goes.
  Remove(SecretField(s), txn);
  Put(std::move(s), txn);
}

void SecretSet::Apply(const v1::Event& e, int64_t now_ms, UserDb::Transaction* txn,
                      SecretChanges* changes) {
  if (e.has_secret_retired()) {
    const v1::SecretRef& ref = e.secret_retired();
    ++changes->retired;
    if (!Serves(ref.realm())) return;  // retirements reach every watcher
    std::string field = StrCat(ref.realm(), "/", ref.id());
    if (!secrets_.contains(field)) {
      LogDebug("retired secret not known here").Kv("realm", ref.realm()).Kv("id", ref.id());
      return;
    }
    Remove(field, txn);
    unseen_.erase(field);
    ++changes->removed_retired;
    LogInfo("secret retired: removed from coturn's set")
        .Kv("realm", ref.realm())
        .Kv("id", ref.id())
        .Kv("revision", e.revision());
    return;
  }
  if (!e.has_secret()) return;
  const v1::SharedSecret& s = e.secret();
  absl::Status why = ValidateSharedSecret(s);
  if (why.ok() && !Serves(s.realm())) {
    why = absl::FailedPreconditionError("secret.realm: not served by this sync (--realm)");
  }
  if (!why.ok()) {
    ++changes->refused;
    LogWarn("secret refused")
        .Kv("revision", e.revision())
        .Kv("realm", std::string_view(s.realm()).substr(0, kMaxLoggedBytes))
        .Kv("id", std::string_view(s.id()).substr(0, kMaxLoggedBytes))
        .Kv("reason", std::string(why.message()));
    return;
  }
  KnownSecret known{s.realm(), s.id(), s.secret(), s.expires_at_ms(), s.max_credential_ttl_ms(),
                    false};
  const std::string field = SecretField(known);
  unseen_.erase(field);
  auto it = secrets_.find(field);
  if (it != secrets_.end() && it->second.secret != known.secret) {
    // Only a store made anew reuses an id: the old bytes may still sign
    // live credentials.
    LogWarn("secret id sent again with other bytes: the old ones kept as legacy")
        .Kv("realm", known.realm)
        .Kv("id", known.id);
    MakeLegacy(field, now_ms, txn);
  }
  // Sent again after an epoch change: no longer legacy.
  KnownSecret legacy_key = known;
  legacy_key.legacy = true;
  auto old = secrets_.find(SecretField(legacy_key));
  if (old != secrets_.end() && old->second.secret == known.secret) {
    txn->ForgetSecret(old->first);
    secrets_.erase(old);
  }
  if (known.drop_at_ms != 0 && known.drop_at_ms <= now_ms) {
    if (secrets_.contains(field)) {
      Remove(field, txn);
      ++changes->removed_expired;
    }
    LogInfo("secret expired: not in coturn's set").Kv("realm", known.realm).Kv("id", known.id);
    return;
  }
  const bool fresh = !secrets_.contains(field);
  Put(std::move(known), txn);
  ++changes->applied;
  if (fresh) {
    LogInfo("secret added to coturn's set")
        .Kv("realm", s.realm())
        .Kv("id", s.id())
        .Kv("state", v1::SecretState_Name(s.state()))
        .Kv("revision", e.revision());
  }
}

void SecretSet::BeginSnapshot(bool proof_of_revocation) {
  unseen_.clear();
  for (const auto& [field, s] : secrets_) {
    if (!s.legacy) unseen_.insert(field);
  }
  proof_ = proof_of_revocation;
  snapshot_active_ = true;
}

void SecretSet::AbandonSnapshot() {
  snapshot_active_ = false;
  proof_ = false;
  unseen_.clear();
}

void SecretSet::FinishSnapshot(
    int64_t now_ms, const std::vector<std::pair<std::string, std::vector<std::string>>>& members,
    UserDb::Transaction* txn, SecretChanges* changes) {
  absl::flat_hash_set<std::string> removed;  // "<realm>/<secret>" SREMed above
  for (const std::string& field : unseen_) {
    auto it = secrets_.find(field);
    if (it == secrets_.end()) continue;
    LogInfo(proof_ ? "secret gone while away: removed from coturn's set"
                   : "secret not in the new epoch's snapshot: kept until its credentials expire")
        .Kv("realm", it->second.realm)
        .Kv("id", it->second.id);
    if (proof_) {
      removed.insert(StrCat(it->second.realm, "/", it->second.secret));
      Remove(field, txn);
      ++changes->removed_reconciled;
    } else {
      MakeLegacy(field, now_ms, txn);
      ++changes->retained;
    }
  }
  for (const auto& realm_members : members) {
    // Not a structured binding: Clang 14 cannot capture one in a lambda.
    const std::string& realm = realm_members.first;
    size_t foreign = 0;
    for (const std::string& m : realm_members.second) {
      bool held = std::any_of(secrets_.begin(), secrets_.end(), [&](const auto& e) {
        return e.second.realm == realm && e.second.secret == m;
      });
      if (held || removed.contains(StrCat(realm, "/", m))) continue;
      txn->RemoveSecretMember(realm, m);
      ++foreign;
    }
    if (foreign > 0) {
      changes->removed_reconciled += foreign;
      LogWarn("members of coturn's secret set the broker does not know: removed")
          .Kv("realm", realm)
          .Kv("count", foreign);
    }
  }
  AbandonSnapshot();
}

void SecretSet::ExpireDue(int64_t now_ms, UserDb::Transaction* txn, SecretChanges* changes) {
  std::vector<std::string> due;
  for (const auto& [field, s] : secrets_) {
    if (s.drop_at_ms != 0 && s.drop_at_ms <= now_ms) due.push_back(field);
  }
  std::sort(due.begin(), due.end());
  for (const std::string& field : due) {
    const KnownSecret& s = secrets_.at(field);
    LogInfo(s.legacy ? "legacy secret's credentials expired: removed from coturn's set"
                     : "secret expired: removed from coturn's set")
        .Kv("realm", s.realm)
        .Kv("id", s.id);
    Remove(field, txn);
    unseen_.erase(field);
    ++changes->removed_expired;
  }
}

int64_t SecretSet::NextDropMs() const {
  int64_t next = 0;
  for (const auto& [field, s] : secrets_) next = EarlierDrop(next, s.drop_at_ms);
  return next;
}

std::vector<std::string> SecretSet::Ids(std::string_view realm) const {
  std::vector<std::string> out;
  for (const auto& [field, s] : secrets_) {
    if (s.realm == realm) out.push_back(s.legacy ? StrCat(s.id, kLegacySuffix) : s.id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace turnbroker::turn
