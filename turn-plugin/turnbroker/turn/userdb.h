// coturn's Redis user database as one sync manages it: the keys coturn
// reads, and the sync's bookkeeping (position, managed index, legacy set,
// cancellation queue) in the same database, always written together in one
// MULTI/EXEC (see schema.h for the keys).
//
// Not thread-safe: used by one thread. Several syncs may share a database as
// long as their names differ: their writes to coturn's keys are idempotent
// (same value, same absolute expiry).
#ifndef TURNBROKER_TURN_USERDB_H_
#define TURNBROKER_TURN_USERDB_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/turn/schema.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::turn {

namespace v1 = ::turnbroker::v1;

// The broker revision everything up to which is applied, with its epoch.
// Empty (revision 0): nothing applied yet, start with a snapshot.
struct Position {
  std::string epoch;
  uint64_t revision = 0;
  bool operator==(const Position&) const = default;
};

// A key the sync manages: its member name, expiry (Unix ms) and owner.
struct ManagedKey {
  std::string member;
  int64_t expires_at_ms = 0;
  std::string issuer;
  std::string subscriber;
};

class UserDb {
 public:
  // `redis` must outlive this.
  UserDb(RedisClient* redis, SyncKeys keys);

  const SyncKeys& keys() const { return keys_; }

  // ---- Reads --------------------------------------------------------------
  // The stored position; empty if none. Errors: Redis unavailable, or the
  // position hash is corrupt (DATA_LOSS).
  absl::StatusOr<Position> LoadPosition();
  // Every managed key expiring after `after_ms` (read in pages).
  absl::StatusOr<std::vector<ManagedKey>> LoadManaged(int64_t after_ms);
  // Every legacy key expiring after `after_ms`, with its owner.
  absl::StatusOr<std::vector<ManagedKey>> LoadLegacy(int64_t after_ms);
  // For each member, its expiry if it is managed.
  absl::StatusOr<std::vector<std::optional<int64_t>>> ManagedExpiries(
      const std::vector<std::string>& members);
  // One step of a scan of the managed index (HSCAN): about `count` entries
  // from `cursor` ("0" starts); *next is "0" when the scan is complete.
  absl::StatusOr<std::vector<ManagedKey>> ScanManaged(const std::string& cursor, size_t count,
                                                      std::string* next);
  // The sync's `secrets` hash (shared-secret mode): field -> value.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> LoadSecretEntries();
  // The members of coturn's secret set of `realm`.
  absl::StatusOr<std::vector<std::string>> SecretMembers(std::string_view realm);
  // Up to `limit` members waiting for session cancellation that expire
  // after `after_ms`.
  absl::StatusOr<std::vector<ManagedKey>> PendingCancellations(int64_t after_ms, size_t limit);

  // ---- Writes -------------------------------------------------------------
  // Writes collected in order, encoded as they come, and committed
  // atomically in one round trip.
  class Transaction {
   public:
    // SET coturn's key to the hex key with PXAT expiry; index it as managed.
    void Put(const v1::Credential& credential);
    // DEL coturn's key; forget the member (managed, legacy).
    void Remove(const std::string& member);
    // Mark a managed member as learned in an earlier epoch; or no longer so.
    void Retire(const std::string& member, int64_t expires_at_ms);
    void Unretire(const std::string& member);
    // Forget a member whose coturn key Redis has expired by itself.
    void Forget(const std::string& member);
    // Queue / dequeue the member for ending its coturn sessions.
    void QueueCancellation(const std::string& member, int64_t expires_at_ms);
    void DequeueCancellation(const std::string& member);
    // Drop queued cancellations of credentials expired before `before_ms`.
    void DropCancellationsBefore(int64_t before_ms);
    void SetPosition(const Position& position, int64_t now_ms);
    // Shared-secret mode (secrets.h): SADD the secret to coturn's set of
    // `realm`; record (HSET) or forget (HDEL) a field of the `secrets` hash;
    // SREM a secret from the set.
    void AddSecretMember(std::string_view realm, std::string_view secret);
    void RemoveSecretMember(std::string_view realm, std::string_view secret);
    void RecordSecret(std::string_view field, std::string_view value);
    void ForgetSecret(std::string_view field);

    bool empty() const { return batch_.size() <= 1 && managed_.size() <= 2; }

    // After Commit (also a failed one), from EXEC's replies: the position
    // was written, and it was written where there was none (the hash had
    // neither epoch nor revision: Redis lost it, e.g. restarted empty).
    bool position_written() const { return position_written_; }
    bool position_created() const { return position_created_; }

   private:
    friend class UserDb;
    Transaction(const SyncKeys* keys, size_t puts_hint);
    // Consecutive puts share one HSET of the index; any other write flushes
    // it first so that writes stay in order.
    void FlushPuts();
    const SyncKeys* keys_;
    RedisBatch batch_;        // MULTI, then the writes
    RedisArgs managed_;       // "HSET managed" + field/value pairs
    size_t position_at_ = 0;  // index in batch_ of the position's HSET; 0: none
    bool position_written_ = false;
    bool position_created_ = false;
  };

  // `puts_hint`: about how many puts follow (buffers are sized for them).
  Transaction Begin(size_t puts_hint = 0) const { return Transaction(&keys_, puts_hint); }
  // Sends the transaction (MULTI ... EXEC). UNAVAILABLE: Redis unreachable
  // (the writes may or may not have been applied: reload the position).
  // INTERNAL: Redis refused a command (e.g. a key of the wrong type); if
  // EXEC ran, the other commands did (Redis does not roll back): see
  // position_written().
  absl::Status Commit(Transaction* transaction);
  // Writes `position` back on its own (empty: deletes it), after a commit
  // whose position ran although another of its commands failed.
  absl::Status RestorePosition(const Position& position, int64_t now_ms);
  // Deletes the stored position: the next start resumes from nothing (a
  // full snapshot).
  absl::Status DeletePosition();

  // Commit without waiting: Redis runs this transaction while the caller
  // prepares the next. `done` gets its outcome (as Commit's) once its
  // replies are read: by the next CommitAsync (at most two are in flight),
  // or by Drain(), which every other method calls first. Returns the first
  // failure seen.
  absl::Status CommitAsync(Transaction* transaction, std::function<void(const absl::Status&)> done);
  // Reads the replies of the transactions in flight, in order, and reports
  // them to their `done`; returns the first failure.
  absl::Status Drain();

 private:
  struct InFlight {
    RedisBatch batch;
    std::function<void(const absl::Status&)> done;
  };
  absl::Status ReceiveOldest();
  // One HSCAN step over `key`: field/value pairs, *next "0" at the end.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanHash(
      const std::string& key, const std::string& cursor, size_t count, std::string* next);
  static absl::Status CheckReplies(const RedisBatch& batch, const std::vector<RedisReply>& replies);

  RedisClient* const redis_;
  const SyncKeys keys_;
  std::deque<InFlight> in_flight_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_USERDB_H_
