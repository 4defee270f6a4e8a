#include "report.h"

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "cpu_steadiness.h"
#include "percentiles.h"

namespace turnbroker::bench {
namespace {

const char* g_mark = " [not probed]";
QuietOptions g_options;

// All CPUs' time from the first line of /proc/stat, in clock ticks: tasks
// (user, nice, system, steal), interrupts (irq, softirq) and the total
// with idle and iowait.
struct MachineTicks {
  double tasks = 0, interrupts = 0, total = 0;
};

std::optional<MachineTicks> ReadMachineTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user, nice, system, idle, iowait, irq, softirq, steal;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      cpu != "cpu")
    return std::nullopt;
  const double tasks = user + nice + system + steal;
  return MachineTicks{tasks, irq + softirq, tasks + irq + softirq + idle + iowait};
}

// CPU ticks of this process and every process below it, alive or ended:
// utime + stime + cutime + cstime (the last two hold the children each one
// has waited for) of this process and of its living descendants, from
// /proc/<pid>/stat. 0 where /proc cannot be read.
double ProcessTreeTicks() {
  struct Stat {
    pid_t ppid = 0;
    double ticks = 0;
  };
  std::map<pid_t, Stat> all;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  while (dirent* e = readdir(proc)) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 > stat.size()) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    Stat s;
    for (int i = 3; i <= 17 && fields >> f; ++i) {
      if (i == 4) s.ppid = std::atoi(f.c_str());
      if (i >= 14) s.ticks += std::atof(f.c_str());
    }
    all[pid] = s;
  }
  closedir(proc);
  std::map<pid_t, std::vector<pid_t>> children;
  for (const auto& [pid, s] : all) children[s.ppid].push_back(pid);
  double ticks = 0;
  std::vector<pid_t> todo = {getpid()};
  while (!todo.empty()) {
    const pid_t pid = todo.back();
    todo.pop_back();
    if (auto it = all.find(pid); it != all.end()) ticks += it->second.ticks;
    for (pid_t child : children[pid]) todo.push_back(child);
  }
  return ticks;
}

// What the machine did between two samples: the share of all CPUs that
// processes outside this program's tree used (stolen time included), in %.
struct MachineSample {
  std::optional<MachineTicks> machine;
  double tree_ticks = 0;
};

MachineSample SampleMachine() { return {ReadMachineTicks(), ProcessTreeTicks()}; }

// NaN when /proc could not be read. `count_interrupts`: whether irq and
// softirq time counts as other processes' (not during the run, when this
// program's own loopback traffic is most of it).
double OthersPercent(const MachineSample& a, const MachineSample& b, bool count_interrupts) {
  if (!a.machine || !b.machine || b.machine->total <= a.machine->total) return NAN;
  double others = b.machine->tasks - a.machine->tasks - (b.tree_ticks - a.tree_ticks);
  if (count_interrupts) others += b.machine->interrupts - a.machine->interrupts;
  return std::max(0.0, 100 * others / (b.machine->total - a.machine->total));
}

MachineSample g_run_start;
double g_run_start_s = 0;

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
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
  g_options = o;
  // The run starts when this returns.
  struct StartRun {
    ~StartRun() {
      g_run_start = SampleMachine();
      g_run_start_s = NowSeconds();
    }
  } start_run;
  if (o.probe_seconds <= 0) {
    if (o.require_quiet) {
      std::fprintf(stderr, "--require-quiet needs the probe: --cpu-seconds must be above 0\n");
      std::exit(3);
    }
    g_mark = " [not probed]";
    std::printf("machine: not probed (--cpu-seconds 0); every figure is marked [not probed]\n");
    std::fflush(stdout);
    return;
  }
  const MachineSample before = SampleMachine();
  const CpuSteadiness s = MeasureCpuSteadiness(o.probe_seconds);
  const double others_percent = OthersPercent(before, SampleMachine(), true);
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

int CheckMachineAfterRun() {
  const double others = OthersPercent(g_run_start, SampleMachine(), false);
  const bool busy = std::isnan(others) || others > g_options.max_other_cpu_percent;
  std::printf(
      "machine during the run (%.0f s): other processes %s %% of all CPUs (limit %.0f %%, "
      "interrupts not counted): %s\n",
      NowSeconds() - g_run_start_s, FormatValue(others, 1, 1).c_str(),
      g_options.max_other_cpu_percent,
      busy ? "BUSY: every figure above is noisy, whatever its mark; quote none of them" : "quiet");
  std::fflush(stdout);
  return busy && g_options.require_quiet ? 3 : 0;
}

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
