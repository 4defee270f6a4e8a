// A real pcscf-turn-agent process for tests (the built binary).
#ifndef TURNBROKER_TESTS_PCSCF_AGENT_PROCESS_H_
#define TURNBROKER_TESTS_PCSCF_AGENT_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "process.h"

namespace turnbroker::pcscf::testing {

class AgentProcess {
 public:
  // Starts pcscf-turn-agent on a free loopback port (or `port`) for
  // `broker`, realm example.org and one TURN URI unless `args` give their
  // own --realm / --turn-uri; waits until it listens (ADD_FAILURE after 10 s).
  AgentProcess(const ::turnbroker::testing::TempDir& dir, std::string broker,
               std::vector<std::string> args = {}, int port = 0);
  ~AgentProcess();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + address(); }
  ::turnbroker::testing::Subprocess& process() { return *process_; }
  void Stop();
  void Restart();

 private:
  void Launch();
  const ::turnbroker::testing::TempDir& dir_;
  std::string broker_;
  std::vector<std::string> args_;
  int port_;
  int generation_ = 0;
  std::unique_ptr<::turnbroker::testing::Subprocess> process_;
};

}  // namespace turnbroker::pcscf::testing

#endif  // TURNBROKER_TESTS_PCSCF_AGENT_PROCESS_H_
