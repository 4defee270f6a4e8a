// pcscf_agent_bench: pcscf-turn-agent alone. POST /v1/credentials at a fixed
// rate over keep-alive connections (open loop: each request has its
// scheduled send time), every request a new IMPU, so each one mints,
// publishes to a real turn-broker and waits for its acknowledgement.
// Reports latency p50/p99 and the throughput reached. Target (issue 4): p99
// under 2 ms at 2,000 requests/s.
//
//   pcscf_agent_bench [--rate 2000] [--duration 10] [--connections 16]
//                     [--agent HOST:PORT]   (default: starts broker + agent)
#include <httplib.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pcscf_bench_support.h"
#include "process.h"

using namespace turnbroker::bench;
using turnbroker::testing::TempDir;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  double rate = 2000, duration_s = 10, warmup_s = 1;
  int connections = 16;
  std::string agent;
  CLI::App app{"pcscf_agent_bench: pcscf-turn-agent's POST /v1/credentials at a fixed rate "
               "over keep-alive connections (docs/pcscf-plugin.md#benchmarks)"};
  app.add_option("--rate", rate, "Requests per second")->capture_default_str();
  app.add_option("--duration", duration_s, "Measured seconds")->capture_default_str();
  app.add_option("--warmup", warmup_s, "Seconds before measuring")->capture_default_str();
  app.add_option("--connections", connections, "Keep-alive connections")->capture_default_str();
  app.add_option("--agent", agent, "HOST:PORT of a running agent (default: start one, with "
                                   "an ephemeral broker)");
  CLI11_PARSE(app, argc, argv);

  TempDir dir;
  AgentStack stack;
  if (agent.empty()) {
    stack = StartAgentStack(dir, connections + 8);
    agent = "127.0.0.1:" + std::to_string(stack.agent_port);
  }
  std::string host = agent.substr(0, agent.rfind(':'));
  int port = std::atoi(agent.substr(agent.rfind(':') + 1).c_str());

  std::printf("pcscf_agent_bench: POST /v1/credentials at %.0f/s for %.0f s (+%.0f s warm-up) "
              "over %d keep-alive connections to %s\n",
              rate, duration_s, warmup_s, connections, agent.c_str());
  std::fflush(stdout);

  std::mutex mu;
  std::vector<double> service_ms, latency_ms;  // send->answer, schedule->answer
  std::atomic<long> errors{0}, sent{0};
  const double total_s = warmup_s + duration_s;
  const long total = static_cast<long>(rate * total_s);
  const long warmup = static_cast<long>(rate * warmup_s);
  auto t0 = Clock::now() + std::chrono::milliseconds(100);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client cli(host, port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(5, 0);
      std::vector<double> s_local, l_local;
      for (long k = c; k < total; k += connections) {
        auto scheduled = t0 + std::chrono::nanoseconds(static_cast<long>(k * 1e9 / rate));
        std::this_thread::sleep_until(scheduled);
        auto start = Clock::now();
        std::string body = "{\"impu\":\"sip:b" + std::to_string(k) + "@example.org\"}";
        auto r = cli.Post("/v1/credentials", body, "application/json");
        auto end = Clock::now();
        ++sent;
        if (!r || r->status != 201) {
          ++errors;
          continue;
        }
        if (k < warmup) continue;
        s_local.push_back(std::chrono::duration<double, std::milli>(end - start).count());
        l_local.push_back(std::chrono::duration<double, std::milli>(end - scheduled).count());
      }
      std::lock_guard lock(mu);
      service_ms.insert(service_ms.end(), s_local.begin(), s_local.end());
      latency_ms.insert(latency_ms.end(), l_local.begin(), l_local.end());
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("completed %ld requests in %.2f s: %.0f req/s reached (target %.0f), %ld errors\n",
              sent.load(), elapsed, static_cast<double>(sent.load()) / elapsed, rate,
              errors.load());
  std::printf("service time (send -> 201):        %s\n",
              Format(Summarize(service_ms), "ms").c_str());
  std::printf("latency from schedule (open loop): %s\n",
              Format(Summarize(latency_ms), "ms").c_str());
  return errors.load() == 0 ? 0 : 1;
}
