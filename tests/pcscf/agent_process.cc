#include "agent_process.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace turnbroker::pcscf::testing {

using ::turnbroker::testing::BuiltBinary;
using ::turnbroker::testing::FreePort;
using ::turnbroker::testing::Subprocess;

AgentProcess::AgentProcess(const ::turnbroker::testing::TempDir& dir, std::string broker,
                           std::vector<std::string> args, int port)
    : dir_(dir),
      broker_(std::move(broker)),
      args_(std::move(args)),
      port_(port ? port : FreePort()) {
  Launch();
}

AgentProcess::~AgentProcess() = default;

void AgentProcess::Launch() {
  std::vector<std::string> argv = {BuiltBinary("pcscf-turn-agent"),
                                   "--broker",
                                   broker_,
                                   "--listen",
                                   address(),
                                   "--log-level",
                                   "debug"};
  auto has = [&](const char* flag) {
    return std::find(args_.begin(), args_.end(), flag) != args_.end();
  };
  if (!has("--realm")) argv.insert(argv.end(), {"--realm", "example.org"});
  if (!has("--turn-uri")) {
    argv.insert(argv.end(), {"--turn-uri", "turn:127.0.0.1:3478?transport=udp"});
  }
  argv.insert(argv.end(), args_.begin(), args_.end());
  process_.reset();
  process_ = std::make_unique<Subprocess>(argv, dir_.File("agent-" + std::to_string(port_) + "-" +
                                                          std::to_string(generation_++) + ".log"));
  if (!process_->WaitForOutput("pcscf-turn-agent listening on", std::chrono::seconds(10))) {
    ADD_FAILURE() << "pcscf-turn-agent did not start:\n" << process_->Output();
  }
}

void AgentProcess::Stop() {
  if (process_) process_->Kill();
}

void AgentProcess::Restart() {
  Stop();
  Launch();
}

}  // namespace turnbroker::pcscf::testing
