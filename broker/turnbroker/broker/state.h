// The broker's in-memory state: the live credentials with their indexes, the
// revoked usernames (tombstones), the head revision and the retained history
// that Watch streams replay from.
//
// Thread-safety: reads may come from any thread. Writes (Apply, Expire,
// Recover*) come from one thread only, the store's commit thread, which is
// what makes a planner's reads consistent with the write that follows them.
#ifndef TURNBROKER_BROKER_STATE_H_
#define TURNBROKER_BROKER_STATE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "turnbroker/broker/record.h"
#include "turnbroker/common/clock.h"

namespace turnbroker::broker {

// A revocation as committed: the message (selector, the credentials it
// removed with their expiries, reason, time) and its Event encoding.
struct RevocationChange {
  v1::Revocation revocation;
  std::string event_wire;  // Event{revision, revoke}
};

// A shared secret's change as committed (approach 1, docs/approach1.md):
// the secret in its new state (`retired` false), or its retirement (only
// realm and id set), and its Event encoding (Event.secret or
// Event.secret_retired). `redacted_wire` is the same event without the
// secret bytes, for watchers that may not see them (operators). Secrets are
// few and rare: they ride beside the credential hot path, not in Record.
struct SecretChange {
  v1::SharedSecret secret;
  bool retired = false;
  // The revision the secret was staged at, when the writer knows it (0: the
  // state keeps the one it knows, or this change's own revision).
  Revision staged_revision = 0;
  std::string event_wire;
  std::string redacted_wire;
};
// Encodes `change`'s events at `revision`.
std::shared_ptr<const SecretChange> MakeSecretChange(v1::SharedSecret secret, bool retired,
                                                     Revision revision,
                                                     Revision staged_revision = 0);

// A known secret: its last change, the revision it was staged (added) at,
// and every log revision that holds a state of it (dead once it is retired or
// expired, never before: recovery needs its first row for staged_revision).
struct SecretEntry {
  std::shared_ptr<const SecretChange> last;
  Revision staged_revision = 0;
  Revision revision = 0;
  std::vector<Revision> rows;
  const v1::SharedSecret& secret() const { return last->secret; }
};
using SecretEntryRef = std::shared_ptr<const SecretEntry>;

// One committed change at one revision: exactly one of `put`, `revoke` and
// `secret`.
struct Change {
  Revision revision = 0;
  RecordRef put;
  std::shared_ptr<const RevocationChange> revoke;
  std::shared_ptr<const SecretChange> secret;
};

struct StateOptions {
  // Retained history for resume: at most this many events, none older.
  size_t history_max_events = 200'000;
  int64_t history_max_age_ms = 3600'000;
  // How long a username revoked while not live stays revoked.
  int64_t max_ttl_ms = 24 * 3600'000;
};

struct StateStats {
  size_t live = 0;
  size_t secrets = 0;
  size_t tombstones = 0;
  size_t history_events = 0;
  Revision head = 0;
  Revision history_first = 1;
};

class CredentialState {
 public:
  CredentialState(StateOptions options, const Clock* clock);
  ~CredentialState();
  CredentialState(const CredentialState&) = delete;
  CredentialState& operator=(const CredentialState&) = delete;

  // ---- Identity ----------------------------------------------------------
  // Set once, before serving (at recovery).
  void Reset(std::string epoch, Revision head);
  std::string epoch() const;
  Revision head() const { return head_.load(std::memory_order_acquire); }
  // Incremented by every Replace(): a reader that saw one generation and
  // sees another knows everything it read may belong to another epoch.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // The oldest revision a watcher can be replayed from: a watcher that has
  // seen up to `r` can resume iff r + 1 >= history_first().
  Revision history_first() const;
  StateStats stats() const;
  const StateOptions& options() const { return options_; }
  const Clock* clock() const { return clock_; }

