#include "proc_usage.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace turnbroker::bench {
namespace {

// utime + stime (fields 14 and 15) of /proc/<pid>/stat, in µs. The command
// name (field 2) may hold spaces: the fields are counted after its ')'.
std::optional<double> CpuMicros(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double utime = -1, stime = -1;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) {
      stime = std::stod(f);
      break;
    }
  }
  if (utime < 0 || stime < 0) return std::nullopt;
  return (utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

std::optional<ProcessUsage> ReadProcessUsage(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::optional<double> cpu = CpuMicros(pid);
  if (!cpu) return std::nullopt;
  ProcessUsage u;
  u.cpu_us = *cpu;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "status");
    for (std::string line; std::getline(in, line);) {
      long long n = 0;
      if (std::sscanf(line.c_str(), "voluntary_ctxt_switches: %lld", &n) == 1)
        u.voluntary_switches += n;
      else if (std::sscanf(line.c_str(), "nonvoluntary_ctxt_switches: %lld", &n) == 1)
        u.involuntary_switches += n;
    }
  }
  if (ec) return std::nullopt;
  return u;
}

ProcessUsage operator-(const ProcessUsage& after, const ProcessUsage& before) {
  return {after.cpu_us - before.cpu_us, after.voluntary_switches - before.voluntary_switches,
          after.involuntary_switches - before.involuntary_switches};
}

ProcessUsage& operator+=(ProcessUsage& sum, const ProcessUsage& more) {
  sum.cpu_us += more.cpu_us;
  sum.voluntary_switches += more.voluntary_switches;
  sum.involuntary_switches += more.involuntary_switches;
  return sum;
}

UsageWindow::UsageWindow(pid_t pid) : pid_(pid), start_(ReadProcessUsage(pid)) {}

std::optional<ProcessUsage> UsageWindow::Stop() const {
  std::optional<ProcessUsage> end = ReadProcessUsage(pid_);
  if (!start_ || !end) return std::nullopt;
  return *end - *start_;
}

std::string FormatPerCredential(const ProcessUsage& used, double credentials, double seconds,
                                const char* unit) {
  char buf[256];
  if (credentials <= 0 || seconds <= 0) return std::string("n/a (no ") + unit + "s in the window)";
  std::snprintf(buf, sizeof buf,
                "%.1f µs CPU, %.2f + %.2f context switches (voluntary + involuntary) per "
                "%s; %.0f %% of one core",
                used.cpu_us / credentials, used.voluntary_switches / credentials,
                used.involuntary_switches / credentials, unit, 100 * used.cpu_us / (seconds * 1e6));
  return buf;
}

}  // namespace turnbroker::bench
