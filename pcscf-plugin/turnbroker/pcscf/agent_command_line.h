// pcscf-turn-agent's command line: flags and environment variables to
// options, and the agent's life from start to exit. main.cc only wires these.
// Every flag is documented by --help and docs/pcscf-plugin.md.
#ifndef TURNBROKER_PCSCF_AGENT_COMMAND_LINE_H_
#define TURNBROKER_PCSCF_AGENT_COMMAND_LINE_H_

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/flags.h"
#include "turnbroker/pcscf/agent_api.h"
#include "turnbroker/pcscf/evapi_client.h"
#include "turnbroker/pcscf/issuer.h"
#include "turnbroker/pcscf/publisher.h"

namespace turnbroker::pcscf {

// What one run of pcscf-turn-agent does.
struct AgentRunOptions {
  LogOptions log;
  ChannelOptions channel;
  PublisherOptions publisher;
  IssuerOptions issuer;
  AgentServerOptions http;
  // Empty address: no asynchronous path (evapi_client.h).
  EvapiClientOptions evapi;
};

// Declares pcscf-turn-agent's flags on `app` (which must outlive this).
class AgentCommandLine {
 public:
  explicit AgentCommandLine(CLI::App* app);

  // After `app` parsed the command line: the options, or INVALID_ARGUMENT
  // naming the flag (a usage error).
  absl::StatusOr<AgentRunOptions> Options() const;

 private:
  AgentRunOptions o_;
  LogFlags log_flags_;
  std::string mode_ = "per-credential";
  bool allow_remote_ = false, no_reuse_ = false, unary_publish_ = false;
  double http_idle_timeout_s_ = 5, http_request_timeout_s_ = 5;
  double overlap_s_ = 30, publish_timeout_s_ = 0.8, revoke_timeout_s_ = 0.8, status_interval_s_ = 2;
};

// Connects to the broker, serves the HTTP API, prints "pcscf-turn-agent
// listening on ADDRESS" (tools and tests read it), and serves until SIGTERM
// or SIGINT. Returns the exit code: 0 after a clean stop, 2 when the options
// are refused (naming the flag), 1 when the HTTP server cannot start.
int RunAgent(const AgentRunOptions& options);

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_AGENT_COMMAND_LINE_H_
