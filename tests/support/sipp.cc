#include "sipp.h"

#include <fstream>
#include <sstream>

namespace turnbroker::testing {

SippResult RunSipp(const TempDir& dir, const SippOptions& o) {
  static int runs = 0;
  std::string n = std::to_string(++runs);
  std::string log_file = dir.File("sipp-" + n + "-log.txt");
  std::string err_file = dir.File("sipp-" + n + "-errors.txt");
  std::vector<std::string> argv = {"sipp",
                                   "-sf",
                                   o.scenario,
                                   "-m",
                                   std::to_string(o.calls),
                                   "-i",
                                   "127.0.0.1",
                                   "-p",
                                   std::to_string(FreePort()),
                                   "-nostdin",
                                   "-trace_logs",
                                   "-log_file",
                                   log_file,
                                   "-trace_err",
                                   "-error_file",
                                   err_file,
                                   "-timeout",
                                   std::to_string(o.timeout.count()) + "s",
                                   "-timeout_error"};
  for (const auto& [k, v] : o.keys) argv.insert(argv.end(), {"-key", k, v});
  argv.insert(argv.end(), o.extra.begin(), o.extra.end());
  argv.push_back(o.target);
  RunResult r = Run(argv, o.timeout + std::chrono::seconds(10));
  SippResult result;
  result.exit_code = r.exit_code;
  result.output = r.output;
  std::ifstream errors(err_file);
  if (errors) {
    std::stringstream s;
    s << errors.rdbuf();
    result.output += "\n--- sipp error log ---\n" + s.str();
  }
  std::ifstream log(log_file);
  for (std::string line; std::getline(log, line);) {
    if (!line.empty()) result.log.push_back(line);
  }
  return result;
}

std::string SippLogValue(const std::string& line, const std::string& name) {
  size_t at = line.find(name + "=");
  if (at == std::string::npos) return "";
  return line.substr(at + name.size() + 1);
}

}  // namespace turnbroker::testing
