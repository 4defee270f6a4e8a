// turnbrokerctl: the operator's command line for turn-broker (like etcdctl).
// Verbs and exit codes: ctl/turnbroker/ctl/verbs.h and docs/operations.md.
#include "turnbroker/common/runtime.h"
#include "turnbroker/ctl/command_line.h"

int main(int argc, char** argv) {
  turnbroker::InitRuntime();
  return turnbroker::ctl::RunCtl(argc, argv);
}
