// The floor of one unary gRPC hop, measured like the benchmarks measure the
// broker: open-loop GetStatus calls at `rate` for `seconds` (sends scheduled
// by the clock, latency from the scheduled time, the first 0.5 s left out).
// GetStatus touches neither the store nor the watchers. A call that fails
// is lost (percentiles.h). The floor beside the figures of broker_bench,
// turn_sync_bench and the eP-CSCF benchmarks, and grpc_floor_bench's unary
// path.
#ifndef TURNBROKER_BENCH_STATUS_FLOOR_H_
#define TURNBROKER_BENCH_STATUS_FLOOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "open_loop.h"
#include "percentiles.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::bench {

// Latencies in µs.
inline Percentiles OpenLoopStatus(turnbroker::v1::CredentialBroker::Stub* stub, int rate,
                                  double seconds) {
  const size_t n = static_cast<size_t>(rate * seconds);
  std::vector<int64_t> answered(n, 0);
  std::atomic<size_t> done{0};
  struct Call {
    grpc::ClientContext ctx;
    turnbroker::v1::GetStatusRequest req;
    turnbroker::v1::GetStatusResponse resp;
  };
  const OpenLoopSchedule schedule(rate);
  for (size_t i = 0; i < n; ++i) {
    schedule.SleepUntil(i);
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
  return LatenciesFromSchedule(schedule, answered, schedule.FirstMeasured(n));
}

// The closed-loop floor: `n` GetStatus calls one after another (blocking
// client), µs each; a failed call is lost.
inline Percentiles ClosedLoopStatus(turnbroker::v1::CredentialBroker::Stub* stub, size_t n) {
  std::vector<int64_t> latencies;
  size_t lost = 0;
  for (size_t i = 0; i < n; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    turnbroker::v1::GetStatusRequest req;
    turnbroker::v1::GetStatusResponse resp;
    const int64_t start = MonotonicMicros();
    if (stub->GetStatus(&ctx, req, &resp).ok())
      latencies.push_back(MonotonicMicros() - start);
    else
      ++lost;
  }
  return Summarize(latencies, lost);
}

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_STATUS_FLOOR_H_
