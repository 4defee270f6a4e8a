// pcscf_agent_bench: pcscf-turn-agent alone. POST /v1/credentials at a fixed
// rate over keep-alive connections (open loop: each request has its
// scheduled send time), every request a new IMPU, so each one mints a new
// credential: in per-credential mode it publishes to a real turn-broker and
// waits for its acknowledgement; in shared-secret mode (approach 1) it is
// minted locally with the active secret. Both modes in one run (--modes),
// each with its own broker and agent, in alternating rounds. Reports latency
// p50/p99 and the throughput reached. Targets at 2,000 requests/s: p99
// under 2 ms per-credential, 0.5 ms shared-secret (docs/pcscf-plugin.md#benchmarks).
//
// First it probes the machine (report.h: on a busy machine every figure is
// marked [noisy]); then, in the same run, the floors: the HTTP hop alone
// (GET of an unknown path, 404, no minting or publishing) on the same
// schedule and connections, and one gRPC hop (GetStatus on the broker at the
// same rate); then the agent's requests, printed beside the HTTP floor.
// --floor measures the HTTP floor only.
//
//   pcscf_agent_bench [--rate 2000] [--duration 10] [--connections 16]
//                     [--modes per-credential,shared-secret] [--rounds 1] [--quick]
//                     [--agent HOST:PORT]   (default: starts broker + agent per mode)
//                     [--ab-agent-flag FLAG] (a second stack per mode with FLAG: A/B)
//                     [--floor] [--trace FILE] [--cpu-seconds 3] [--require-quiet]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "pcscf_bench_support.h"
#include "process.h"
#include "report.h"

using namespace turnbroker::bench;

