#include "turnbroker/broker/planner.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::broker {

bool SelectorMatches(const v1::Selector& selector, const Record& record) {
  switch (selector.by_case()) {
    case v1::Selector::kUsername:
      return record.username() == selector.username().username() &&
             (selector.username().realm().empty() || record.realm() == selector.username().realm());
    case v1::Selector::kSubscriber:
      return record.subscriber() == selector.subscriber();
    case v1::Selector::kIssuer:
      return record.issuer() == selector.issuer();
    case v1::Selector::BY_NOT_SET:
      return false;
  }
  return false;
}

GroupPlanner::GroupPlanner(const CredentialState& state, const CredentialLimits& limits,
                           size_t max_batch)
    : GroupPlanner(state, limits, max_batch, state.head()) {}

GroupPlanner::GroupPlanner(const CredentialState& state, const CredentialLimits& limits,
                           size_t max_batch, Revision base)
    : state_(state),
      limits_(limits),
      max_batch_(max_batch),
      now_(state.clock()->NowMs()),
      base_(base) {}

RecordRef GroupPlanner::Current(std::string_view realm, std::string_view username) const {
  auto it = overlay_.find(Key{realm, username});
  if (it != overlay_.end()) return it->second.record;
  return state_.Find(realm, username);
}

bool GroupPlanner::Revoked(std::string_view realm, std::string_view username) const {
  for (const Key& key : {Key{realm, username}, Key{"", username}}) {
    auto it = overlay_.find(key);
    if (it != overlay_.end() && it->second.revoked_until > now_) return true;
  }
  return state_.IsRevoked(realm, username);
}

absl::StatusOr<v1::PublishResponse> GroupPlanner::Publish(const v1::PublishRequest& request) {
  const int n = request.credentials_size();
  if (n == 0) {
    return absl::InvalidArgumentError("credentials: must not be empty");
  }
  if (static_cast<size_t>(n) > max_batch_) {
    return absl::ResourceExhaustedError(StrCat("credentials: ", n, " in one request, at most ",
                                               max_batch_, " (broker flag --max-batch)"));
  }
  // (credential, issued_at) pairs that change the live set.
  std::vector<std::pair<const v1::Credential*, int64_t>> planned;
  planned.reserve(n);
  absl::flat_hash_map<Key, int> seen;  // key -> index in this request
  uint32_t unchanged = 0;
  for (int i = 0; i < n; ++i) {
    const v1::Credential& c = request.credentials(i);
    std::string field = StrCat("credentials[", i, "]");
    if (auto s = ValidateCredential(c, limits_, now_, field); !s.ok()) return s;
    auto [dup, inserted] = seen.emplace(Key{c.realm(), c.username()}, i);
    if (!inserted) {
      return absl::InvalidArgumentError(StrCat(field, ".username: '", c.username(),
                                               "' appears twice (also credentials[", dup->second,
                                               "])"));
    }
    if (Revoked(c.realm(), c.username())) {
      return absl::FailedPreconditionError(
          StrCat(field, ".username: '", c.username(), "' in realm '", c.realm(),
                 "' was revoked and cannot be published again before it would "
                 "have expired"));
    }
    RecordRef current = Current(c.realm(), c.username());
    int64_t issued_at = c.issued_at_ms() != 0 ? c.issued_at_ms()
                        : current             ? current->issued_at_ms()
                                              : now_;
    if (current) {
      if (current->key() != c.key()) {
        return absl::AlreadyExistsError(StrCat(field, ".username: '", c.username(),
                                               "' is live in realm '", c.realm(),
                                               "' with another key; revoke it first"));
      }
      // Re-published: a no-op if nothing changed (idempotent publish).
      if (current->credential_wire() == Record::Create(c, 0, issued_at)->credential_wire()) {
        ++unchanged;
        continue;
      }
    }
    planned.emplace_back(&c, issued_at);
  }
  // All valid: add the plan to the group.
  v1::PublishResponse response;
  for (const auto& [credential, issued_at] : planned) {
    Revision revision = Next();
    RecordRef record = Record::Create(*credential, revision, issued_at);
    overlay_[Key{record->realm(), record->username()}] = Pending{record, 0};
    changes_.push_back(Change{revision, std::move(record), nullptr, nullptr});
  }
  response.set_revision(planned.empty() ? Next() - 1 : changes_.back().revision);
  response.set_applied(static_cast<uint32_t>(planned.size()));
  response.set_unchanged(unchanged);
  return response;
}

