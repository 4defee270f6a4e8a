// A whole broker: store, watch hub, gRPC server (with health and
// reflection), metrics endpoint. main.cc and the tests start it the same way.
#ifndef TURNBROKER_BROKER_SERVER_H_
#define TURNBROKER_BROKER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "turnbroker/broker/embedded_store.h"  // EmbeddedStoreOptions
#include "turnbroker/broker/redis_store.h"     // RedisStoreOptions
#include "turnbroker/broker/service.h"
#include "turnbroker/broker/watch.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/net.h"
#include "turnbroker/common/tls.h"

namespace turnbroker::broker {

struct BrokerOptions {
  HostPort listen{"127.0.0.1", 50051};
  TlsFiles tls;
  // Plaintext on a non-loopback address needs this (development only).
  bool insecure = false;
  // Empty with ephemeral=false: DefaultDataDir().
  std::string data_dir;
  bool ephemeral = false;
  bool fsync = true;
  // Give the durable store a new epoch at start (after restoring a backup).
  bool new_epoch = false;
  EmbeddedStoreOptions store;
  // --store=redis: several replicas on one Redis dataset (redis_store.h).
  // Limits, state, batch and queue sizes come from `store`; `redis` gives the
  // target, the replica confirmation and the ack timeout.
  bool use_redis = false;
  RedisStoreOptions redis;
  WatchOptions watch;
  // HOST:PORT of the metrics endpoint (port 0: any free port); empty: off.
  std::string metrics_listen;
  int64_t keepalive_time_ms = 30'000;
  int64_t keepalive_timeout_ms = 10'000;
  // Streams are asked to reconnect after this long, to rebalance them
  // across broker replicas (0: never).
  int64_t max_connection_age_ms = 0;
  int64_t max_message_bytes = 16 << 20;
  // Published credentials per second per client (0: unlimited), and burst.
  double max_publish_rate = 0;
  double max_publish_burst = 0;
  // Revoke calls per second per client (0: unlimited), and burst.
  double max_revoke_rate = 1'000;
  double max_revoke_burst = 10'000;
};

// /var/lib/turn-broker for root, else $XDG_STATE_HOME/turn-broker or
// ~/.local/state/turn-broker.
std::string DefaultDataDir();

// The store `options` ask for, recovered and ready to serve. `on_failure`
// runs if it fails later.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(
    const BrokerOptions& options, const Clock* clock, MetricsRegistry* metrics,
    std::function<void(const absl::Status&)> on_failure);

// turnbroker_secret_syncs: per known secret, the recent syncs that have
// acknowledged its staging and those pending (labels realm, id, state).
MetricsRegistry::Samples SecretSyncSamples(const Store& store);

class BrokerServer {
 public:
  // Opens the store (recovering a durable one) and starts serving.
  // `on_store_failure` runs if the store fails later (the process should
  // exit and be restarted).
  static absl::StatusOr<std::unique_ptr<BrokerServer>> Start(
      const BrokerOptions& options, const Clock* clock = Clock::System(),
      std::function<void(const absl::Status&)> on_store_failure = nullptr);
  ~BrokerServer();  // Shutdown()

  int port() const { return port_; }
  int metrics_port() const { return metrics_.port(); }
  const Store& store() const { return *store_; }
  MetricsRegistry& metrics() { return *registry_; }

  // Drains: health NOT_SERVING, answers every queued write, tells watchers
  // to reconnect, waits for in-flight reads (up to 1 s), closes the store.
  // Idempotent.
  void Shutdown();

 private:
  BrokerServer() = default;

  BrokerOptions options_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<WatchHub> hub_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<RateLimiter> revoke_limiter_;
  std::unique_ptr<BrokerService> service_;
  std::unique_ptr<grpc::Server> server_;
  MetricsServer metrics_;
  int port_ = 0;
  std::atomic<bool> shut_down_{false};
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_SERVER_H_
