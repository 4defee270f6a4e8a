// Runs Debian's sipp (sip-tester) against a SIP server, one scenario to
// completion, and collects what the scenario's <log> actions wrote.
#ifndef TURNBROKER_TESTS_SUPPORT_SIPP_H_
#define TURNBROKER_TESTS_SUPPORT_SIPP_H_

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "process.h"

namespace turnbroker::testing {

struct SippOptions {
  std::string scenario;  // path of the XML scenario
  std::string target;    // HOST:PORT
  // -key NAME VALUE: [NAME] in the scenario.
  std::vector<std::pair<std::string, std::string>> keys;
  int calls = 1;                   // -m
  std::vector<std::string> extra;  // more arguments, e.g. {"-d", "200"}
  std::chrono::seconds timeout{20};
};

struct SippResult {
  int exit_code = -1;            // 0: every call succeeded
  std::string output;            // sipp's own output (and its error log on failure)
  std::vector<std::string> log;  // the lines <log> actions wrote, in order
};

SippResult RunSipp(const TempDir& dir, const SippOptions& options);

// The value after "NAME=" in a <log> line "... NAME=value" (to the end of
// the line); "" if absent.
std::string SippLogValue(const std::string& line, const std::string& name);

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_SIPP_H_
