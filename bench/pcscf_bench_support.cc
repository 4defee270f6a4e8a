#include "pcscf_bench_support.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace turnbroker::bench {

using testing::BuiltBinary;
using testing::FreePort;
using testing::Subprocess;

AgentStack StartAgentStack(const testing::TempDir& dir, int http_threads) {
  AgentStack s;
  std::string broker = "127.0.0.1:" + std::to_string(FreePort());
  s.broker = std::make_unique<Subprocess>(
      std::vector<std::string>{BuiltBinary("turn-broker"), "--listen", broker, "--ephemeral",
                               "--log-level", "warn"},
      dir.File("broker.log"));
  if (!s.broker->WaitForOutput("turn-broker listening on", std::chrono::seconds(10))) {
    std::fprintf(stderr, "turn-broker did not start:\n%s\n", s.broker->Output().c_str());
    std::exit(1);
  }
  s.agent_port = FreePort();
  s.agent = std::make_unique<Subprocess>(
      std::vector<std::string>{BuiltBinary("pcscf-turn-agent"), "--broker", broker, "--listen",
                               "127.0.0.1:" + std::to_string(s.agent_port), "--realm",
                               "example.org", "--turn-uri", "turn:127.0.0.1:3478?transport=udp",
                               "--http-threads", std::to_string(http_threads), "--log-level",
                               "warn"},
      dir.File("agent.log"));
  if (!s.agent->WaitForOutput("pcscf-turn-agent listening on", std::chrono::seconds(10))) {
    std::fprintf(stderr, "pcscf-turn-agent did not start:\n%s\n", s.agent->Output().c_str());
    std::exit(1);
  }
  return s;
}

Summary Summarize(std::vector<double> v) {
  Summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  };
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.max = v.back();
  return s;
}

std::string Format(const Summary& s, const char* unit) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "n=%zu p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f %s",
                s.count, s.p50, s.p90, s.p99, s.p999, s.max, unit);
  return buf;
}

}  // namespace turnbroker::bench
