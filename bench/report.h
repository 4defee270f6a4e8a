// How every benchmark reports (docs/benchmarks.md#rules):
//
// 1. The CPU steadiness probe (cpu_steadiness.h) runs first, before the
//    benchmark starts any process, together with a reading of /proc/stat:
//    the machine is "busy" when, during the probe, other processes used
//    more than --max-other-cpu % of all CPUs (stolen time included), or the
//    probe's pieces ran slow for more than --max-slow-time % of the time.
//    A busy machine marks every figure the program prints " [noisy]" (a
//    skipped probe: " [not probed]"); --require-quiet makes it refuse to run
//    instead (exit status 3). At the end, CheckMachineAfterRun says whether
//    other processes kept the machine busy during the run.
// 2. A latency figure is printed beside the floor measured in the same run
//    (BesideFloor): what one no-op hop costs on this machine at that moment.
//
// A machine whose /proc cannot be read counts as busy.
//
// Not thread-safe: ProbeMachine is called once from main before any figure.
#ifndef TURNBROKER_BENCH_REPORT_H_
#define TURNBROKER_BENCH_REPORT_H_

#include <string>

namespace CLI {
class App;
}

namespace turnbroker::bench {

struct QuietOptions {
  double probe_seconds = 3;
  double max_other_cpu_percent = 10;
  double max_slow_time_percent = 10;
  bool require_quiet = false;
};

// --cpu-seconds, --max-other-cpu, --max-slow-time, --require-quiet.
void AddQuietFlags(CLI::App& app, QuietOptions* options);

// Runs the probe and prints one line with its figures and the verdict.
// On a busy machine with require_quiet, prints why and exits with 3.
void ProbeMachine(const QuietOptions& options);

// At the end of the run: prints whether other processes (outside this
// program and the processes it started) used more than --max-other-cpu % of
// all CPUs since ProbeMachine returned; irq and softirq time is left out
// (this program's own loopback traffic is most of it). Returns the exit
// status to add: 3 when busy with --require-quiet, else 0.
int CheckMachineAfterRun();

// What follows every figure: "" on a quiet machine, " [noisy]" on a busy
// one, " [not probed]" when the probe was skipped (before ProbeMachine too).
const char* Mark();

// "x1.2" (figure / floor with `decimals` decimals); "lost" when the figure
// is +infinity, "n/a" when either is missing or the floor is not positive.
std::string FormatRatio(double figure, double floor, int decimals = 1);

// A latency figure beside the floor measured in the same run, in ms:
// "p50 1.234 ms  p99 5.678 ms   floor p50 0.200 ms  p99 1.000 ms (p50 x6.2, p99 x5.7)"
// followed by Mark(). Values are µs; "lost" for +infinity.
std::string BesideFloor(double p50_us, double p99_us, double floor_p50_us, double floor_p99_us);

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_REPORT_H_
