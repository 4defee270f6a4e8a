// The shared secrets of approach 1 (docs/approach1.md) as a sync in
// --auth-mode=shared-secret keeps them: coturn's set
// `turn/realm/<realm>/secret` holds exactly the realm's secrets that are
// known to the broker (STAGED, ACTIVE, SUPERSEDED) and not expired.
//
//   Event.secret          SADD to the set; recorded in the sync's `secrets`
//                         hash (the bytes are needed again at retirement,
//                         whose event names only the id)
//   Event.secret_retired  SREM, forgotten
//   expires_at_ms         SREM at that time (ExpireDue, run by a timer)
//   SYNCED (snapshot)     a secret not sent again since SNAPSHOT_BEGIN:
//                         removed (same epoch), or kept as "legacy" until
//                         every credential minted with it has expired
//                         (another epoch: the broker may have lost it, and
//                         removing it would refuse every client); members of
//                         the set the sync does not know are removed
//
// A secret's bytes are never logged: log lines name the realm and the id.
// Writes go into the caller's UserDb transaction; the in-memory view changes
// at once, so a failed commit must be followed by Load (the sync reloads
// everything from Redis after a failure, as for credentials).
//
// Not thread-safe: the sync serialises its callers.
#ifndef TURNBROKER_TURN_SECRETS_H_
#define TURNBROKER_TURN_SECRETS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "turnbroker/turn/userdb.h"

namespace turnbroker::turn {

// A secret the sync wrote to a set.
struct KnownSecret {
  std::string realm;
  std::string id;
  std::string secret;
  // When it leaves the set (Unix ms; 0: never): its expires_at_ms, or for a
  // legacy secret the end of its credentials' longest lifetime.
  int64_t drop_at_ms = 0;
  int64_t max_credential_ttl_ms = 0;
  bool legacy = false;
};

// The `secrets` hash: field "<realm>/<id>" ("<realm>/<id>/legacy" for a
// legacy one; neither a realm nor an id holds '/'), value
// "<drop_at_ms>\t<max_credential_ttl_ms>\t<secret>" (a secret is printable
// ASCII without blanks).
std::string SecretField(const KnownSecret& secret);
std::string SecretValue(const KnownSecret& secret);
// False if the field or value is malformed.
bool ParseSecretEntry(std::string_view field, std::string_view value, KnownSecret* out);

// OK, or INVALID_ARGUMENT naming the field (never quoting the bytes): a
// secret is 32..256 bytes of printable ASCII (0x21..0x7e), an id 1..64 of
// [A-Za-z0-9._-].
absl::Status ValidateSharedSecret(const v1::SharedSecret& secret);

// An approach-1 username "<expiry unix seconds>:<id>": its expiry in Unix ms,
// or false if `username` is not in that form.
bool ParseRestUsername(std::string_view username, int64_t* expires_at_ms);

// What changed in one transaction, for metrics and logs.
struct SecretChanges {
  size_t applied = 0;  // Event.secret written
  size_t retired = 0;  // Event.secret_retired applied (known or not)
  size_t refused = 0;
  size_t removed_retired = 0;
  size_t removed_expired = 0;
  size_t removed_reconciled = 0;  // not in a same-epoch snapshot, or unknown members
  size_t retained = 0;            // kept as legacy after a snapshot of another epoch
  bool changed() const {
    return applied + removed_retired + removed_expired + removed_reconciled + retained > 0;
  }
};

class SecretSet {
 public:
  // Secrets of other realms than `realms` are refused.
  explicit SecretSet(std::vector<std::string> realms);

  // Replaces the view with the entries of the `secrets` hash (malformed ones
  // are skipped with a log line; their set members go at the next snapshot).
  void Load(const std::vector<std::pair<std::string, std::string>>& entries);

  // Event.secret or Event.secret_retired. A refused record (realm not served,
  // malformed) is counted and logged, never fatal.
  void Apply(const v1::Event& event, int64_t now_ms, UserDb::Transaction* transaction,
             SecretChanges* changes);

  // A snapshot starts (see the file comment for `proof_of_revocation`).
  void BeginSnapshot(bool proof_of_revocation);
  bool snapshot_active() const { return snapshot_active_; }
  // SYNCED: removes or keeps the secrets not sent again, and removes the
  // members of `members` (realm -> its set, as read now) that no secret
  // holds. Ends the snapshot.
  void FinishSnapshot(int64_t now_ms,
                      const std::vector<std::pair<std::string, std::vector<std::string>>>& members,
                      UserDb::Transaction* transaction, SecretChanges* changes);
  void AbandonSnapshot();

  // Removes every secret whose drop time has come.
  void ExpireDue(int64_t now_ms, UserDb::Transaction* transaction, SecretChanges* changes);
  // The earliest drop time (Unix ms), 0 if none.
  int64_t NextDropMs() const;

  const std::vector<std::string>& realms() const { return realms_; }
  size_t size() const { return secrets_.size(); }
  // For tests and logs: the ids known in `realm`, legacy ones with "/legacy".
  std::vector<std::string> Ids(std::string_view realm) const;

 private:
  void Put(KnownSecret secret, UserDb::Transaction* transaction);
  // Forgets `field` and SREMs its bytes unless another secret of the realm
  // holds the same bytes.
  void Remove(const std::string& field, UserDb::Transaction* transaction);
  void MakeLegacy(const std::string& field, int64_t now_ms, UserDb::Transaction* transaction);
  bool Serves(std::string_view realm) const;

  const std::vector<std::string> realms_;
  const absl::flat_hash_set<std::string> served_;
  absl::flat_hash_map<std::string, KnownSecret> secrets_;  // by field
  bool snapshot_active_ = false;
  bool proof_ = false;
  absl::flat_hash_set<std::string> unseen_;  // fields not sent since SNAPSHOT_BEGIN
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_SECRETS_H_
