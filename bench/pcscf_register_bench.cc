// pcscf_register_bench: REGISTER through Kamailio with the reference
// configuration at a fixed rate with sipp, once with the credential step and
// once with it disabled (-A TURN_DISABLED), in one run, alternating rounds;
// reports the response time of each and the time the credential step adds
// (p50, p99). Target (docs/pcscf-plugin.md#benchmarks): p99 under 3 ms at
// 1,000 REGISTER/s.
//
// sipp's own response-time file has whole-millisecond (in practice 4 ms)
// resolution, so the response time of each REGISTER is taken from sipp's
// message trace (-trace_msg), whose timestamps are in microseconds. A
// REGISTER that got no 200 is a lost sample (percentiles.h).
//
// First it probes the machine (report.h: on a busy machine every figure is
// marked [noisy]). After the rounds, in the same run, it measures the floors
// of the two hops the credential step makes: HTTP to the agent (GET of an
// unknown path, 404) over --workers connections, and gRPC to the broker
// (GetStatus), both at --rate; the time the step adds is printed beside
// their sum.
//
// --async adds a third configuration: the asynchronous path (Kamailio with
// WITH_ASYNC_AGENT, the same agent with --kamailio-evapi), where no SIP
// worker waits for the agent (docs/pcscf-plugin.md, "The asynchronous path").
//
//   pcscf_register_bench [--rate 1000] [--duration 10] [--rounds 2]
//                        [--workers 8] [--async] [--cpu-seconds 3] [--require-quiet]
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pcscf_bench_support.h"
#include "process.h"
#include "report.h"

using namespace turnbroker::bench;
using turnbroker::testing::FreePort;
using turnbroker::testing::Subprocess;
using turnbroker::testing::TempDir;

