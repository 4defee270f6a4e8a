#include "broker_process.h"

#include <gtest/gtest.h>

namespace turnbroker::testing {

BrokerProcess::BrokerProcess(const TempDir& dir, std::vector<std::string> args, int port)
    : dir_(dir), args_(std::move(args)), port_(port ? port : FreePort()) {
  Launch();
}

BrokerProcess::~BrokerProcess() = default;

void BrokerProcess::Launch() {
  std::vector<std::string> argv = {BuiltBinary("turn-broker"), "--listen",
                                   "127.0.0.1:" + std::to_string(port_), "--log-level", "debug"};
  argv.insert(argv.end(), args_.begin(), args_.end());
  process_.reset();
  process_ = std::make_unique<Subprocess>(argv, dir_.File("broker-" + std::to_string(port_) + "-" +
                                                          std::to_string(generation_++) + ".log"));
  if (!process_->WaitForOutput("turn-broker listening on", std::chrono::seconds(10))) {
    ADD_FAILURE() << "turn-broker did not start:\n" << process_->Output();
  }
}

void BrokerProcess::Restart() {
  process_->Kill();
  Launch();
}

}  // namespace turnbroker::testing
