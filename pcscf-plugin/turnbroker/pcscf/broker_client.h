// The seam between the eP-CSCF library and the broker: the three calls it
// makes. The gRPC implementation uses one long-lived channel (and on it one
// long-lived PublishStream); tests inject a fake.
#ifndef TURNBROKER_PCSCF_BROKER_CLIENT_H_
#define TURNBROKER_PCSCF_BROKER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::pcscf {

namespace v1 = ::turnbroker::v1;

// Asynchronous broker calls. Each call has its own deadline (`timeout_ms`
// from now). `done` runs exactly once, on a thread of the implementation's
// choosing (possibly inline), with the response or the call's status (the
// broker's codes, or DEADLINE_EXCEEDED / UNAVAILABLE from the transport).
// Thread-safe. Destroying the client cancels calls in flight and waits for
// their `done` to return, so a `done` must not destroy the client (the gRPC
// implementation aborts with a message rather than wait for itself).
class BrokerClient {
 public:
  template <typename T>
  using Callback = std::function<void(absl::StatusOr<T>)>;

  virtual ~BrokerClient() = default;
  virtual void Publish(v1::PublishRequest request, int64_t timeout_ms,
                       Callback<v1::PublishResponse> done) = 0;
  virtual void Revoke(v1::RevokeRequest request, int64_t timeout_ms,
                      Callback<v1::RevokeResponse> done) = 0;
  virtual void GetStatus(int64_t timeout_ms, Callback<v1::GetStatusResponse> done) = 0;
};

// Whether a failed call may succeed if made again later: UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL. After such a
// failure a write may or may not have been applied.
bool IsTransient(const absl::Status& status);

struct GrpcBrokerClientOptions {
  // Publish over one long-lived PublishStream, opened on the first Publish
  // and again after it ends, rather than one unary call per Publish: less
  // work per publish at both ends. Each request keeps its own deadline. A
  // broker without PublishStream (UNIMPLEMENTED) switches the client to
  // unary calls for good, and its callers never see that code. false:
  // unary calls only (to compare the two).
  bool publish_stream = true;
  // A stream older than this takes no new requests: the next Publish opens
  // a new one, and the old one is half-closed once its last request is
  // written, then ends when the broker has answered everything on it. So no
  // request is ever cut off with a stream, and a broker's
  // --max-connection-age (whose GOAWAY lets streams run on for 30 s) moves
  // the client to a new connection without a failed publish. 0: never.
  int64_t stream_max_age_ms = 20'000;
  // Stream requests' deadlines and the stream's age are kept in this clock's
  // monotonic time (unary calls carry gRPC deadlines, in real time). Must
  // outlive the client.
  const Clock* clock = Clock::System();
};

// The gRPC client over `channel` (see MakeChannel in common/channel.h).
// Revoke and GetStatus are always unary calls.
std::unique_ptr<BrokerClient> NewGrpcBrokerClient(std::shared_ptr<grpc::Channel> channel,
                                                  GrpcBrokerClientOptions options = {});

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_BROKER_CLIENT_H_
