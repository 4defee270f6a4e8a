// coturn's Redis user database as one sync manages it: the keys coturn
// reads, and the sync's bookkeeping (position, managed index, owners, legacy
// set, cancellation queue) in the same database, always written together in
// one MULTI/EXEC (see schema.h for the keys).
//
// Not thread-safe: used by the sync's one applying thread. Several syncs may
// share a database as long as their names differ: their writes to coturn's
// keys are idempotent (same value, same absolute expiry).
#ifndef TURNBROKER_TURN_USERDB_H_
#define TURNBROKER_TURN_USERDB_H_

#include <cstdint>
#include <optional>
#include <string>
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

// A member of the managed index and its expiry (Unix ms).
struct ManagedKey {
  std::string member;
  int64_t expires_at_ms = 0;
};

// Who a credential was issued to and by (owners hash).
struct Owner {
  std::string issuer;
  std::string subscriber;
};

class UserDb {
 public:
  // `redis` must outlive this.
  UserDb(RedisClient* redis, SyncKeys keys);

  const SyncKeys& keys() const { return keys_; }

  // ---- Reads --------------------------------------------------------------
  // The stored position; empty if none. Errors: Redis unavailable or the
  // position hash is corrupt (DATA_LOSS).
  absl::StatusOr<Position> LoadPosition();
  // Every managed key, or every legacy key, expiring after `after_ms`.
  absl::StatusOr<std::vector<ManagedKey>> LoadManaged(int64_t after_ms);
  absl::StatusOr<std::vector<ManagedKey>> LoadLegacy(int64_t after_ms);
  // The owners of `members` (empty strings where unknown).
  absl::StatusOr<std::vector<Owner>> LoadOwners(
      const std::vector<std::string>& members);
  // For each member, its expiry if it is managed.
  absl::StatusOr<std::vector<std::optional<int64_t>>> ManagedExpiries(
      const std::vector<std::string>& members);
  // Up to `limit` managed keys that expired before `before_ms`.
  absl::StatusOr<std::vector<ManagedKey>> ExpiredManaged(int64_t before_ms,
                                                         size_t limit);
  // Up to `limit` members waiting for session cancellation that expire
  // after `after_ms`.
  absl::StatusOr<std::vector<ManagedKey>> PendingCancellations(
      int64_t after_ms, size_t limit);
  absl::StatusOr<int64_t> ManagedCount();

  // ---- Writes -------------------------------------------------------------
  // Writes collected in order and committed atomically in one round trip.
  class Transaction {
   public:
    // SET coturn's key to the hex key with PXAT expiry; index it as managed
    // (and its owner, if any).
    void Put(const v1::Credential& credential);
    // DEL coturn's key; forget the member (managed, owners, legacy).
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

    bool empty() const { return commands_.empty() && zadd_.size() <= 2; }
    size_t commands() const { return commands_.size(); }

   private:
    friend class UserDb;
    explicit Transaction(const SyncKeys* keys);
    // Consecutive puts share one ZADD and one HSET; any other write flushes
    // them first so that writes stay in order.
    void FlushPuts();
    const SyncKeys* keys_;
    std::vector<RedisCommand> commands_;
    RedisCommand zadd_;  // "ZADD managed" + score/member pairs
    RedisCommand hset_;  // "HSET owners" + field/value pairs
  };

  Transaction Begin() const { return Transaction(&keys_); }
  // Sends MULTI, the writes, EXEC. UNAVAILABLE: Redis unreachable (the writes
  // may or may not have been applied: reload the position). INTERNAL: Redis
  // refused a command (e.g. a key of the wrong type).
  absl::Status Commit(Transaction* transaction);

 private:
  absl::StatusOr<std::vector<ManagedKey>> LoadSortedSet(const std::string& key,
                                                        int64_t after_ms);
  RedisClient* const redis_;
  const SyncKeys keys_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_USERDB_H_
