#include "promtool.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "process.h"

namespace turnbroker::testing {

std::string PromtoolProblems(const std::string& text) {
  char path[] = "/tmp/turnbroker-metrics-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return "cannot make a temporary file";
  close(fd);
  std::ofstream(path, std::ios::binary) << text;
  RunResult r = Run({"sh", "-c",
                     "command -v promtool >/dev/null || { echo 'promtool is missing "
                     "(scripts/setup.sh installs prometheus)'; exit 2; };"
                     " promtool check metrics <\"$0\"",
                     path});
  unlink(path);
  return r.exit_code == 0 ? "" : r.output.empty() ? "promtool failed" : r.output;
}

}  // namespace turnbroker::testing
