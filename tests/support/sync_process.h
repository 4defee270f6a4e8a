// turn-credential-sync as a child process, the way the TURN side runs it.
#ifndef TURNBROKER_TESTS_SUPPORT_SYNC_PROCESS_H_
#define TURNBROKER_TESTS_SUPPORT_SYNC_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "process.h"
#include "redis_server.h"

namespace turnbroker::testing {

struct SyncProcessOptions {
  std::string broker;  // HOST:PORT
  std::string realm;
  std::string name = "test";
  // coturn's CLI, to end revoked sessions (0: off).
  int coturn_cli_port = 0;
  std::string coturn_cli_password;
  std::vector<std::string> extra_args;
};

class SyncProcess {
 public:
  // Starts it against `redis` and waits (10 s) for "turn-credential-sync
  // running"; ADD_FAILURE with its output if it does not come.
  SyncProcess(const TempDir& dir, const RedisServer& redis, const SyncProcessOptions& options);

  Subprocess& process() { return *process_; }
  // The port of its /metrics and /healthz (with "--metrics-listen",
  // "127.0.0.1:0" in extra_args), else 0.
  int metrics_port() const { return metrics_port_; }

 private:
  std::unique_ptr<Subprocess> process_;
  int metrics_port_ = 0;
};

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_SYNC_PROCESS_H_