  // ---- Reads (any thread) --------------------------------------------------
  // The live, unexpired credential, or null.
  RecordRef Find(std::string_view realm, std::string_view username) const;
  // The username in any realm (the first in realm order), or null.
  RecordRef FindInAnyRealm(std::string_view username) const;
  // Whether the username is revoked in `realm` and not yet expired.
  bool IsRevoked(std::string_view realm, std::string_view username) const;
  // Live, unexpired credentials a selector covers.
  std::vector<RecordRef> Matching(const v1::Selector& selector) const;
  // Live, unexpired records written after revision `after` that `keep`
  // accepts, in revision order: at most `max` of them, examining at most
  // `max_examined`. Returns the revision to continue after (0: done).
  Revision Scan(Revision after, size_t max, size_t max_examined,
                const std::function<bool(const Record&)>& keep, std::vector<RecordRef>* out) const;
  // The same walk without copies: calls `visit` under the read lock (keep it
  // short; it must not call into the state) for each live, unexpired record
  // after `after`, in revision order, examining at most `max_examined`.
  // `visit` returns false to stop without consuming the record. Returns the
  // revision to continue after (0: done).
  Revision VisitLive(Revision after, size_t max_examined,
                     const std::function<bool(const Record&)>& visit) const;

  // The revoked usernames not yet expired, for snapshots: a watcher that
  // kept keys across an epoch change learns from them which were revoked
  // before its snapshot (docs/architecture.md, "Snapshots carry the
  // revoked usernames"). Calls `visit(realm, username, until)` under the
  // read lock for each, in key order after `*cursor` (nullopt: from the
  // start), at most `max`; `visit` returns false to stop without consuming
  // the tombstone. Returns true when every one was visited.
  bool VisitTombstones(
      std::optional<uint64_t>* cursor, size_t max,
      const std::function<bool(std::string_view, std::string_view, int64_t)>& visit) const;

  // Known shared secrets (approach 1): staged, active or superseded, not
  // retired and not expired. One, or null.
  SecretEntryRef FindSecret(std::string_view realm, std::string_view id) const;
  // Every known secret of `realm` ("" : of every realm), in (realm, id)
  // order.
  std::vector<SecretEntryRef> Secrets(std::string_view realm = {}) const;
  // The realms other than `realm` where a secret `id` is known.
  std::vector<std::string> RealmsWithSecret(std::string_view id, std::string_view except) const;

  enum class HistoryRead { kOk, kCompacted };
  // Appends the changes after `after` (at most `max`) to `out`. kCompacted if
  // some of them are no longer retained.
  HistoryRead ReadHistory(Revision after, size_t max, std::vector<Change>* out) const;
  // The same without copies: calls `visit` under the read lock for each
  // change after `after`; `visit` returns false to stop without consuming it.
  HistoryRead VisitHistory(Revision after, const std::function<bool(const Change&)>& visit) const;

  // ---- Writes (the commit thread only) ------------------------------------
  // Applies committed changes (consecutive revisions after head), retains
  // them in the history and calls the commit listener. A put never replaces
  // a record of a later revision, and a revocation removes only records of
  // earlier revisions (so the log can be replayed over a Replace()).
  void Apply(const std::vector<Change>& changes);
  // During recovery: like Apply, without notifying; `in_history` says whether
  // the change is part of the contiguous log suffix that may be replayed.
  void Recover(const Change& change, int64_t at_ms, bool in_history);
  // Removes up to `max` expired credentials and expired tombstones, expired
  // secrets, trims the history by age. Returns how many credentials it
  // removed.
  size_t Expire(size_t max);
  // Log revisions that no longer hold anything live (superseded, revoked or
  // expired puts; revocations whose tombstones all expired; the rows of a
  // retired or expired secret). Never a row of a known secret. For
  // compaction.
  std::vector<Revision> TakeDeadRevisions();
  // Replaces everything (a Redis dataset that changed its epoch, or the
  // first load of a replica): the live records (at their own revisions, which
  // may be above `head`: a later Apply of their revisions is then a no-op),
  // the revoked usernames as ((realm, username), until), the known secrets
  // and the head, with no history; then applies `replay` (consecutive
  // revisions after `head`) as Apply would, under the same lock, so no
  // reader sees the base without its replay. Increments generation() and
  // calls the commit listener.
  using Tombstone = std::pair<std::pair<std::string, std::string>, int64_t>;
  void Replace(std::string epoch, Revision head, std::vector<RecordRef> live,
               const std::vector<Tombstone>& tombstones, std::vector<SecretEntryRef> secrets = {},
               const std::vector<Change>& replay = {});
  // Called (on the commit thread) after each Apply and Replace. Set it
  // before the first write.
  void SetCommitListener(std::function<void()> listener);

