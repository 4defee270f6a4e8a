// The eP-CSCF side of the stack for end-to-end tests: a real turn-broker,
// pcscf-turn-agent and Kamailio with the reference configuration, all on
// free loopback ports, plus sipp scenarios from pcscf-plugin/kamailio/sipp.
#ifndef TURNBROKER_TESTS_E2E_PCSCF_STACK_H_
#define TURNBROKER_TESTS_E2E_PCSCF_STACK_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent_process.h"
#include "broker_process.h"
#include "broker_view.h"
#include "kamailio.h"
#include "process.h"
#include "sipp.h"
#include "turnbroker/pcscf/sip_header.h"
#include "wait_for.h"

namespace turnbroker::pcscf::testing {

std::string ReferenceKamailioConfig();
std::string SippScenario(const std::string& name);

// The SIP digest password of a test user in the stack's subscriber table.
std::string SipPassword(const std::string& user);
// The users every PcscfStack can authenticate (at example.org).
const std::vector<std::string>& SipUsers();

struct PcscfStackOptions {
  // Extra broker flags (default: an ephemeral store).
  std::vector<std::string> broker_args = {"--ephemeral"};
  // Extra agent flags; start_agent false leaves its port closed.
  std::vector<std::string> agent_args;
  bool start_agent = true;
  // Extra -A defines for Kamailio (AGENT_HTTPCON and AUTH_DB_URL are set
  // here: a subscriber table of SipUsers() with SipPassword()).
  std::vector<std::pair<std::string, std::string>> kamailio_defines;
  // The asynchronous path: Kamailio with WITH_ASYNC_AGENT, the agent with
  // --kamailio-evapi; the stack waits until the agent is connected.
  bool async = false;
};

class PcscfStack {
 public:
  PcscfStack(const ::turnbroker::testing::TempDir& dir, PcscfStackOptions options = {});

  ::turnbroker::testing::BrokerProcess& broker() { return *broker_; }
  AgentProcess* agent() { return agent_.get(); }
  ::turnbroker::testing::KamailioProcess& kamailio() { return *kamailio_; }
  BrokerView& view() { return *view_; }
  int agent_port() const { return agent_port_; }
  void StartAgent(std::vector<std::string> args = {});
  // With `async`: waits (10 s) until Kamailio logged the agent's
  // connection number `n` on its evapi socket.
  bool WaitForAgentConnected(int n = 1);

  // Runs a scenario of pcscf-plugin/kamailio/sipp for user@example.org,
  // authenticating as `user` with SipPassword(user) unless `extra` gives
  // its own -au / -ap.
  ::turnbroker::testing::SippResult Sipp(const std::string& scenario, const std::string& user,
                                         int expires, std::vector<std::string> extra = {});

 private:
  const ::turnbroker::testing::TempDir& dir_;
  int agent_port_;
  int evapi_port_ = 0;
  std::unique_ptr<::turnbroker::testing::BrokerProcess> broker_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<::turnbroker::testing::KamailioProcess> kamailio_;
  std::unique_ptr<BrokerView> view_;
};

// The reference config's refuse policy, as a Kamailio define.
inline const std::pair<std::string, std::string> kRefuse = {"TURN_FAILURE_POLICY", "\"refuse\""};

// A sipp run for a failure message: exit code, output and its log lines.
std::string Dump(const ::turnbroker::testing::SippResult& r);

// The TURN-Credential value a sipp <log> line carries ("NAME=value"), parsed;
// nullopt when the header was absent.
std::optional<TurnCredentialHeader> HeaderIn(const std::string& log_line);

}  // namespace turnbroker::pcscf::testing

#endif  // TURNBROKER_TESTS_E2E_PCSCF_STACK_H_
