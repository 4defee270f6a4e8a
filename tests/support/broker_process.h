// A real turn-broker process for tests (the built binary, over real gRPC).
#ifndef TURNBROKER_TESTS_SUPPORT_BROKER_PROCESS_H_
#define TURNBROKER_TESTS_SUPPORT_BROKER_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "process.h"

namespace turnbroker::testing {

class BrokerProcess {
 public:
  // Starts turn-broker on a free loopback port with `args` added (e.g.
  // {"--ephemeral"} or {"--data-dir", dir}); waits until it listens. Aborts
  // the test (ADD_FAILURE and port 0) if it does not start within 10 s.
  BrokerProcess(const TempDir& dir, std::vector<std::string> args, int port = 0);
  ~BrokerProcess();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Subprocess& process() { return *process_; }
  // Restarts on the same port with the same arguments.
  void Restart();

 private:
  void Launch();
  const TempDir& dir_;
  std::vector<std::string> args_;
  int port_;
  int generation_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_BROKER_PROCESS_H_
