// Turns Publish and Revoke requests into changes, against the state plus the
// changes planned earlier in the same commit group (so a group commits many
// requests at once yet each sees the ones before it).
//
// A request is all-or-nothing: on error it plans nothing and the group goes
// on. Not thread-safe; used by the commit thread only.
#ifndef TURNBROKER_BROKER_PLANNER_H_
#define TURNBROKER_BROKER_PLANNER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "turnbroker/broker/state.h"
#include "turnbroker/common/credential.h"

namespace turnbroker::broker {

// The most credentials one Revocation event lists. A revocation matching
// more becomes several events at consecutive revisions of the same commit
// (so no event outgrows a Watch frame or gRPC's message size limit).
inline constexpr size_t kMaxCredentialsPerRevocation = 10'000;

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
  absl::StatusOr<v1::RevokeResponse> Revoke(const v1::RevokeRequest& request);

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
  bool Revoked(std::string_view realm, std::string_view username) const;
  Revision Next() const { return base_ + changes_.size() + 1; }

  const CredentialState& state_;
  const CredentialLimits limits_;
  const size_t max_batch_;
  const int64_t now_;
  const Revision base_;
  std::vector<Change> changes_;
  absl::flat_hash_map<Key, Pending> overlay_;
};

// Whether `record` is covered by `selector`.
bool SelectorMatches(const v1::Selector& selector, const Record& record);

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_PLANNER_H_
