// pcscf_agent_bench: pcscf-turn-agent alone. POST /v1/credentials at a fixed
// rate over keep-alive connections (open loop: each request has its
// scheduled send time), every request a new IMPU, so each one mints,
// publishes to a real turn-broker and waits for its acknowledgement.
// Reports latency p50/p99 and the throughput reached. Target (issue 4): p99
// under 2 ms at 2,000 requests/s.
//
// --floor sends GET of an unknown path instead (404, no minting, no
// publishing): the HTTP hop's own floor, on the same schedule. Before the
// load it probes how steady the CPUs are (cpu_steadiness.h).
//
//   pcscf_agent_bench [--rate 2000] [--duration 10] [--connections 16]
//                     [--agent HOST:PORT]   (default: starts broker + agent)
//                     [--floor] [--trace FILE] [--cpu-seconds 3]
#include <httplib.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpu_steadiness.h"
#include "pcscf_bench_support.h"
#include "process.h"

using namespace turnbroker::bench;
using turnbroker::testing::TempDir;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  double rate = 2000, duration_s = 10, warmup_s = 1;
  int connections = 16;
  std::string agent;
  bool floor = false;
  std::string trace_path;
  double cpu_seconds = 3;
  CLI::App app{"pcscf_agent_bench: pcscf-turn-agent's POST /v1/credentials at a fixed rate "
               "over keep-alive connections (docs/pcscf-plugin.md#benchmarks)"};
  app.add_option("--rate", rate, "Requests per second")->capture_default_str();
  app.add_option("--duration", duration_s, "Measured seconds")->capture_default_str();
  app.add_option("--warmup", warmup_s, "Seconds before measuring")->capture_default_str();
  app.add_option("--connections", connections, "Keep-alive connections")->capture_default_str();
  app.add_option("--agent", agent, "HOST:PORT of a running agent (default: start one, with "
                                   "an ephemeral broker)");
  app.add_flag("--floor", floor,
               "Send GET of an unknown path instead (answered 404 without minting or "
               "publishing): the HTTP hop's own floor on this machine, same schedule");
  app.add_option("--cpu-seconds", cpu_seconds,
                 "Seconds of the CPU steadiness probe, run before the load (0: skip)");
  app.add_option("--trace", trace_path,
                 "Write one line per measured request: index, scheduled and sent time "
                 "(ms from the start), service time (ms)");
  CLI11_PARSE(app, argc, argv);
  // Opened now: a path that cannot be written fails before the run, not after.
  FILE* trace_file = nullptr;
  if (!trace_path.empty() && (trace_file = std::fopen(trace_path.c_str(), "w")) == nullptr) {
    std::fprintf(stderr, "--trace: cannot write %s\n", trace_path.c_str());
    return 2;
  }

  TempDir dir;
  AgentStack stack;
  if (agent.empty()) {
    stack = StartAgentStack(dir, connections + 8);
    agent = "127.0.0.1:" + std::to_string(stack.agent_port);
  }
  std::string host = agent.substr(0, agent.rfind(':'));
  int port = std::atoi(agent.substr(agent.rfind(':') + 1).c_str());

  if (cpu_seconds > 0) {
    std::printf("cpu steadiness (%.0f s, every CPU): %s\n", cpu_seconds,
                FormatCpuSteadiness(MeasureCpuSteadiness(cpu_seconds)).c_str());
  }
  std::printf("pcscf_agent_bench: %s at %.0f/s for %.0f s (+%.0f s warm-up) "
              "over %d keep-alive connections to %s\n",
              floor ? "GET of an unknown path (the HTTP floor)" : "POST /v1/credentials", rate,
              duration_s, warmup_s, connections, agent.c_str());
  std::fflush(stdout);

  std::mutex mu;
  std::vector<double> service_ms, latency_ms;  // send->answer, schedule->answer
  struct TraceLine {
    long k;
    double scheduled_ms, sent_ms, service_ms;
  };
  std::vector<TraceLine> trace;
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
      std::vector<TraceLine> t_local;
      for (long k = c; k < total; k += connections) {
        auto scheduled = t0 + std::chrono::nanoseconds(static_cast<long>(k * 1e9 / rate));
        std::this_thread::sleep_until(scheduled);
        auto start = Clock::now();
        std::string body = "{\"impu\":\"sip:b" + std::to_string(k) + "@example.org\"}";
        auto r = floor ? cli.Get("/v1/floor")
                       : cli.Post("/v1/credentials", body, "application/json");
        auto end = Clock::now();
        ++sent;
        if (!r || r->status != (floor ? 404 : 201)) {
          ++errors;
          continue;
        }
        if (k < warmup) continue;
        s_local.push_back(std::chrono::duration<double, std::milli>(end - start).count());
        l_local.push_back(std::chrono::duration<double, std::milli>(end - scheduled).count());
        if (!trace_path.empty()) {
          auto ms = [&](Clock::time_point t) {
            return std::chrono::duration<double, std::milli>(t - t0).count();
          };
          t_local.push_back({k, ms(scheduled), ms(start), s_local.back()});
        }
      }
      std::lock_guard lock(mu);
      service_ms.insert(service_ms.end(), s_local.begin(), s_local.end());
      latency_ms.insert(latency_ms.end(), l_local.begin(), l_local.end());
      trace.insert(trace.end(), t_local.begin(), t_local.end());
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("completed %ld requests in %.2f s: %.0f req/s reached (target %.0f), %ld errors\n",
              sent.load(), elapsed, static_cast<double>(sent.load()) / elapsed, rate,
              errors.load());
  std::printf("service time (send -> %s):        %s\n", floor ? "404" : "201",
              Format(Summarize(service_ms), "ms").c_str());
  std::printf("latency from schedule (open loop): %s\n",
              Format(Summarize(latency_ms), "ms").c_str());
  if (FILE* f = trace_file) {
    std::sort(trace.begin(), trace.end(),
              [](const TraceLine& a, const TraceLine& b) { return a.k < b.k; });
    // steady_clock is CLOCK_MONOTONIC: lines up with `perf record -k mono`.
    std::fprintf(f, "# t0 %.6f s (CLOCK_MONOTONIC)\n# index scheduled_ms sent_ms service_ms\n",
                 std::chrono::duration<double>(t0.time_since_epoch()).count());
    for (const auto& t : trace) {
      std::fprintf(f, "%ld %.3f %.3f %.3f\n", t.k, t.scheduled_ms, t.sent_ms, t.service_ms);
    }
    std::fclose(f);
  }
  return errors.load() == 0 ? 0 : 1;
}
