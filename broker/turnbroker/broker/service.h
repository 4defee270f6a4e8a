// The CredentialBroker gRPC service: checks the caller's role and, for a
// publisher, that it acts under its own issuer identity (docs/security.md);
// hands writes to the store, serves reads from its state and Watch from the
// hub. Every refused call and every Revoke is logged with the caller.
// Errors are absl::Status until common/status.h makes them gRPC's.
#ifndef TURNBROKER_BROKER_SERVICE_H_
#define TURNBROKER_BROKER_SERVICE_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_set>

#include "turnbroker/broker/rate_limiter.h"
#include "turnbroker/broker/store.h"
#include "turnbroker/broker/watch.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/tls.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::broker {

// Watch is a raw method: its frames are pre-encoded bytes (watch.h).
using ServiceBase =
    v1::CredentialBroker::WithRawCallbackMethod_Watch<v1::CredentialBroker::CallbackService>;

class BrokerService final : public ServiceBase {
 public:
  // `limiter` (published credentials) and `revoke_limiter` (Revoke calls)
  // may be null (no limit).
  BrokerService(Store* store, WatchHub* hub, MetricsRegistry* metrics, std::string version,
                int64_t started_at_ms, RateLimiter* limiter = nullptr,
                RateLimiter* revoke_limiter = nullptr);
  ~BrokerService() override;

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override;
  grpc::ServerBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse>* PublishStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Revoke(grpc::CallbackServerContext* context,
                                   const v1::RevokeRequest* request,
                                   v1::RevokeResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Watch(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const v1::GetRequest* request,
                                v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListRequest* request,
                                 v1::ListResponse* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;

  // Approach 1 (docs/approach1.md). Every call is logged with the caller,
  // the realm and the id, never with secret bytes.
  grpc::ServerUnaryReactor* AddSecret(grpc::CallbackServerContext* context,
                                      const v1::AddSecretRequest* request,
                                      v1::SecretResponse* response) override;
  grpc::ServerUnaryReactor* ActivateSecret(grpc::CallbackServerContext* context,
                                           const v1::ActivateSecretRequest* request,
                                           v1::SecretResponse* response) override;
  grpc::ServerUnaryReactor* RetireSecret(grpc::CallbackServerContext* context,
                                         const v1::RetireSecretRequest* request,
                                         v1::SecretResponse* response) override;
  grpc::ServerUnaryReactor* ListSecrets(grpc::CallbackServerContext* context,
                                        const v1::ListSecretsRequest* request,
                                        v1::ListSecretsResponse* response) override;
  grpc::ServerUnaryReactor* Acknowledge(grpc::CallbackServerContext* context,
                                        const v1::AcknowledgeRequest* request,
                                        v1::AcknowledgeResponse* response) override;

  // Ends every PublishStream with UNAVAILABLE once its requests are
  // answered (draining: the store already refuses new writes).
  void CloseStreams();

 private:
  struct Metrics;
  class PublishStreamReactor;
  // The store's callback for a write: counts, logs, finishes the call.
  // `method`: 0 Publish, 1 Revoke.
  template <typename Response>
  std::function<void(absl::StatusOr<Response>)> Answer(grpc::CallbackServerContext* context,
                                                       grpc::ServerUnaryReactor* reactor,
                                                       Response* response, int method);
  // PublishStream after its role check (publish_stream.cc).
  grpc::ServerBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse>* OpenPublishStream(
      grpc::CallbackServerContext* context, Peer peer);
  // A PublishStream opened (+1) or done (-1): turnbroker_publish_streams
  // (open now) and turnbroker_publish_streams_opened_total.
  void CountPublishStream(int delta);
  // Counts and logs one answered write (unary or streamed).
  template <typename Response>
  void Account(int method, int64_t start_us, const absl::StatusOr<Response>& r,
               const std::string& peer);
  // Who the rate limit counts a client as, and the publish limit's check.
  static std::string ClientKey(grpc::CallbackServerContext* context, const Peer& peer);
  absl::Status Limit(const std::string& client, int credentials);
  // What a publish must pass before the store: the issuer binding, then the
  // rate limit. Unary and streamed publishes alike.
  absl::Status CheckPublish(const Peer& peer, const std::string& client,
                            const v1::PublishRequest& request);
  // "<certificate name> <address>", for logs.
  static std::string CallerName(grpc::CallbackServerContext* context, const Peer& peer);
  // Revoke by a minter: one approach-1 username (docs/approach1.md).
  grpc::ServerUnaryReactor* RevokeMinted(grpc::CallbackServerContext* context,
                                         const v1::RevokeRequest* request,
                                         v1::RevokeResponse* response, const Peer& peer,
                                         int64_t start_us);
  // AddSecret, ActivateSecret, RetireSecret after their role check.
  grpc::ServerUnaryReactor* WriteSecret(grpc::CallbackServerContext* context, SecretCommand command,
                                        v1::SecretResponse* response, std::string_view method);

  Store* const store_;
  WatchHub* const hub_;
  const std::string version_;
  const int64_t started_at_ms_;
  RateLimiter* const limiter_;
  RateLimiter* const revoke_limiter_;
  std::unique_ptr<Metrics> metrics_;
  std::mutex streams_mu_;
  std::unordered_set<PublishStreamReactor*> streams_;  // guarded by streams_mu_
  bool streams_closed_ = false;                        // guarded by streams_mu_
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_SERVICE_H_
