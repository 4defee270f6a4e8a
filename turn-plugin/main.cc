// turn-credential-sync: keeps a coturn Redis user database equal to the
// broker's live credentials for its realms (docs/turn-plugin.md).
#include <CLI/CLI.hpp>

#include "turnbroker/common/flags.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/turn/sync_command_line.h"

int main(int argc, char** argv) {
  turnbroker::InitRuntime();
  CLI::App app;
  turnbroker::turn::SyncCommandLine command_line(&app);
  CLI11_PARSE(app, argc, argv);
  auto options = command_line.Options();
  if (!options.ok()) return turnbroker::UsageError("turn-credential-sync", options.status());
  return turnbroker::turn::RunSync(*options);
}