absl::Status CheckEveryRealmScope(const v1::Selector& selector, std::string_view only_issuer,
                                  std::string_view other_issuer) {
  if (!selector.has_username() || !selector.username().realm().empty()) return absl::OkStatus();
  return absl::PermissionDeniedError(
      StrCat("selector.username: matches a credential issued by '", other_issuer,
             "', not by this client ('", only_issuer,
             "'); give the realm, or only an operator revokes it in every realm"));
}

absl::StatusOr<v1::RevokeResponse> GroupPlanner::Revoke(const v1::RevokeRequest& request,
                                                        std::string_view only_issuer) {
  if (auto s = ValidateSelector(request.selector(), "selector"); !s.ok()) return s;
  if (auto s = ValidateReason(request.reason(), "reason"); !s.ok()) return s;
  const v1::Selector& selector = request.selector();

  // Live matches: the state's, as this group has changed them, plus what
  // this group made live.
  std::vector<RecordRef> matches;
  absl::flat_hash_set<Key> taken;
  // An issuer whose credential the scope left out (a copy: the record may
  // be gone from the state once its reference is dropped).
  std::string other;
  auto mine = [only_issuer, &other](const Record& r) {
    if (only_issuer.empty() || r.issuer() == only_issuer) return true;
    if (other.empty()) other = std::string(r.issuer());
    return false;
  };
  for (RecordRef& r : state_.Matching(selector)) {
    Key key{r->realm(), r->username()};
    if (overlay_.contains(key)) continue;  // decided by the overlay below
    if (!mine(*r)) continue;
    taken.insert(key);
    matches.push_back(std::move(r));
  }
  for (const auto& [key, pending] : overlay_) {
    if (pending.record && pending.record->expires_at_ms() > now_ &&
        SelectorMatches(selector, *pending.record) && mine(*pending.record) &&
        taken.insert(key).second) {
      matches.push_back(pending.record);
    }
  }
  if (!other.empty()) {
    if (auto s = CheckEveryRealmScope(selector, only_issuer, other); !s.ok()) return s;
  }
  if (matches.empty() && !only_issuer.empty()) {
    // Nothing of this publisher's is live there (any more): nothing to
    // record, and no tombstone for a username that may be another's.
    v1::RevokeResponse response;
    response.set_revision(Next() - 1);
    response.set_revoked(0);
    return response;
  }
  std::sort(matches.begin(), matches.end(), [](const RecordRef& a, const RecordRef& b) {
    return std::pair(a->realm(), a->username()) < std::pair(b->realm(), b->username());
  });

  // A revocation of many credentials (by issuer, by subscriber) is split into
  // consecutive Revocation events of at most kMaxCredentialsPerRevocation
  // each: one event must fit in one Watch frame, which must fit in the
  // largest message gRPC will send. They commit together (same group).
  v1::RevokeResponse response;
  size_t next = 0;
  do {
    auto change = std::make_shared<RevocationChange>();
    v1::Revocation& revocation = change->revocation;
    *revocation.mutable_selector() = selector;
    revocation.set_reason(request.reason());
    revocation.set_revoked_at_ms(now_);
    const size_t end = std::min(matches.size(), next + kMaxCredentialsPerRevocation);
    for (; next < end; ++next) {
      const RecordRef& r = matches[next];
      v1::CredentialRef* ref = revocation.add_credentials();
      ref->set_realm(std::string(r->realm()));
      ref->set_username(std::string(r->username()));
      ref->set_expires_at_ms(r->expires_at_ms());
      overlay_[Key{ref->realm(), ref->username()}] = Pending{RecordRef(), r->expires_at_ms()};
    }
    Revision revision = Next();
    v1::Event event;
    event.set_revision(revision);
    *event.mutable_revoke() = revocation;
    event.SerializeToString(&change->event_wire);
    changes_.push_back(Change{revision, RecordRef(), std::move(change), nullptr});
    response.set_revision(revision);
  } while (next < matches.size());
  if (matches.empty() && selector.has_username()) {
    overlay_[Key{selector.username().realm(), selector.username().username()}] =
        Pending{RecordRef(), now_ + limits_.max_ttl_ms};
  }
  response.set_revoked(static_cast<uint32_t>(matches.size()));
  return response;
}

}  // namespace turnbroker::broker