 private:
  struct Key {
    std::string_view realm, username;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const Key& k) const;
    size_t operator()(const RecordRef& r) const { return (*this)(Key{r->realm(), r->username()}); }
  };
  struct KeyEq {
    using is_transparent = void;
    static Key K(const Key& k) { return k; }
    static Key K(const RecordRef& r) { return {r->realm(), r->username()}; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      Key x = K(a), y = K(b);
      return x.realm == y.realm && x.username == y.username;
    }
  };
  // (hash of the subscriber, record): 16 bytes an entry, no string compares.
  using Subscriber = std::pair<uint64_t, const Record*>;
  using Expiry = std::pair<int64_t, const Record*>;

  bool Live(const Record& r, int64_t now) const { return r.expires_at_ms() > now; }
  RecordRef FindLocked(std::string_view realm, std::string_view username, int64_t now) const;
  // The live records of `username` in every realm, in realm order.
  std::vector<RecordRef> InAnyRealmLocked(std::string_view username, int64_t now) const;
  // Appends the live records of `index` (by_subscriber_, by_issuer_ or
  // by_username_) whose `field` is `key`.
  void CollectLocked(const absl::btree_set<Subscriber>& index,
                     std::string_view (Record::*field)() const, std::string_view key, int64_t now,
                     std::vector<RecordRef>* out) const;
  void InsertLocked(const RecordRef& record);
  void RemoveLocked(const Record* record);
  void ApplyLocked(const Change& change, int64_t now);
  void AddTombstoneLocked(std::string_view realm, std::string_view username, int64_t until);
  void TrimHistoryLocked(int64_t now);
  void ApplySecretLocked(const Change& change, int64_t now);
  void DropSecretLocked(const std::pair<std::string, std::string>& key);
  static uint64_t TombstoneKey(std::string_view realm, std::string_view username);
  static uint64_t SubscriberHash(std::string_view subscriber);

  const StateOptions options_;
  const Clock* const clock_;
  mutable std::mutex epoch_mu_;
  std::string epoch_;  // guarded by epoch_mu_
  std::atomic<Revision> head_{0};
  std::atomic<uint64_t> generation_{0};
  std::function<void()> listener_;

  // Guards everything below. Readers share it; the commit thread takes it
  // exclusively to apply a group, for microseconds.
  mutable std::shared_mutex mu_;
  absl::flat_hash_set<RecordRef, KeyHash, KeyEq> live_;
  absl::btree_map<Revision, const Record*> by_revision_;
  absl::btree_set<Subscriber> by_subscriber_;
  // The same by issuer: revoke-by-issuer is a publisher's call at its
  // revoke rate, so it must cost that issuer's credentials, not a scan.
  absl::btree_set<Subscriber> by_issuer_;
  // And by username: a username "in every realm" (Get, Revoke with an
  // empty realm) costs its matches, not a walk of the realms, which are the
  // publishers' to choose.
  absl::btree_set<Subscriber> by_username_;
  absl::btree_set<Expiry> by_expiry_;
  // Revoked (realm, username) -> revoked until (Unix ms), with the names
  // for snapshots. Keyed by a 64-bit hash: a collision could only refuse one
  // publish, never accept one. Ordered, so a snapshot walks it in chunks.
  struct Revoked {
    int64_t until = 0;
    std::string realm, username;
  };
  absl::btree_map<uint64_t, Revoked> tombstones_;
  int64_t next_tombstone_sweep_ms_ = 0;
  // When each revocation's last tombstone expires: (time, revision). Also
  // secret retirements, dead once every earlier row of their secret is
  // surely compacted (so a replay never finds a state of it without its
  // retirement).
  absl::btree_set<std::pair<int64_t, Revision>> revocation_deaths_;
  // Known secrets by (realm, id).
  absl::btree_map<std::pair<std::string, std::string>, SecretEntryRef> secrets_;
  struct HistoryEntry {
    Change change;
    int64_t at_ms;
  };
  std::deque<HistoryEntry> history_;
  std::vector<Revision> dead_;
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_STATE_H_
