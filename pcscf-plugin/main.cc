// pcscf-turn-agent: the eP-CSCF's local HTTP/JSON agent (docs/pcscf-plugin.md).
#include <CLI/CLI.hpp>

#include "turnbroker/common/flags.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/pcscf/agent_command_line.h"

int main(int argc, char** argv) {
  turnbroker::InitRuntime();
  CLI::App app;
  turnbroker::pcscf::AgentCommandLine command_line(&app);
  CLI11_PARSE(app, argc, argv);
  auto options = command_line.Options();
  if (!options.ok()) return turnbroker::UsageError("pcscf-turn-agent", options.status());
  return turnbroker::pcscf::RunAgent(*options);
}
