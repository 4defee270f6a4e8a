// turn-broker's store flags (--store and the --redis-* flags), declared and
// checked in one place: main adds them to its command line and applies them
// to BrokerOptions (docs/configuration.md).
#ifndef TURNBROKER_BROKER_STORE_FLAGS_H_
#define TURNBROKER_BROKER_STORE_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "turnbroker/broker/redis_store.h"
#include "turnbroker/broker/server.h"

namespace turnbroker::broker {

class StoreFlags {
 public:
  // Adds --store, --redis-url, --redis-sentinels, --redis-master,
  // --redis-password-file, --redis-min-replicas-ack and --redis-ack-timeout,
  // with environment variables <env_prefix>STORE, <env_prefix>REDIS_URL...
  void Add(CLI::App& app, const std::string& env_prefix);

  // After parsing: sets the store of `options`, or INVALID_ARGUMENT naming
  // the flag (a usage error: exit 2): --store=redis without an address,
  // --redis-* flags without --store=redis, an unreadable password file.
  absl::Status Apply(BrokerOptions* options) const;

 private:
  std::string store_ = "embedded";
  RedisFlags redis_;
  int min_replicas_ack_ = -1;
  int64_t ack_timeout_ms_ = 500;
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_STORE_FLAGS_H_
