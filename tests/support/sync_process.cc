#include "sync_process.h"

#include <gtest/gtest.h>

#include <regex>

namespace turnbroker::testing {

SyncProcess::SyncProcess(const TempDir& dir, const RedisServer& redis,
                         const SyncProcessOptions& o) {
  std::vector<std::string> argv = {BuiltBinary("turn-credential-sync"),
                                   "--broker",
                                   o.broker,
                                   "--redis-url",
                                   redis.url(),
                                   "--realm",
                                   o.realm,
                                   "--name",
                                   o.name,
                                   "--log-level",
                                   "debug"};
  if (o.coturn_cli_port) {
    argv.push_back("--coturn-admin");
    argv.push_back("127.0.0.1:" + std::to_string(o.coturn_cli_port));
  }
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  process_ = std::make_unique<Subprocess>(
      argv, dir.File("sync-" + o.name + ".log"),
      std::vector<std::string>{"TURNBROKER_SYNC_COTURN_ADMIN_PASSWORD=" + o.coturn_cli_password});
  auto line = process_->WaitForOutput("turn-credential-sync running", std::chrono::seconds(10));
  if (!line) {
    ADD_FAILURE() << "turn-credential-sync did not start:\n" << process_->Output();
    return;
  }
  std::smatch m;
  if (std::regex_search(*line, m, std::regex("metrics=127\\.0\\.0\\.1:(\\d+)"))) {
    metrics_port_ = std::stoi(m[1]);
  }
}

}  // namespace turnbroker::testing
