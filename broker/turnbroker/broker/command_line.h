// turn-broker's command line: flags and environment variables to options,
// and the daemon's life from start to drained exit. main.cc only wires these.
// Every flag is documented by --help and docs/configuration.md.
#ifndef TURNBROKER_BROKER_COMMAND_LINE_H_
#define TURNBROKER_BROKER_COMMAND_LINE_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "turnbroker/broker/server.h"
#include "turnbroker/broker/store_flags.h"
#include "turnbroker/common/flags.h"

namespace turnbroker::broker {

// What one run of turn-broker does.
struct BrokerRunOptions {
  LogOptions log;
  BrokerOptions broker;
};

// Declares turn-broker's flags on `app` (which must outlive this).
class BrokerCommandLine {
 public:
  explicit BrokerCommandLine(CLI::App* app);

  // After `app` parsed the command line: the options, or INVALID_ARGUMENT
  // naming the flag (a usage error).
  absl::StatusOr<BrokerRunOptions> Options() const;

 private:
  BrokerOptions o_;
  StoreFlags store_flags_;
  LogFlags log_flags_;
  std::string listen_ = "127.0.0.1:50051";
  int64_t min_ttl_s_ = 1, max_ttl_s_ = 86'400, history_max_age_s_ = 3'600;
  int64_t keepalive_s_ = 30, max_connection_age_s_ = 0;
  int64_t secret_stage_grace_s_ = 60;
};

// Starts the broker, prints "turn-broker listening on HOST:PORT" (tools and
// tests read the port from it), serves until SIGTERM or SIGINT, then drains.
// Returns the process's exit code: 0 after a drain, 1 when the broker could
// not start or its store failed.
int RunBroker(const BrokerRunOptions& options);

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_COMMAND_LINE_H_
