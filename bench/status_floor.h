// The floor of one unary gRPC hop, measured like the benchmarks measure the
// broker: open-loop GetStatus calls at `rate` for `seconds` (sends scheduled
// by the clock, latency from the scheduled time, the first 0.5 s left out).
// GetStatus touches neither the store nor the watchers. Shared by
// broker_bench (its floor line) and grpc_floor_bench.
#ifndef TURNBROKER_BENCH_STATUS_FLOOR_H_
#define TURNBROKER_BENCH_STATUS_FLOOR_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "turnbroker/common/clock.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::bench {

struct FloorResult {
  double p50_us = 0, p99_us = 0;
};

inline FloorResult OpenLoopStatus(turnbroker::v1::CredentialBroker::Stub* stub, int rate,
                                  double seconds) {
  const size_t n = static_cast<size_t>(rate * seconds);
  std::vector<int64_t> scheduled(n), answered(n, 0);
  std::atomic<size_t> done{0};
  struct Call {
    grpc::ClientContext ctx;
    turnbroker::v1::GetStatusRequest req;
    turnbroker::v1::GetStatusResponse resp;
  };
  const int64_t t0 = MonotonicMicros() + 100'000;
  for (size_t i = 0; i < n; ++i) {
    scheduled[i] = t0 + static_cast<int64_t>(i * 1e6 / rate);
    int64_t wait = scheduled[i] - MonotonicMicros();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
    auto* call = new Call;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stub->async()->GetStatus(&call->ctx, &call->req, &call->resp,
                             [call, i, &answered, &done](grpc::Status s) {
                               if (s.ok()) answered[i] = MonotonicMicros();
                               delete call;
                               done.fetch_add(1);
                             });
  }
  while (done.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::vector<int64_t> lat;
  for (size_t i = std::min(n, static_cast<size_t>(rate / 2)); i < n; ++i)
    if (answered[i]) lat.push_back(answered[i] - scheduled[i]);
  if (lat.empty()) return {};
  std::sort(lat.begin(), lat.end());
  auto at = [&](double p) { return static_cast<double>(lat[static_cast<size_t>(p * (lat.size() - 1))]); };
  return {at(0.50), at(0.99)};
}

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_STATUS_FLOOR_H_
