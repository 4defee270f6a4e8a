// The store seam: where committed state comes from. The service talks only
// to this interface; the embedded store (memory or durable SQLite) is one
// implementation, and an HA store over Redis can be another (design §4): it
// would commit through Redis and feed the same CredentialState from the log.
#ifndef TURNBROKER_BROKER_STORE_H_
#define TURNBROKER_BROKER_STORE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "turnbroker/broker/state.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::broker {

class Store {
 public:
  using PublishDone = std::function<void(absl::StatusOr<v1::PublishResponse>)>;
  using RevokeDone = std::function<void(absl::StatusOr<v1::RevokeResponse>)>;

  virtual ~Store() = default;

  // Commits the request and then calls `done` (on a store thread, never
  // inline). `request` must stay valid until then. `done` gets OK only once
  // the change is committed (durable, for a durable store) and applied to
  // state(). Errors: see CredentialBroker.Publish/Revoke in the proto;
  // UNAVAILABLE when the store is shutting down or failed.
  virtual void Publish(const v1::PublishRequest* request, PublishDone done) = 0;
  virtual void Revoke(const v1::RevokeRequest* request, RevokeDone done) = 0;

  // The committed state that reads and Watch streams are served from.
  virtual const CredentialState& state() const = 0;
  // "durable:<dir>" or "ephemeral".
  virtual std::string description() const = 0;
  // False once the store failed (e.g. a disk write error); it then refuses
  // writes and the process should restart.
  virtual bool healthy() const = 0;
  // Answers every queued request, then refuses new ones with UNAVAILABLE.
  virtual void Shutdown() = 0;
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_STORE_H_
