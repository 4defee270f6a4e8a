// The CredentialBroker gRPC service: checks the caller's role, hands writes
// to the store, serves reads from its state and Watch from the hub. Errors
// become grpc::Status here and nowhere else.
#ifndef TURNBROKER_BROKER_SERVICE_H_
#define TURNBROKER_BROKER_SERVICE_H_

#include <cstdint>
#include <string>

#include "turnbroker/broker/rate_limiter.h"
#include "turnbroker/broker/store.h"
#include "turnbroker/broker/watch.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::broker {

// Watch is a raw method: its frames are pre-encoded bytes (watch.h).
using ServiceBase = v1::CredentialBroker::WithRawCallbackMethod_Watch<
    v1::CredentialBroker::CallbackService>;

class BrokerService final : public ServiceBase {
 public:
  // `limiter` may be null (no limit).
  BrokerService(Store* store, WatchHub* hub, MetricsRegistry* metrics,
                std::string version, int64_t started_at_ms,
                RateLimiter* limiter = nullptr);
  ~BrokerService() override;

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override;
  grpc::ServerUnaryReactor* Revoke(grpc::CallbackServerContext* context,
                                   const v1::RevokeRequest* request,
                                   v1::RevokeResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const v1::GetRequest* request,
                                v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListRequest* request,
                                 v1::ListResponse* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;

 private:
  struct Metrics;
  // The store's callback for a write: counts, logs, finishes the call.
  // `method`: 0 Publish, 1 Revoke.
  template <typename Response>
  std::function<void(absl::StatusOr<Response>)> Answer(
      grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
      Response* response, int method);

  Store* const store_;
  WatchHub* const hub_;
  const std::string version_;
  const int64_t started_at_ms_;
  RateLimiter* const limiter_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_SERVICE_H_
