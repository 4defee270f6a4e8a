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
    changes_.push_back(Change{revision, std::move(record), nullptr});
  }
  response.set_revision(planned.empty() ? Next() - 1 : changes_.back().revision);
  response.set_applied(static_cast<uint32_t>(planned.size()));
  response.set_unchanged(unchanged);
  return response;
}

absl::StatusOr<v1::RevokeResponse> GroupPlanner::Revoke(const v1::RevokeRequest& request) {
  if (auto s = ValidateSelector(request.selector(), "selector"); !s.ok()) return s;
  if (auto s = ValidateReason(request.reason(), "reason"); !s.ok()) return s;
  const v1::Selector& selector = request.selector();

  // Live matches: the state's, as this group has changed them, plus what
  // this group made live.
  std::vector<RecordRef> matches;
  absl::flat_hash_set<Key> taken;
  for (RecordRef& r : state_.Matching(selector)) {
    Key key{r->realm(), r->username()};
    if (overlay_.contains(key)) continue;  // decided by the overlay below
    taken.insert(key);
    matches.push_back(std::move(r));
  }
  for (const auto& [key, pending] : overlay_) {
    if (pending.record && pending.record->expires_at_ms() > now_ &&
        SelectorMatches(selector, *pending.record) && taken.insert(key).second) {
      matches.push_back(pending.record);
    }
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
    changes_.push_back(Change{revision, RecordRef(), std::move(change)});
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