int main(int argc, char** argv) {
  HttpLoad load;
  std::string agent;
  bool floor_only = false;
  std::string trace_path;
  QuietOptions quiet;
  std::vector<std::string> modes = {"per-credential", "shared-secret"};
  int rounds = 1;
  bool quick = false;
  std::string ab_flag;
  CLI::App app{
      "pcscf_agent_bench: pcscf-turn-agent's POST /v1/credentials at a fixed rate "
      "over keep-alive connections (docs/pcscf-plugin.md#benchmarks)"};
  app.add_option("--rate", load.rate, "Requests per second")->capture_default_str();
  app.add_option("--duration", load.duration_s, "Measured seconds")->capture_default_str();
  app.add_option("--warmup", load.warmup_s, "Seconds before measuring")->capture_default_str();
  app.add_option("--connections", load.connections, "Keep-alive connections")
      ->capture_default_str();
  app.add_option("--agent", agent,
                 "HOST:PORT of a running agent (default: start one, with "
                 "an ephemeral broker)");
  app.add_flag("--floor", floor_only,
               "Measure only the floor: GET of an unknown path (answered 404 without minting or "
               "publishing), the HTTP hop's own cost on this machine, same schedule");
  app.add_option("--trace", trace_path,
                 "Write one line per measured request: index, scheduled and sent time "
                 "(ms from the start), service time (ms)");
  app.add_option("--modes", modes,
                 "The agent's --mode for each stack, measured in turn (comma-separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"per-credential", "shared-secret"}))
      ->capture_default_str();
  app.add_option("--rounds", rounds, "Rounds; each measures every mode once, in turn")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--ab-agent-flag", ab_flag,
                 "A/B: per mode, a second stack whose agent also gets this flag (e.g. "
                 "--http-answer-inline=false); every round measures both, A then B")
      ->check([](const std::string& f) {
        return f.rfind("--", 0) == 0 ? "" : "--ab-agent-flag: give one flag, e.g. --name=value";
      });
  app.add_flag("--quick", quick,
               "A smoke run: 200/s for 1 s (+0.5 s warm-up), 4 connections, 1 s probe");
  AddQuietFlags(app, &quiet);
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    load.rate = 200, load.duration_s = 1, load.warmup_s = 0.5, load.connections = 4;
    quiet.probe_seconds = std::min(quiet.probe_seconds, 1.0);
  }
  // Opened now: a path that cannot be written fails before the run, not after.
  FILE* trace_file = nullptr;
  if (!trace_path.empty() && (trace_file = std::fopen(trace_path.c_str(), "w")) == nullptr) {
    std::fprintf(stderr, "--trace: cannot write %s\n", trace_path.c_str());
    return 2;
  }
  ProbeMachine(quiet);

  turnbroker::testing::TempDir dir;
  // One stack per mode, two with --ab-agent-flag (an external --agent is
  // measured as it runs). `runs`: each round's (label, mode) in turn.
  std::map<std::string, AgentStack> stacks;
  std::map<std::string, std::string> agents;
  std::vector<std::pair<std::string, std::string>> runs;
  if (agent.empty()) {
    if (floor_only) modes.resize(1);
    for (const std::string& mode : modes) {
      runs.emplace_back(mode, mode);
      if (!ab_flag.empty() && !floor_only) runs.emplace_back(mode + " " + ab_flag, mode);
    }
    for (const auto& [label, mode] : runs) {
      std::vector<std::string> extra;
      if (label != mode) extra.push_back(ab_flag);
      AgentStack& stack = stacks[label] = StartAgentStack(dir, load.connections + 8, mode, extra);
      agents[label] = "127.0.0.1:" + std::to_string(stack.agent_port);
    }
  } else {
    runs = {{"as started", "as started"}};
    agents["as started"] = agent;
  }
  modes.clear();
  for (const auto& run : runs) modes.push_back(run.first);
  auto aim = [&](HttpLoad& l, const std::string& mode) {
    const std::string& a = agents[mode];
    l.host = a.substr(0, a.rfind(':'));
    l.port = std::atoi(a.substr(a.rfind(':') + 1).c_str());
  };
  aim(load, modes[0]);

  std::printf(
      "pcscf_agent_bench: %s at %.0f/s for %.1f s (+%.1f s warm-up) "
      "over %d keep-alive connections, %d round(s)\n",
      floor_only ? "only the HTTP floor" : "POST /v1/credentials, after the floors", load.rate,
      load.duration_s, load.warmup_s, load.connections, rounds);
  std::fflush(stdout);

  HttpLoadResult r;
  long floor_errors = 0;
  if (floor_only) {
    HttpLoad floor = load;
    floor.floor = true;
    r = RunHttpLoad(floor, trace_file != nullptr);
    std::printf("floor, HTTP hop (GET of an unknown path, 404): %ld requests, %ld errors\n", r.sent,
                r.errors);
    std::printf("service time (send -> 404):        %s%s\n", Format(r.service, "ms").c_str(),
                Mark());
    std::printf("latency from schedule (open loop): %s%s\n", Format(r.latency, "ms").c_str(),
                Mark());
  } else {
    const auto first = stacks.find(modes[0]);
    const Floors floors =
        MeasureFloors(load, first == stacks.end() ? "" : first->second.broker_address);
    PrintFloors(floors);
    floor_errors = floors.http.errors;
    long errors = 0;
    for (int round = 1; round <= rounds; ++round) {
      for (const auto& [label, mode] : runs) {
        HttpLoad l = load;
        aim(l, label);
        // The trace is of the last run.
        r = RunHttpLoad(l, trace_file != nullptr);
        errors += r.errors;
        const char* target = mode == "shared-secret"    ? "p99 <= 0.5 ms at 2,000/s"
                             : mode == "per-credential" ? "p99 < 2 ms at 2,000/s"
                                                        : "";
        std::printf("--- round %d, mode %s (target %s; %s)\n", round, label.c_str(), target,
                    agents[label].c_str());
        std::printf(
            "completed %ld requests in %.2f s: %.0f req/s reached (target %.0f), %ld errors\n",
            r.sent, r.elapsed_s, static_cast<double>(r.sent) / r.elapsed_s, l.rate, r.errors);
        std::printf("service time (send -> 201):        %s\n",
                    BesideFloor(r.service.p50 * 1e3, r.service.p99 * 1e3,
                                floors.http.service.p50 * 1e3, floors.http.service.p99 * 1e3)
                        .c_str());
        std::printf("                                   %s%s\n", Format(r.service, "ms").c_str(),
                    Mark());
        std::printf("latency from schedule (open loop): %s\n",
                    BesideFloor(r.latency.p50 * 1e3, r.latency.p99 * 1e3,
                                floors.http.latency.p50 * 1e3, floors.http.latency.p99 * 1e3)
                        .c_str());
        std::fflush(stdout);
      }
    }
    r.errors = errors;
  }
  if (FILE* f = trace_file) {
    // CLOCK_MONOTONIC (steady_clock): lines up with `perf record -k mono`.
    std::fprintf(f, "# t0 %.6f s (CLOCK_MONOTONIC)\n# index scheduled_ms sent_ms service_ms\n",
                 r.t0_us / 1e6);
    for (const auto& t : r.trace) {
      std::fprintf(f, "%ld %.3f %.3f %.3f\n", t.k, t.scheduled_ms, t.sent_ms, t.service_ms);
    }
    std::fclose(f);
  }
  const int machine = CheckMachineAfterRun();
  return r.errors == 0 && floor_errors == 0 ? machine : 1;
}
