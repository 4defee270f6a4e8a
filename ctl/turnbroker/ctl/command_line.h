// turnbrokerctl's command line: global flags, one subcommand per verb, and
// the run that connects and calls the chosen verb (verbs.h).
#ifndef TURNBROKER_CTL_COMMAND_LINE_H_
#define TURNBROKER_CTL_COMMAND_LINE_H_

#include <CLI/CLI.hpp>
#include <iostream>

#include "turnbroker/common/channel.h"
#include "turnbroker/ctl/verbs.h"

namespace turnbroker::ctl {

// Declares turnbrokerctl's flags and subcommands on `app` (which must
// outlive this).
class CtlCommandLine {
 public:
  explicit CtlCommandLine(CLI::App* app);

  // After `app` parsed the command line: connects to the broker and runs the
  // chosen verb. Returns the exit code (ExitCode).
  int Run(std::istream* input = &std::cin, std::ostream* output = &std::cout);

 private:
  ChannelOptions channel_{"127.0.0.1:50051"};
  double timeout_s_ = 5;
  bool json_ = false;
  CLI::App* publish_ = nullptr;
  CLI::App* revoke_ = nullptr;
  CLI::App* get_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* watch_ = nullptr;
  CLI::App* status_ = nullptr;
  CLI::App* secret_ = nullptr;
  CLI::App* secret_add_ = nullptr;
  CLI::App* secret_activate_ = nullptr;
  CLI::App* secret_retire_ = nullptr;
  CLI::App* secret_list_ = nullptr;
  SecretArgs secret_args_;
  PublishArgs publish_args_;
  RevokeArgs revoke_args_;
  GetArgs get_args_;
  ListArgs list_args_;
  WatchArgs watch_args_;
  std::vector<std::string> watch_kinds_;
};

// Parses argv and runs: what turnbrokerctl's main does. A parse error is a
// usage error (exit 2, the reason on stderr); --help and --version exit 0.
int RunCtl(int argc, char** argv);

}  // namespace turnbroker::ctl

#endif  // TURNBROKER_CTL_COMMAND_LINE_H_
