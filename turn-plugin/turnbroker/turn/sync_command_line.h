// turn-credential-sync's command line: flags and environment variables to
// options, and the sync's life from start to exit. main.cc only wires these.
// Every flag is documented by --help and docs/turn-plugin.md.
#ifndef TURNBROKER_TURN_SYNC_COMMAND_LINE_H_
#define TURNBROKER_TURN_SYNC_COMMAND_LINE_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/flags.h"
#include "turnbroker/common/net.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/turn/sync.h"
#include "turnbroker/turn/watch_loop.h"

namespace turnbroker::turn {

// What one run of turn-credential-sync does.
struct SyncRunOptions {
  LogOptions log;
  ChannelOptions channel;
  RedisOptions redis;
  SyncOptions sync;
  WatchLoopOptions watch;
  // coturn's CLI, to end the sessions of revoked users; none: off.
  std::optional<HostPort> coturn_admin;
  std::string coturn_admin_password;
  // A password in the environment with the CLI off: logged as ignored.
  bool ignored_password_in_environment = false;
  std::optional<HostPort> metrics_listen;
  int64_t unhealthy_after_ms = 30'000;
};

// Declares turn-credential-sync's flags on `app` (which must outlive this).
class SyncCommandLine {
 public:
  explicit SyncCommandLine(CLI::App* app);

  // After `app` parsed the command line: the options, or INVALID_ARGUMENT
  // naming the flag (a usage error).
  absl::StatusOr<SyncRunOptions> Options() const;

 private:
  ChannelOptions channel_;
  SyncOptions sync_;
  WatchLoopOptions watch_;
  LogFlags log_flags_;
  std::string auth_mode_ = "per-credential";
  std::string redis_url_ = "redis://127.0.0.1:6379/0";
  int redis_timeout_ms_ = 5'000;
  std::string coturn_admin_, admin_password_flag_, admin_password_file_;
  std::string metrics_listen_;
  int64_t unhealthy_after_s_ = 30;
  int64_t keepalive_s_ = 10;
};

// Runs the sync until SIGTERM or SIGINT: prints "turn-credential-sync running
// sync=NAME metrics=ADDRESS" (tools and tests read it). Returns the exit code:
// 0 after a clean stop, 1 when the metrics endpoint cannot start.
int RunSync(const SyncRunOptions& options);

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_SYNC_COMMAND_LINE_H_
