// Latency summaries for the eP-CSCF benchmark programs (child processes and
// free ports come from tests/support/process.h).
#ifndef TURNBROKER_BENCH_PCSCF_BENCH_SUPPORT_H_
#define TURNBROKER_BENCH_PCSCF_BENCH_SUPPORT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "process.h"

namespace turnbroker::bench {

// An ephemeral turn-broker and a pcscf-turn-agent publishing to it, on free
// loopback ports, logs in `dir`; stopped when destroyed.
struct AgentStack {
  std::unique_ptr<testing::Subprocess> broker;
  std::unique_ptr<testing::Subprocess> agent;
  int agent_port = 0;
};
// Exits the program with the logs if either does not start.
AgentStack StartAgentStack(const testing::TempDir& dir, int http_threads);

struct Summary {
  size_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;  // the input's unit
};
Summary Summarize(std::vector<double> values);
std::string Format(const Summary& s, const char* unit);

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_PCSCF_BENCH_SUPPORT_H_