namespace turnbroker::broker {

absl::StatusOr<v1::RevokeResponse> GroupPlanner::RevokeMinted(const v1::RevokeRequest& request,
                                                              int64_t until_ms) {
  if (auto s = ValidateSelector(request.selector(), "selector"); !s.ok()) return s;
  if (auto s = ValidateReason(request.reason(), "reason"); !s.ok()) return s;
  const v1::CredentialRef& ref = request.selector().username();
  // Published (approach 2) under the same name since the service looked:
  // not the minter's to revoke.
  if (Current(ref.realm(), ref.username())) {
    return absl::PermissionDeniedError(
        StrCat("selector.username: '", ref.username(), "' is live in realm '", ref.realm(),
               "' as a published credential; a minter revokes its approach-1 usernames only"));
  }
  auto change = std::make_shared<RevocationChange>();
  v1::Revocation& revocation = change->revocation;
  *revocation.mutable_selector() = request.selector();
  revocation.set_reason(request.reason());
  revocation.set_revoked_at_ms(now_);
  v1::CredentialRef* listed = revocation.add_credentials();
  listed->set_realm(ref.realm());
  listed->set_username(ref.username());
  listed->set_expires_at_ms(until_ms);
  overlay_[Key{listed->realm(), listed->username()}] = Pending{RecordRef(), until_ms};
  Revision revision = Next();
  v1::Event event;
  event.set_revision(revision);
  *event.mutable_revoke() = revocation;
  event.SerializeToString(&change->event_wire);
  changes_.push_back(Change{revision, RecordRef(), std::move(change), nullptr});
  v1::RevokeResponse response;
  response.set_revision(revision);
  response.set_revoked(1);
  return response;
}

void GroupPlanner::SetSecretPolicy(const SecretPolicy& policy, std::vector<SyncAck> recent_syncs) {
  secret_policy_ = policy;
  recent_syncs_ = std::move(recent_syncs);
}

SecretEntryRef GroupPlanner::CurrentSecret(const std::string& realm, const std::string& id) const {
  auto it = secret_overlay_.find(std::pair(realm, id));
  if (it != secret_overlay_.end()) return it->second;
  return state_.FindSecret(realm, id);
}

std::vector<SecretEntryRef> GroupPlanner::RealmSecrets(const std::string& realm) const {
  std::vector<SecretEntryRef> out;
  for (SecretEntryRef& e : state_.Secrets(realm)) {
    if (!secret_overlay_.contains(std::pair(e->secret().realm(), e->secret().id())))
      out.push_back(std::move(e));
  }
  for (const auto& [key, e] : secret_overlay_) {
    if (e && key.first == realm) out.push_back(e);
  }
  return out;
}

SecretEntryRef GroupPlanner::PlanSecret(const SecretEntryRef& previous, v1::SharedSecret secret,
                                        bool retired) {
  Revision revision = Next();
  std::pair<std::string, std::string> key(secret.realm(), secret.id());
  auto change = MakeSecretChange(std::move(secret), retired, revision,
                                 previous ? previous->staged_revision : revision);
  changes_.push_back(Change{revision, RecordRef(), nullptr, change});
  SecretEntryRef entry;
  if (!retired) {
    auto e = std::make_shared<SecretEntry>();
    e->last = change;
    e->revision = revision;
    e->staged_revision = previous ? previous->staged_revision : revision;
    entry = std::move(e);
  }
  secret_overlay_[key] = entry;
  return entry;
}

absl::Status GroupPlanner::NoSuchSecret(const v1::SharedSecret& ref) const {
  std::string elsewhere;
  for (const std::string& realm : state_.RealmsWithSecret(ref.id(), ref.realm())) {
    StrAppend(&elsewhere, elsewhere.empty() ? "" : ", ", "'", realm, "'");
  }
  return absl::NotFoundError(
      StrCat("ref.id: no secret '", ref.id(), "' in realm '", ref.realm(), "'",
             elsewhere.empty() ? " (unknown, retired or expired)"
                               : StrCat(" (a secret '", ref.id(), "' is known in realm ", elsewhere,
                                        ": the realm does not match)")));
}

absl::StatusOr<v1::SecretResponse> GroupPlanner::Secret(const SecretCommand& command) {
  const v1::SharedSecret& s = command.secret;
  const char* prefix = command.kind == SecretCommand::kAdd ? "secret" : "ref";
  if (auto st = ValidateRealm(s.realm(), StrCat(prefix, ".realm")); !st.ok()) return st;
  if (auto st = ValidateSecretId(s.id(), StrCat(prefix, ".id")); !st.ok()) return st;
  switch (command.kind) {
    case SecretCommand::kAdd:
      return AddSecret(s);
    case SecretCommand::kActivate:
      return ActivateSecret(s);
    case SecretCommand::kRetire:
      return RetireSecret(s, command.force);
  }
  return absl::InvalidArgumentError("unknown secret command");
}

namespace {

v1::SecretResponse SecretAnswer(Revision revision, const v1::SharedSecret& secret) {
  v1::SecretResponse response;
  response.set_revision(revision);
  *response.mutable_secret() = Redacted(secret);
  return response;
}

std::string MsText(int64_t ms) { return StrCat(ms / 1000, " s"); }

}  // namespace

absl::StatusOr<v1::SecretResponse> GroupPlanner::AddSecret(const v1::SharedSecret& given) {
  if (auto st = ValidateSecretBytes(given.secret(), "secret.secret"); !st.ok()) return st;
  if (given.not_before_ms() < 0) {
    return absl::InvalidArgumentError("secret.not_before_ms: negative");
  }
  if (given.expires_at_ms() < 0) {
    return absl::InvalidArgumentError("secret.expires_at_ms: negative");
  }
  if (given.expires_at_ms() != 0 && given.expires_at_ms() <= now_) {
    return absl::InvalidArgumentError(StrCat("secret.expires_at_ms: ", given.expires_at_ms(),
                                             " is not in the future (now ", now_, ")"));
  }
  if (given.expires_at_ms() != 0 && given.expires_at_ms() <= given.not_before_ms()) {
    return absl::InvalidArgumentError("secret.expires_at_ms: not after secret.not_before_ms");
  }
  if (SecretEntryRef known = CurrentSecret(given.realm(), given.id())) {
    return absl::AlreadyExistsError(StrCat("secret.id: '", given.id(), "' is known in realm '",
                                           given.realm(), "' (",
                                           SecretStateName(known->secret().state()),
                                           "); an id is not reused while its secret is known"));
  }
  std::vector<SecretEntryRef> realm_secrets = RealmSecrets(given.realm());
  if (realm_secrets.size() >= kMaxSecretsPerRealm) {
    return absl::FailedPreconditionError(StrCat("secret.realm: '", given.realm(), "' has ",
                                                realm_secrets.size(), " known secrets, at most ",
                                                kMaxSecretsPerRealm, "; retire one first"));
  }
  for (const SecretEntryRef& e : realm_secrets) {
    // coturn's set would hold them as one member: retiring one would
    // retire both.
    if (e->secret().secret() == given.secret()) {
      return absl::AlreadyExistsError(StrCat("secret.secret: the same bytes as secret '",
                                             e->secret().id(), "' of realm '", given.realm(),
                                             "'; every secret must be new"));
    }
  }
  v1::SharedSecret secret;
  secret.set_realm(given.realm());
  secret.set_id(given.id());
  secret.set_secret(given.secret());
  secret.set_not_before_ms(given.not_before_ms());
  secret.set_expires_at_ms(given.expires_at_ms());
  secret.set_state(v1::SECRET_STATE_STAGED);
  secret.set_added_at_ms(now_);
  secret.set_max_credential_ttl_ms(secret_policy_.max_credential_ttl_ms);
  SecretEntryRef entry = PlanSecret(nullptr, std::move(secret), false);
  return SecretAnswer(entry->revision, entry->secret());
}

absl::StatusOr<v1::SecretResponse> GroupPlanner::ActivateSecret(const v1::SharedSecret& ref) {
  SecretEntryRef current = CurrentSecret(ref.realm(), ref.id());
  if (!current) return NoSuchSecret(ref);
  const v1::SharedSecret& cs = current->secret();
  if (cs.state() == v1::SECRET_STATE_ACTIVE) {
    // Already active: nothing to write.
    return SecretAnswer(Next() - 1, cs);
  }
  if (cs.not_before_ms() > now_) {
    // Agents only mint with the ACTIVE secret and never before its
    // not_before_ms: activated now, every REGISTER would get 503 until then.
    return absl::FailedPreconditionError(
        StrCat("ref.id: secret '", ref.id(), "' of realm '", ref.realm(),
               "' may not be used before its not_before_ms ", cs.not_before_ms(),
               " (Unix ms); activation is allowed in ", MsText(cs.not_before_ms() - now_ + 999)));
  }
  if (cs.state() == v1::SECRET_STATE_STAGED) {
    StagingProgress progress =
        Progress(cs, current->staged_revision, recent_syncs_, state_.epoch(), secret_policy_);
    if (!progress.Ready(now_) && progress.pending.empty()) {
      return absl::FailedPreconditionError(StrCat(
          "ref.id: secret '", ref.id(), "' of realm '", ref.realm(),
          "': the broker restarted and keeps the TURN syncs' reports in memory; it waits ",
          MsText(secret_policy_.ack_window_ms),
          " (one report window) to hear from every sync before an activation; activation is "
          "allowed in ",
          MsText(std::min(progress.reports_complete_at_ms, progress.grace_ends_at_ms) - now_ + 999),
          " if no sync is pending then"));
    }
    if (!progress.Ready(now_)) {
      std::string pending, acknowledged;
      for (const auto& n : progress.pending) StrAppend(&pending, pending.empty() ? "" : ", ", n);
      for (const auto& n : progress.acknowledged)
        StrAppend(&acknowledged, acknowledged.empty() ? "" : ", ", n);
      return absl::FailedPreconditionError(StrCat(
          "ref.id: secret '", ref.id(), "' of realm '", ref.realm(), "' was staged at revision ",
          current->staged_revision, " and TURN syncs have not acknowledged it yet: ", pending,
          " (acknowledged: ", acknowledged.empty() ? "none" : acknowledged,
          "); activation is allowed once they have, or in ",
          MsText(progress.grace_ends_at_ms - now_ + 999), " (--secret-stage-grace ",
          MsText(secret_policy_.stage_grace_ms), " after staging)"));
    }
  }
  // The active secret, if any, is superseded first: at most one ACTIVE per
  // realm at every revision.
  for (const SecretEntryRef& e : RealmSecrets(ref.realm())) {
    if (e->secret().state() != v1::SECRET_STATE_ACTIVE) continue;
    v1::SharedSecret superseded = e->secret();
    superseded.set_state(v1::SECRET_STATE_SUPERSEDED);
    superseded.set_superseded_at_ms(now_);
    PlanSecret(e, std::move(superseded), false);
  }
  v1::SharedSecret active = cs;
  active.set_state(v1::SECRET_STATE_ACTIVE);
  active.set_activated_at_ms(now_);
  active.set_superseded_at_ms(0);
  SecretEntryRef entry = PlanSecret(current, std::move(active), false);
  return SecretAnswer(entry->revision, entry->secret());
}

absl::StatusOr<v1::SecretResponse> GroupPlanner::RetireSecret(const v1::SharedSecret& ref,
                                                              bool force) {
  SecretEntryRef current = CurrentSecret(ref.realm(), ref.id());
  if (!current) return NoSuchSecret(ref);
  const v1::SharedSecret& cs = current->secret();
  if (cs.state() == v1::SECRET_STATE_ACTIVE) {
    return absl::FailedPreconditionError(
        StrCat("ref.id: secret '", ref.id(), "' is the ACTIVE secret of realm '", ref.realm(),
               "': agents mint with it; activate another secret first"));
  }
  if (cs.state() == v1::SECRET_STATE_SUPERSEDED && !force) {
    int64_t valid_until = cs.superseded_at_ms() + cs.max_credential_ttl_ms();
    if (now_ < valid_until) {
      return absl::FailedPreconditionError(StrCat(
          "ref.id: secret '", ref.id(), "' of realm '", ref.realm(), "' was superseded ",
          MsText(now_ - cs.superseded_at_ms()),
          " ago; credentials minted with it may be valid for ", MsText(valid_until - now_ + 999),
          " more (max_credential_ttl ", MsText(cs.max_credential_ttl_ms()),
          "); retire it then, or now with force (those credentials are then refused)"));
    }
  }
  Revision revision = Next();
  PlanSecret(current, cs, true);
  return SecretAnswer(revision, cs);
}

}  // namespace turnbroker::broker
