// Reconciles the managed keys with a snapshot. At SNAPSHOT_BEGIN it notes
// the keys this sync manages; every put of the snapshot (and of the changes
// sent with it) marks its key as seen; at SYNCED the keys not seen are no
// longer live at the broker:
//   * same epoch: they were revoked while the sync was away: delete them
//     (keys of the legacy set excepted: the broker never knew them);
//   * epoch changed, or the broker is behind the stored revision: the
//     snapshot is no proof of revocation (docs/design.md, The TURN side): keep them, as legacy
//     keys, to which revocation selectors still apply.
// Keys the sync never wrote are never in its index, so never touched.
//
// Not thread-safe: used by the sync's one applying thread.
#ifndef TURNBROKER_TURN_RECONCILER_H_
#define TURNBROKER_TURN_RECONCILER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/turn/legacy_index.h"
#include "turnbroker/turn/userdb.h"

namespace turnbroker::turn {

// What SYNCED does to the keys the snapshot did not hold.
struct Reconciliation {
  std::vector<ManagedKey> removed;  // deleted: revoked while away
  std::vector<LegacyKey> retained;  // kept as legacy
};

class Reconciler {
 public:
  Reconciler(UserDb* db, const Clock* clock);

  // A snapshot starts. `proof_of_revocation`: whether a key missing from it
  // was revoked (same epoch) or may just be unknown (new epoch). Reads the
  // managed index (Redis errors are returned; then call Abort).
  absl::Status Begin(bool proof_of_revocation);
  bool active() const { return active_; }
  bool proof_of_revocation() const { return proof_; }

  // Committed puts and removals between Begin and Finish.
  void Seen(const std::vector<std::string>& members);

  // SYNCED: adds the removal or retirement of the keys not seen to
  // `transaction` and returns them; End() after the commit.
  Reconciliation Finish(const LegacyIndex& legacy, bool queue_cancellations,
                        UserDb::Transaction* transaction);
  // The snapshot is over (committed, or the stream broke).
  void End();

 private:
  UserDb* const db_;
  const Clock* const clock_;
  bool active_ = false;
  bool proof_ = false;
  // Managed keys at SNAPSHOT_BEGIN not seen since, by member.
  absl::flat_hash_map<std::string, ManagedKey> unseen_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_RECONCILER_H_