namespace {

// "----- 2026-11-28 03:54:39.787027" -> seconds since midnight.
bool ParseStamp(const std::string& line, double* seconds) {
  size_t at = line.rfind(' ');
  if (at == std::string::npos || line.size() < at + 16) return false;
  int h, m;
  double s;
  if (std::sscanf(line.c_str() + at + 1, "%d:%d:%lf", &h, &m, &s) != 3) return false;
  *seconds = h * 3600.0 + m * 60.0 + s;
  return true;
}

// Response times (ms) of every REGISTER answered 200, from a -trace_msg log.
std::vector<double> ResponseTimes(const std::string& path, size_t* failed) {
  std::ifstream in(path);
  std::map<std::string, double> sent;
  std::vector<double> out;
  double stamp = 0;
  bool is_register = false, is_200 = false, is_sent = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("-----", 0) == 0) {
      ParseStamp(line, &stamp);
      is_register = is_200 = false;
      continue;
    }
    if (line.find("message sent") != std::string::npos) is_sent = true;
    if (line.find("message received") != std::string::npos) is_sent = false;
    if (line.rfind("REGISTER sip:", 0) == 0) is_register = true;
    if (line.rfind("SIP/2.0 ", 0) == 0) is_200 = line.rfind("SIP/2.0 200", 0) == 0;
    if (line.rfind("Call-ID: ", 0) == 0) {
      std::string id = line.substr(9);
      while (!id.empty() && (id.back() == '\r' || id.back() == ' ')) id.pop_back();
      if (is_sent && is_register) {
        sent.emplace(id, stamp);  // a retransmission keeps the first send
      } else if (!is_sent && is_200) {
        auto it = sent.find(id);
        if (it != sent.end()) {
          out.push_back((stamp - it->second) * 1000.0);
          sent.erase(it);
        }
      }
    }
  }
  *failed = sent.size();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int rate = 1000, rounds = 2, workers = 8;
  double duration_s = 10;
  CLI::App app{
      "pcscf_register_bench: REGISTER through Kamailio with and without the "
      "credential step, sipp at a fixed rate (docs/pcscf-plugin.md#benchmarks)"};
  app.add_option("--rate", rate, "REGISTER per second")->capture_default_str();
  app.add_option("--duration", duration_s, "Seconds per round and configuration")
      ->capture_default_str();
  app.add_option("--rounds", rounds, "Rounds (each runs both configurations)")
      ->capture_default_str();
  app.add_option("--workers", workers, "Kamailio SIP workers")->capture_default_str();
  std::string memory_manager = "tlsf";
  app.add_option("--memory-manager", memory_manager,
                 "Kamailio's memory manager for shared and private memory (its -x and -X): "
                 "tlsf, or qm (Kamailio's default) to compare")
      ->capture_default_str()
      ->check(CLI::IsMember({"tlsf", "qm", "fm"}));
  bool async = false;
  app.add_flag("--async", async,
               "Also measure the asynchronous path (Kamailio with WITH_ASYNC_AGENT, the agent "
               "over evapi): a third configuration in each round");
  QuietOptions quiet;
  AddQuietFlags(app, &quiet);
  CLI11_PARSE(app, argc, argv);
  ProbeMachine(quiet);

  TempDir dir;
  const int evapi_port = FreePort();
  AgentStack stack = StartAgentStack(
      dir, 2 * workers + 8, "per-credential",
      async ? std::vector<std::string>{"--kamailio-evapi=127.0.0.1:" + std::to_string(evapi_port)}
            : std::vector<std::string>{});
  const int aport = stack.agent_port;
  struct Config {
    const char* name = "";
    bool disabled = false;
    bool async = false;
    int port = 0;
    std::unique_ptr<Subprocess> kamailio;
    std::vector<double> times;
    size_t failed = 0;
  };
  std::vector<Config> configs(async ? 3 : 2);
  configs[0].name = "with credential step";
  configs[1].name = "credential step disabled";
  configs[1].disabled = true;
  if (async) {
    configs[2].name = "with credential step, async";
    configs[2].async = true;
  }
  for (auto& c : configs) {
    c.port = FreePort();
    std::string run = dir.File("kamailio-" + std::to_string(c.port));
    std::vector<std::string> argv = {
        "kamailio", "-DD", "-E", "-f", std::string(PCSCF_KAMAILIO_DIR) + "/kamailio.cfg", "-Y",
        "/tmp", "-P", run + ".pid", "-m", "128", "-M", "16", "-x", memory_manager, "-X",
        memory_manager, "-A", "SIP_LISTEN_UDP=udp:127.0.0.1:" + std::to_string(c.port), "-A",
        "SIP_LISTEN_TCP=tcp:127.0.0.1:" + std::to_string(c.port), "-A",
        "AGENT_HTTPCON=\"turnagent=>http://127.0.0.1:" + std::to_string(aport) + ";timeout=1\"",
        "-A", "WORKERS=" + std::to_string(workers), "-A", "REG_MAX_EXPIRES=600",
        // Each call registers a new user, unauthenticated: the benchmark
        // measures the credential step, not digest authentication.
        "-A", "INSECURE_NO_AUTH"};
    if (c.disabled) argv.insert(argv.end(), {"-A", "TURN_DISABLED"});
    if (c.async) {
      argv.insert(argv.end(), {"-A", "WITH_ASYNC_AGENT", "-A",
                               "EVAPI_BIND=\"127.0.0.1:" + std::to_string(evapi_port) + "\""});
    }
    c.kamailio = std::make_unique<Subprocess>(argv, run + ".log");
    if (!c.kamailio->WaitForOutput("SO_RCVBUF is finally", std::chrono::seconds(10))) {
      std::fprintf(stderr, "kamailio did not start (%s)\n", c.kamailio->Output().c_str());
      return 1;
    }
    if (c.async && !c.kamailio->WaitForOutput("TURN agent connected on the evapi socket",
                                              std::chrono::seconds(15))) {
      std::fprintf(stderr, "the agent did not connect to Kamailio's evapi socket\n");
      return 1;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::printf(
      "pcscf_register_bench: %d REGISTER/s for %.0f s per round, %d rounds, Kamailio "
      "with %d workers, sipp over UDP; each REGISTER a new user\n",
      rate, duration_s, rounds, workers);
  std::fflush(stdout);

  long calls = static_cast<long>(rate * duration_s);
  for (int round = 0; round < rounds; ++round) {
    for (auto& c : configs) {
      std::string trace = dir.File("sipp-") + std::to_string(round) + "-" + std::to_string(c.port) +
                          "-messages.log";
      Subprocess sipp({"sipp",
                       "-sf",
                       std::string(PCSCF_KAMAILIO_DIR) + "/sipp/register_bench.xml",
                       "-r",
                       std::to_string(rate),
                       "-m",
                       std::to_string(calls),
                       "-i",
                       "127.0.0.1",
                       "-p",
                       std::to_string(FreePort()),
                       "-nostdin",
                       "-key",
                       "user",
                       "r" + std::to_string(round) + "u",
                       "-key",
                       "domain",
                       "example.org",
                       "-key",
                       "expires",
                       "600",
                       "-trace_msg",
                       "-message_file",
                       trace,
                       "-timeout",
                       std::to_string(static_cast<int>(duration_s) + 30) + "s",
                       "127.0.0.1:" + std::to_string(c.port)},
                      trace + ".out");
      auto status = sipp.Wait(std::chrono::seconds(static_cast<int>(duration_s) + 60));
      int rc = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
      size_t failed = 0;
      std::vector<double> t = ResponseTimes(trace, &failed);
      std::printf("round %d, %-25s sipp exit %d: %s (lost: unanswered)%s\n", round + 1, c.name, rc,
                  Format(Summarize(t, failed), "ms").c_str(), Mark());
      std::fflush(stdout);
      c.times.insert(c.times.end(), t.begin(), t.end());
      c.failed += failed;
      std::remove(trace.c_str());
    }
  }
  HttpLoad load;
  load.host = "127.0.0.1";
  load.port = aport;
  load.rate = rate;
  load.duration_s = duration_s;
  load.connections = workers;
  const Floors floors = MeasureFloors(load, stack.broker_address);
  PrintFloors(floors);

  Percentiles without = Summarize(configs[1].times, configs[1].failed);
  std::printf("\nREGISTER response time, all rounds:\n");
  for (const auto& c : configs)
    std::printf("  %-30s %s%s\n", c.name, Format(Summarize(c.times, c.failed), "ms").c_str(),
                Mark());
  // A difference with a lost side is lost.
  auto added = [](double a, double b) { return std::isinf(a) || std::isinf(b) ? INFINITY : a - b; };
  std::printf(
      "time added by the credential step (target p99 < 3 ms), beside the floor of its two "
      "hops (HTTP service time + gRPC):\n");
  for (const auto& c : configs) {
    if (c.disabled) continue;
    Percentiles with = Summarize(c.times, c.failed);
    std::printf("  %-30s %s\n", c.name,
                BesideFloor(added(with.p50, without.p50) * 1e3, added(with.p99, without.p99) * 1e3,
                            floors.http.service.p50 * 1e3 + (floors.grpc ? floors.grpc->p50 : 0),
                            floors.http.service.p99 * 1e3 + (floors.grpc ? floors.grpc->p99 : 0))
                    .c_str());
  }
  const int machine = CheckMachineAfterRun();
  size_t failed = 0;
  for (const auto& c : configs) failed += c.failed;
  return failed == 0 ? machine : 1;
}
