#include "report.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "cpu_steadiness.h"
#include "percentiles.h"
#include "proc_usage.h"

namespace turnbroker::bench {
namespace {

const char* g_mark = " [not probed]";

// All CPUs' time from the first line of /proc/stat, in clock ticks: busy
// (user, nice, system, irq, softirq, steal) and the total with idle and
// iowait.
struct MachineTicks {
  double busy = 0, total = 0;
};

std::optional<MachineTicks> ReadMachineTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user, nice, system, idle, iowait, irq, softirq, steal;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      cpu != "cpu")
    return std::nullopt;
  const double busy = user + nice + system + irq + softirq + steal;
  return MachineTicks{busy, busy + idle + iowait};
}

}  // namespace

void AddQuietFlags(CLI::App& app, QuietOptions* o) {
  app.add_option("--cpu-seconds", o->probe_seconds,
                 "Seconds of the CPU steadiness probe run first (0: skip it, and every figure "
                 "is marked [not probed])")
      ->capture_default_str();
  app.add_option("--max-other-cpu", o->max_other_cpu_percent,
                 "Busy machine: other processes (and the hypervisor's steal) used more than this "
                 "% of all CPUs during the probe")
      ->capture_default_str();
  app.add_option("--max-slow-time", o->max_slow_time_percent,
                 "Busy machine: the probe's CPUs ran slow (pieces >= 3x the median) for more "
                 "than this % of the time")
      ->capture_default_str();
  app.add_flag("--require-quiet", o->require_quiet,
               "On a busy machine, refuse to run (exit 3) instead of marking every figure "
               "[noisy]");
}

void ProbeMachine(const QuietOptions& o) {
  if (o.probe_seconds <= 0) {
    g_mark = " [not probed]";
    std::printf("machine: not probed (--cpu-seconds 0); every figure is marked [not probed]\n");
    std::fflush(stdout);
    return;
  }
  const std::optional<MachineTicks> machine0 = ReadMachineTicks();
  const std::optional<ProcessUsage> self0 = ReadProcessUsage(getpid());
  const CpuSteadiness s = MeasureCpuSteadiness(o.probe_seconds);
  const std::optional<MachineTicks> machine1 = ReadMachineTicks();
  const std::optional<ProcessUsage> self1 = ReadProcessUsage(getpid());

  double others_percent = NAN;
  if (machine0 && machine1 && self0 && self1 && machine1->total > machine0->total) {
    const double tick_us = 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
    const double own_ticks = (self1->cpu_us - self0->cpu_us) / tick_us;
    const double others = machine1->busy - machine0->busy - own_ticks;
    others_percent = std::max(0.0, 100 * others / (machine1->total - machine0->total));
  }
  const double slow_percent = 100 * s.slow_time_share;
  const bool busy = std::isnan(others_percent) || others_percent > o.max_other_cpu_percent ||
                    slow_percent > o.max_slow_time_percent;
  g_mark = busy ? " [noisy]" : "";
  std::printf("machine (%.0f s probe, every CPU): %s; other processes %s %% of all CPUs\n",
              o.probe_seconds, FormatCpuSteadiness(s).c_str(),
              FormatValue(others_percent, 1, 1).c_str());
  std::printf("machine: %s (limits: other processes %.0f %%, slow time %.0f %%)\n",
              busy ? "BUSY: every figure below is marked [noisy]; quote none of them" : "quiet",
              o.max_other_cpu_percent, o.max_slow_time_percent);
  std::fflush(stdout);
  if (busy && o.require_quiet) {
    std::fprintf(stderr, "the machine is busy and --require-quiet is set: not measuring\n");
    std::exit(3);
  }
}

const char* Mark() { return g_mark; }

std::string FormatRatio(double figure, double floor, int decimals) {
  if (std::isinf(figure)) return "lost";
  if (!(floor > 0) || std::isinf(floor) || std::isnan(figure)) return "n/a";
  return "x" + FormatValue(figure / floor, 1, decimals);
}

std::string BesideFloor(double p50_us, double p99_us, double floor_p50_us, double floor_p99_us) {
  char buf[320];
  std::snprintf(
      buf, sizeof buf, "p50 %s ms  p99 %s ms   floor p50 %s ms  p99 %s ms (p50 %s, p99 %s)%s",
      FormatValue(p50_us, 1e-3).c_str(), FormatValue(p99_us, 1e-3).c_str(),
      FormatValue(floor_p50_us, 1e-3).c_str(), FormatValue(floor_p99_us, 1e-3).c_str(),
      FormatRatio(p50_us, floor_p50_us).c_str(), FormatRatio(p99_us, floor_p99_us).c_str(), Mark());
  return buf;
}

}  // namespace turnbroker::bench
