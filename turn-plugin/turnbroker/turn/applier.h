// Turns Watch events into writes of one UserDb transaction, in event order:
// a put becomes SET coturn-key hex PXAT expires_at (and index entries); a
// revocation deletes the keys it lists and the legacy keys its selector
// covers, but only keys this sync manages (it never deletes a key it did not
// write). In shared-secret mode (a SecretSet given) secret events go to the
// SecretSet, puts are refused, and a revocation of an approach-1 username
// ("<expiry>:<id>", docs/approach1.md) queues it for ending its coturn
// sessions (there is no key to delete: coturn recomputes its password). Records it must not apply
// (a realm it does not serve, another farm's scope, a malformed username or key) are refused with a
// log line and a metric, and skipped: they never stop the sync.
//
// Not thread-safe: used by the sync's one applying thread.
#ifndef TURNBROKER_TURN_APPLIER_H_
#define TURNBROKER_TURN_APPLIER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/turn/legacy_index.h"
#include "turnbroker/turn/secrets.h"
#include "turnbroker/turn/sync_metrics.h"
#include "turnbroker/turn/userdb.h"

namespace turnbroker::turn {

struct ApplierOptions {
  // Realms served. Records of other realms are refused.
  std::vector<std::string> realms;
  // This farm's name: a scoped record for other farms is refused.
  std::string farm;
  // Queue the users of deleted keys for ending their coturn sessions.
  bool queue_cancellations = false;
};

// What a batch of events does once its transaction commits.
struct AppliedBatch {
  size_t puts = 0;
  size_t revocations = 0;
  size_t refused = 0;
  std::vector<std::string> put_members;
  std::vector<std::string> removed_members;
  std::vector<std::string> unretired_members;  // legacy keys sent again
  std::vector<int64_t> revoked_at_ms;
  // Shared-secret mode: approach-1 users queued for session cancellation.
  std::vector<std::string> queued_members;
  SecretChanges secrets;
};

class Applier {
 public:
  // Everything must outlive the applier. `secrets`: shared-secret mode
  // (null: per-credential).
  Applier(ApplierOptions options, UserDb* db, const LegacyIndex* legacy, const Clock* clock,
          SyncMetrics* metrics, SecretSet* secrets = nullptr);

  // Adds the writes of `events` to `transaction`. Reads Redis once (which of
  // the revoked keys it manages) when the batch holds revocations; a Redis
  // error is returned and nothing must be committed.
  absl::Status Add(const google::protobuf::RepeatedPtrField<v1::Event>& events,
                   UserDb::Transaction* transaction, AppliedBatch* batch);

  bool Serves(std::string_view realm) const {
    return realms_.contains(absl::string_view(realm.data(), realm.size()));
  }

 private:
  // OK, or why the put is refused.
  absl::Status CheckPut(const v1::Credential& credential, int64_t now_ms) const;
  // Members a revocation may delete: its list, its username selector
  // (managed keys in served realms), and the legacy keys of its selector.
  std::vector<std::string> RevocationCandidates(const v1::Revocation& revocation,
                                                int64_t now_ms) const;
  void Refuse(const v1::Event& event, const absl::Status& why, AppliedBatch* batch);
  // Shared-secret mode: queues the approach-1 usernames a revocation names.
  void QueueRestUsers(const v1::Revocation& revocation, int64_t now_ms,
                      UserDb::Transaction* transaction, AppliedBatch* batch);

  const ApplierOptions options_;
  const absl::flat_hash_set<std::string> realms_;
  UserDb* const db_;
  const LegacyIndex* const legacy_;
  const Clock* const clock_;
  SyncMetrics* const metrics_;
  SecretSet* const secrets_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_APPLIER_H_
