// The store seam: where committed state comes from. The server and the
// service know storage only through this interface. Two implementations:
// the embedded store (embedded_store.h: memory or durable SQLite, one broker)
// and the Redis store (redis_store.h: several replicas on one Redis dataset).
// Both commit changes, apply them to one CredentialState, and tell the
// listener; reads and Watch streams are served from that state
// (docs/architecture.md, "The store seam").
#ifndef TURNBROKER_BROKER_STORE_H_
#define TURNBROKER_BROKER_STORE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "turnbroker/broker/secrets.h"
#include "turnbroker/broker/state.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::broker {

class Store {
 public:
  using PublishDone = std::function<void(absl::StatusOr<v1::PublishResponse>)>;
  using RevokeDone = std::function<void(absl::StatusOr<v1::RevokeResponse>)>;
  using SecretDone = std::function<void(absl::StatusOr<v1::SecretResponse>)>;

  virtual ~Store() = default;

  // Commits the request and then calls `done`, exactly once. `request` must
  // stay valid until then. `done` is called inline when the request is
  // refused at once (shutting down, queue full, store failed), otherwise on a
  // store thread; callers must not hold a lock `done` takes. `done` gets OK
  // only once the change is committed (durable, for a durable store;
  // acknowledged by the configured replicas, for Redis) and applied to
  // state(). Errors: see CredentialBroker.Publish/Revoke in the proto;
  // UNAVAILABLE when the store is shutting down, failed or unreachable.
  virtual void Publish(const v1::PublishRequest* request, PublishDone done) = 0;
  // A non-empty `only_issuer` (a publisher without the operator role)
  // revokes only the matching credentials of that issuer, also those the
  // same group made live before it (docs/security.md).
  virtual void Revoke(const v1::RevokeRequest* request, std::string only_issuer,
                      RevokeDone done) = 0;
  void Revoke(const v1::RevokeRequest* request, RevokeDone done) {
    Revoke(request, std::string(), std::move(done));
  }
  // A minter's revocation of one approach-1 username (the service checked
  // its form and role), with a tombstone until `until_ms`, the expiry in the
  // username.
  virtual void RevokeMinted(const v1::RevokeRequest* request, int64_t until_ms,
                            RevokeDone done) = 0;

  // Approach 1 (docs/approach1.md): stages, activates or retires a shared
  // secret, committed and answered like Publish. ActivateSecret is gated on
  // the syncs' reports (Acknowledge) and the policy's stage grace.
  virtual void WriteSecret(SecretCommand command, SecretDone done) = 0;
  // Records a TURN sync's report, where every replica sees it (the Redis
  // store: in Redis). `done` gets OK, RESOURCE_EXHAUSTED (too many syncs)
  // or UNAVAILABLE; inline or on a store thread.
  virtual void Acknowledge(SyncAck ack, std::function<void(absl::Status)> done) = 0;
  // The syncs that reported within the policy's window, by name.
  virtual std::vector<SyncAck> RecentSyncs() const = 0;
  virtual const SecretPolicy& secret_policy() const = 0;

  // The committed state that reads and Watch streams are served from.
  virtual const CredentialState& state() const = 0;
  // `listener` is called on the store's thread after each change to state():
  // new revisions applied, or the state reset to a new epoch (a Redis dataset
  // that lost acknowledged writes). Set it once, before the first write.
  virtual void SetCommitListener(std::function<void()> listener) = 0;
  // "durable:<dir>", "ephemeral", "redis:<host:port>" or
  // "redis-sentinel:<master>@<primary host:port>".
  virtual std::string description() const = 0;
  // False once the store failed for good (e.g. a damaged journal file); it
  // then refuses writes and the process should restart. (A store that cannot
  // write for now, a full disk or a Redis store that lost its connection,
  // stays healthy: it refuses writes until it can write again.)
  virtual bool healthy() const = 0;
  // Answers every queued request, then refuses new ones with UNAVAILABLE.
  virtual void Shutdown() = 0;
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_STORE_H_
