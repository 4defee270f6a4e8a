// What a process (the broker, under load) costs the machine, from /proc:
// sample before and after the measured window and subtract.
//
// CPU is utime + stime of /proc/<pid>/stat: every thread, including threads
// that ended, in clock ticks (10 ms on Debian's kernels, so a window should
// hold a second of CPU or more for a figure to 1 %). Context switches are
// voluntary_ctxt_switches and nonvoluntary_ctxt_switches of
// /proc/<pid>/task/<tid>/status summed over the threads alive at the sample:
// /proc/<pid>/status alone counts only the main thread, and a thread that
// ends inside the window takes its switches with it.
#ifndef TURNBROKER_BENCH_PROC_USAGE_H_
#define TURNBROKER_BENCH_PROC_USAGE_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace turnbroker::bench {

struct ProcessUsage {
  double cpu_us = 0;  // user + system
  int64_t voluntary_switches = 0;
  int64_t involuntary_switches = 0;
};

// nullopt when the process is gone or /proc cannot be read.
std::optional<ProcessUsage> ReadProcessUsage(pid_t pid);

ProcessUsage operator-(const ProcessUsage& after, const ProcessUsage& before);
ProcessUsage& operator+=(ProcessUsage& sum, const ProcessUsage& more);

// Samples a process at construction (the start of the measured window);
// Stop() samples it again and returns the difference.
class UsageWindow {
 public:
  explicit UsageWindow(pid_t pid);
  // nullopt when either sample failed (or pid was 0: nothing to measure).
  std::optional<ProcessUsage> Stop() const;

 private:
  const pid_t pid_;
  const std::optional<ProcessUsage> start_;
};

// "<cpu> µs CPU and <v> + <i> context switches (voluntary + involuntary)
// per credential, <share> % of one core" for `credentials` credentials over
// `seconds` of wall time; `unit` names what was counted instead of
// "credential" (grpc_floor_bench: "message").
std::string FormatPerCredential(const ProcessUsage& used, double credentials, double seconds,
                                const char* unit = "credential");

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_PROC_USAGE_H_
