// Turns Publish and Revoke requests into changes, against the state plus the
// changes planned earlier in the same commit group (so a group commits many
// requests at once yet each sees the ones before it).
//
// A request is all-or-nothing: on error it plans nothing and the group goes
// on. Not thread-safe; used by the commit thread only.
#ifndef TURNBROKER_BROKER_PLANNER_H_
#define TURNBROKER_BROKER_PLANNER_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "turnbroker/broker/secrets.h"
#include "turnbroker/broker/state.h"
#include "turnbroker/common/credential.h"

namespace turnbroker::broker {

// The most credentials one Revocation event lists. A revocation matching
// more becomes several events at consecutive revisions of the same commit
// (so no event outgrows a Watch frame or gRPC's message size limit).
inline constexpr size_t kMaxCredentialsPerRevocation = 10'000;

// A publisher's (`only_issuer`) revocation of a username in every realm
// that also matches a credential of `other_issuer`: PERMISSION_DENIED. A
// TURN sync applies that selector to the username in every realm it
// serves, so it would remove the other issuer's credential there while the
// broker kept it live. OK for any other selector.
absl::Status CheckEveryRealmScope(const v1::Selector& selector, std::string_view only_issuer,
                                  std::string_view other_issuer);

class GroupPlanner {
 public:
  // Plans revisions from state.head() + 1 on.
  GroupPlanner(const CredentialState& state, const CredentialLimits& limits, size_t max_batch);
  // Plans revisions from base + 1 on (a store whose state is written by
  // another thread reads the head once and commits only if it still holds).
  GroupPlanner(const CredentialState& state, const CredentialLimits& limits, size_t max_batch,
               Revision base);

  // INVALID_ARGUMENT names the field ("credentials[3].key: ..."),
  // ALREADY_EXISTS: the username is live with another key,
  // FAILED_PRECONDITION: the username is revoked, RESOURCE_EXHAUSTED: batch
  // too large. The response's epoch is left for the caller. A Revoke plans
  // one change per kMaxCredentialsPerRevocation matches (at least one); its
  // response has the last revision and the total revoked.
  absl::StatusOr<v1::PublishResponse> Publish(const v1::PublishRequest& request);
  // A non-empty `only_issuer` leaves the credentials of every other issuer
  // alone, and records nothing (no event, no tombstone) when none of its
  // own matches.
  absl::StatusOr<v1::RevokeResponse> Revoke(const v1::RevokeRequest& request,
                                            std::string_view only_issuer = {});
  // A minter's revocation of one approach-1 username (checked by the
  // service): listed in the Revocation with `until_ms`, the expiry in the
  // username, so its tombstone lasts until then. PERMISSION_DENIED if the
  // username is live as a published credential.
  absl::StatusOr<v1::RevokeResponse> RevokeMinted(const v1::RevokeRequest& request,
                                                  int64_t until_ms);

  // Shared secrets. Set the policy, and for activations the syncs that
  // reported recently, before planning them.
  void SetSecretPolicy(const SecretPolicy& policy, std::vector<SyncAck> recent_syncs);
  // Errors as CredentialBroker.AddSecret/ActivateSecret/RetireSecret: every
  // message names the field and none carries secret bytes. The response's
  // epoch is left for the caller.
  absl::StatusOr<v1::SecretResponse> Secret(const SecretCommand& command);

  const std::vector<Change>& changes() const { return changes_; }
  std::vector<Change> TakeChanges() { return std::move(changes_); }

 private:
  // What this group has done to one (realm, username) so far.
  struct Pending {
    RecordRef record;  // live after the group (null: revoked)
    int64_t revoked_until = 0;
  };
  // Views into records and revocations of this group, or into requests:
  // all outlive the planner.
  using Key = std::pair<std::string_view, std::string_view>;

  RecordRef Current(std::string_view realm, std::string_view username) const;
  // A known secret as this group has left it (null: unknown or retired).
  SecretEntryRef CurrentSecret(const std::string& realm, const std::string& id) const;
  // The realm's known secrets as this group has left them.
  std::vector<SecretEntryRef> RealmSecrets(const std::string& realm) const;
  // Plans the secret's new state (or retirement) at the next revision.
  SecretEntryRef PlanSecret(const SecretEntryRef& previous, v1::SharedSecret secret, bool retired);
  absl::StatusOr<v1::SecretResponse> AddSecret(const v1::SharedSecret& secret);
  absl::StatusOr<v1::SecretResponse> ActivateSecret(const v1::SharedSecret& ref);
  absl::StatusOr<v1::SecretResponse> RetireSecret(const v1::SharedSecret& ref, bool force);
  absl::Status NoSuchSecret(const v1::SharedSecret& ref) const;
  bool Revoked(std::string_view realm, std::string_view username) const;
  Revision Next() const { return base_ + changes_.size() + 1; }

  const CredentialState& state_;
  const CredentialLimits limits_;
  const size_t max_batch_;
  const int64_t now_;
  const Revision base_;
  std::vector<Change> changes_;
  absl::flat_hash_map<Key, Pending> overlay_;
  SecretPolicy secret_policy_;
  std::vector<SyncAck> recent_syncs_;
  // (realm, id) -> the secret as this group left it; null: retired.
  absl::flat_hash_map<std::pair<std::string, std::string>, SecretEntryRef> secret_overlay_;
};

// Whether `record` is covered by `selector`.
bool SelectorMatches(const v1::Selector& selector, const Record& record);

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_PLANNER_H_
