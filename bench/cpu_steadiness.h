// How steady this machine's CPUs are: the same small piece of work (about
// 30 µs) timed over and over on every CPU, with a short sleep between
// pieces so the CPUs are about as busy as in the benchmarks. On dedicated
// hardware every piece takes about the median. On a shared VM some pieces
// take many times longer because the host runs something else on the vCPU;
// a request in flight then is as late as its CPU work times that factor,
// and the work queued behind it later still. Latency percentiles below the
// share of time the CPUs spend slow cannot be held on such a machine.
//
// It does not see other processes' load: the pieces are short and sleep in
// between, so the scheduler runs them at once even on a machine that other
// jobs keep 90 % busy. report.h reads /proc/stat for that.
#ifndef TURNBROKER_BENCH_CPU_STEADINESS_H_
#define TURNBROKER_BENCH_CPU_STEADINESS_H_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "percentiles.h"

namespace turnbroker::bench {

struct CpuSteadiness {
  double median_us = 0, p99_us = 0, max_us = 0;
  double slow_pieces_share = 0;  // pieces that took >= 3x the median
  double slow_time_share = 0;    // wall time inside slow stretches
  int slow_stretches = 0;        // slow pieces less than 2 ms apart merged
  double longest_stretch_ms = 0;
};

inline CpuSteadiness MeasureCpuSteadiness(double seconds) {
  using Clock = std::chrono::steady_clock;
  struct Piece {
    double start_ms, took_us;
  };
  const int cpus = std::max(1u, std::thread::hardware_concurrency());
  const Clock::time_point t0 = Clock::now();
  std::vector<std::vector<Piece>> per_cpu(cpus);
  std::vector<std::thread> threads;
  for (int c = 0; c < cpus; ++c) {
    threads.emplace_back([&, c] {
      volatile unsigned x = 1;
      while (true) {
        const Clock::time_point a = Clock::now();
        const double start_ms = std::chrono::duration<double, std::milli>(a - t0).count();
        if (start_ms > seconds * 1000) break;
        for (int i = 0; i < 20'000; ++i) x = x * 1664525u + 1013904223u;
        const Clock::time_point b = Clock::now();
        per_cpu[c].push_back({start_ms, std::chrono::duration<double, std::micro>(b - a).count()});
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
  }
  for (auto& t : threads) t.join();

  CpuSteadiness r;
  std::vector<double> took;
  for (const auto& v : per_cpu)
    for (const Piece& p : v) took.push_back(p.took_us);
  if (took.empty()) return r;
  std::sort(took.begin(), took.end());
  r.median_us = NearestRank(took, 0, 0.50);
  r.p99_us = NearestRank(took, 0, 0.99);
  r.max_us = took.back();
  // Slow stretches, per CPU, then as a share of all CPUs' wall time.
  size_t slow = 0;
  double slow_ms = 0;
  for (const auto& v : per_cpu) {
    double begin = -1, end = -1;
    auto close = [&] {
      if (begin < 0) return;
      ++r.slow_stretches;
      slow_ms += end - begin;
      r.longest_stretch_ms = std::max(r.longest_stretch_ms, end - begin);
    };
    for (const Piece& p : v) {
      if (p.took_us < 3 * r.median_us) continue;
      ++slow;
      const double p_end = p.start_ms + p.took_us / 1000;
      if (begin >= 0 && p.start_ms - end < 2) {
        end = p_end;
      } else {
        close();
        begin = p.start_ms;
        end = p_end;
      }
    }
    close();
  }
  r.slow_pieces_share = static_cast<double>(slow) / took.size();
  r.slow_time_share = slow_ms / (seconds * 1000 * cpus);
  return r;
}

inline std::string FormatCpuSteadiness(const CpuSteadiness& s) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "a %.0f µs piece of work: p99 %.0f µs, max %.0f µs; %.1f %% of pieces took >= 3x; "
                "%.1f %% of the time in %d slow stretches (longest %.1f ms)",
                s.median_us, s.p99_us, s.max_us, 100 * s.slow_pieces_share, 100 * s.slow_time_share,
                s.slow_stretches, s.longest_stretch_ms);
  return buf;
}

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_CPU_STEADINESS_H_
