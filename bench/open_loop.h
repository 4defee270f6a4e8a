// Open-loop load, as every latency benchmark here sends it: send i is
// scheduled at t0 + i / rate and its latency counts from that scheduled
// time, so a path that falls behind cannot hide its queue. The first
// `warm-up` seconds of sends are left out of the figures.
#ifndef TURNBROKER_BENCH_OPEN_LOOP_H_
#define TURNBROKER_BENCH_OPEN_LOOP_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "percentiles.h"
#include "turnbroker/common/clock.h"

namespace turnbroker::bench {

class OpenLoopSchedule {
 public:
  // The first send `lead_us` from now (MonotonicMicros).
  explicit OpenLoopSchedule(double rate, int64_t lead_us = 100'000)
      : rate_(rate), t0_(MonotonicMicros() + lead_us) {}

  int64_t t0() const { return t0_; }
  // When send i is due, in MonotonicMicros.
  int64_t At(size_t i) const {
    return t0_ + static_cast<int64_t>(static_cast<double>(i) * 1e6 / rate_);
  }
  // Sleeps, never spins, until send i is due: a spinning sender takes the
  // CPU from the threads it measures and shows up in their tails.
  void SleepUntil(size_t i) const {
    const int64_t wait = At(i) - MonotonicMicros();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
  }
  // The first send measured after `warmup_s` seconds of warm-up, at most n.
  size_t FirstMeasured(size_t n, double warmup_s = 0.5) const {
    return std::min(n, static_cast<size_t>(warmup_s * rate_));
  }

 private:
  const double rate_;
  const int64_t t0_;
};

// Percentiles (µs) of done[i] - schedule.At(i) for i in [first, done.size()):
// done[i] == 0 is a lost sample (percentiles.h).
inline Percentiles LatenciesFromSchedule(const OpenLoopSchedule& schedule,
                                         const std::vector<int64_t>& done, size_t first) {
  std::vector<int64_t> latencies;
  size_t lost = 0;
  for (size_t i = first; i < done.size(); ++i) {
    if (done[i])
      latencies.push_back(done[i] - schedule.At(i));
    else
      ++lost;
  }
  return Summarize(latencies, lost);
}

// Open loop for a round trip each: send(i) at its scheduled time;
// `arrived[i]` is filled in by the receiving side (`received` counts them).
// Waits for all (or 10 s), then the percentiles (µs) after warm-up; a
// message that never came back is lost.
inline Percentiles OpenLoopRoundTrips(int rate, const std::function<void(size_t)>& send,
                                      const std::function<size_t()>& received,
                                      const std::vector<int64_t>& arrived) {
  const size_t n = arrived.size();
  const OpenLoopSchedule schedule(rate);
  for (size_t i = 0; i < n; ++i) {
    schedule.SleepUntil(i);
    send(i);
  }
  const int64_t deadline = MonotonicMicros() + 10'000'000;
  while (received() < n && MonotonicMicros() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return LatenciesFromSchedule(schedule, arrived, schedule.FirstMeasured(n));
}

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_OPEN_LOOP_H_
