#include "turnbroker/turn/applier.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::turn {
namespace {

// Logged values from the stream are cut to this length.
constexpr size_t kMaxLoggedBytes = 80;

std::string_view Cut(std::string_view s) { return s.substr(0, kMaxLoggedBytes); }

}  // namespace

Applier::Applier(ApplierOptions options, UserDb* db, const LegacyIndex* legacy, const Clock* clock,
                 SyncMetrics* metrics, SecretSet* secrets)
    : options_(std::move(options)),
      realms_(options_.realms.begin(), options_.realms.end()),
      db_(db),
      legacy_(legacy),
      clock_(clock),
      metrics_(metrics),
      secrets_(secrets) {}

absl::Status Applier::CheckPut(const v1::Credential& c, int64_t now_ms) const {
  if (secrets_) {
    return absl::FailedPreconditionError(
        "put: a long-term credential, but this sync is in --auth-mode=shared-secret");
  }
  if (auto s = ValidateRealm(c.realm(), "realm"); !s.ok()) return s;
  if (!Serves(c.realm())) {
    return absl::FailedPreconditionError("realm: not served by this sync (--realm)");
  }
  if (auto s = ValidateUsername(c.username(), "username"); !s.ok()) return s;
  if (auto s = ValidateKey(c.key(), "key"); !s.ok()) return s;
  if (c.scopes_size() > 0 &&
      std::find(c.scopes().begin(), c.scopes().end(), options_.farm) == c.scopes().end()) {
    return absl::FailedPreconditionError("scopes: scoped to other farms than --farm");
  }
  if (c.expires_at_ms() <= 0) return absl::InvalidArgumentError("expires_at_ms: not set");
  // An expiry in the past is applied as it is: SET ... PXAT <past> removes
  // the key, which is what an expired credential means.
  (void)now_ms;
  return absl::OkStatus();
}

std::vector<std::string> Applier::RevocationCandidates(const v1::Revocation& r,
                                                       int64_t now_ms) const {
  std::vector<std::string> out;
  for (const v1::CredentialRef& ref : r.credentials()) {
    // Revocations reach every watcher; other realms are not ours to touch.
    if (Serves(ref.realm())) out.push_back(MemberName(ref.realm(), ref.username()));
  }
  const v1::Selector& selector = r.selector();
  if (selector.has_username()) {
    const v1::CredentialRef& ref = selector.username();
    if (!ref.realm().empty()) {
      if (Serves(ref.realm())) out.push_back(MemberName(ref.realm(), ref.username()));
    } else {
      for (const std::string& realm : options_.realms) {
        out.push_back(MemberName(realm, ref.username()));
      }
    }
  }
  for (std::string& m : legacy_->Match(selector, now_ms)) out.push_back(std::move(m));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void Applier::Refuse(const v1::Event& event, const absl::Status& why, AppliedBatch* batch) {
  ++batch->refused;
  metrics_->events_refused->Inc();
  const v1::Credential& c = event.put();
  LogWarn("record refused")
      .Kv("revision", event.revision())
      .Kv("realm", Cut(c.realm()))
      .Kv("username", Cut(c.username()))
      .Kv("reason", std::string(why.message()));
}

void Applier::QueueRestUsers(const v1::Revocation& r, int64_t now_ms, UserDb::Transaction* txn,
                             AppliedBatch* batch) {
  std::vector<std::string> members;
  auto add = [&](const v1::CredentialRef& ref) {
    int64_t expires_at_ms = 0;
    if (!ParseRestUsername(ref.username(), &expires_at_ms) || expires_at_ms <= now_ms) return;
    if (auto s = ValidateUsername(ref.username(), "username"); !s.ok()) return;
    if (ref.realm().empty()) {
      for (const std::string& realm : options_.realms) {
        members.push_back(MemberName(realm, ref.username()));
        txn->QueueCancellation(members.back(), expires_at_ms);
      }
    } else if (Serves(ref.realm())) {
      members.push_back(MemberName(ref.realm(), ref.username()));
      txn->QueueCancellation(members.back(), expires_at_ms);
    }
  };
  if (r.selector().has_username()) add(r.selector().username());
  for (const v1::CredentialRef& ref : r.credentials()) add(ref);
  for (std::string& m : members) batch->queued_members.push_back(std::move(m));
}

absl::Status Applier::Add(const google::protobuf::RepeatedPtrField<v1::Event>& events,
                          UserDb::Transaction* txn, AppliedBatch* batch) {
  const int64_t now = clock_->NowMs();
  // Which keys the revocations could delete are managed now (one read), with
  // their expiries (for the cancellation queue).
  std::vector<std::string> probe;
  for (const v1::Event& e : events) {
    if (!e.has_revoke()) continue;
    for (std::string& m : RevocationCandidates(e.revoke(), now)) probe.push_back(std::move(m));
  }
  absl::flat_hash_map<std::string, int64_t> live;  // managed, or put earlier in the batch
  if (!probe.empty()) {
    std::sort(probe.begin(), probe.end());
    probe.erase(std::unique(probe.begin(), probe.end()), probe.end());
    auto expiries = db_->ManagedExpiries(probe);
    if (!expiries.ok()) return expiries.status();
    for (size_t i = 0; i < probe.size(); ++i) {
      if ((*expiries)[i]) live[probe[i]] = *(*expiries)[i];
    }
  }

  absl::flat_hash_set<std::string> unretired;
  for (const v1::Event& e : events) {
    if (e.has_put()) {
      const v1::Credential& c = e.put();
      if (absl::Status why = CheckPut(c, now); !why.ok()) {
        Refuse(e, why, batch);
        continue;
      }
      txn->Put(c);
      std::string member = MemberName(c.realm(), c.username());
      live[member] = c.expires_at_ms();
      if (legacy_->Contains(member) && unretired.insert(member).second) {
        txn->Unretire(member);
        batch->unretired_members.push_back(member);
      }
      batch->put_members.push_back(std::move(member));
      ++batch->puts;
    } else if (e.has_revoke()) {
      for (const std::string& m : RevocationCandidates(e.revoke(), now)) {
        auto it = live.find(m);
        if (it == live.end()) continue;  // not a key this sync wrote
        txn->Remove(m);
        if (options_.queue_cancellations) txn->QueueCancellation(m, it->second);
        batch->removed_members.push_back(m);
        live.erase(it);
      }
      if (secrets_ && options_.queue_cancellations) QueueRestUsers(e.revoke(), now, txn, batch);
      batch->revoked_at_ms.push_back(e.revoke().revoked_at_ms());
      ++batch->revocations;
    } else if (secrets_ && (e.has_secret() || e.has_secret_retired())) {
      secrets_->Apply(e, now, txn, &batch->secrets);
    } else {
      // A kind this version does not know (proto compatibility rules): skip.
      LogDebug("event of unknown kind skipped").Kv("revision", e.revision());
    }
  }
  return absl::OkStatus();
}

}  // namespace turnbroker::turn
