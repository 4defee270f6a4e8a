// turn-broker: the TURN credential broker daemon (docs/configuration.md).
#include <CLI/CLI.hpp>

#include "turnbroker/broker/command_line.h"
#include "turnbroker/common/flags.h"
#include "turnbroker/common/runtime.h"

int main(int argc, char** argv) {
  turnbroker::InitRuntime();
  CLI::App app;
  turnbroker::broker::BrokerCommandLine command_line(&app);
  CLI11_PARSE(app, argc, argv);
  auto options = command_line.Options();
  if (!options.ok()) return turnbroker::UsageError("turn-broker", options.status());
  return turnbroker::broker::RunBroker(*options);
}
