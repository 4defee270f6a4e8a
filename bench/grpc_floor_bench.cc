// grpc_floor_bench: the latency floor of one hop on this machine, measured
// the way the other benchmarks measure the broker (open loop: sends
// scheduled by the clock, latency counted from the scheduled time, the first
// 0.5 s left out), with servers that do no work at all:
//
//   tcp     raw TCP echo of 8 bytes (a blocking thread per side)
//   unary   gRPC unary call to a no-op handler (callback API, as the broker)
//   stream  one gRPC bidirectional stream, each message echoed
//   relay   the broker's job with nothing of the broker in it: each message
//           of a publish stream is sent to --watchers watch streams (each
//           on its own connection) and answered; latency to the last
//           watcher
//
// The server runs in a child process (this program with --serve), as the
// broker does, and each path also prints the server's CPU and context
// switches per message (/proc, proc_usage.h): the CPU floor beside the
// broker's CPU per credential (docs/benchmarks.md). What the broker's paths
// add above these figures is the broker's; what these figures add above
// raw TCP is the gRPC library's (Debian's gRPC 1.51) and this machine's.
//
// First it probes the machine (report.h): on a busy machine every figure is
// marked [noisy]. The gRPC paths are printed beside raw TCP, the floor under
// them measured in the same run.
//
// Usage: grpc_floor_bench [--rates 1000,2000,5000] [--runs 3] [--seconds 4]
//                         [--watchers 8] [--cpu-seconds 3] [--require-quiet]
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "open_loop.h"
#include "percentiles.h"
#include "proc_usage.h"
#include "process.h"
#include "relay_floor.h"
#include "report.h"
#include "status_floor.h"
#include "stream_floor.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::bench {
namespace {

namespace v1 = ::turnbroker::v1;

// ---- server side (child process) -----------------------------------------

// The unary handler: answers at once (the broker's GetStatus without the
// state).
class UnaryEcho final : public v1::CredentialBroker::CallbackService {
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest*,
                                      v1::GetStatusResponse* response) override {
    response->set_revision(1);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

void ServeTcpEcho(int port) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 16) != 0) {
    std::perror("tcp echo: bind/listen");
    std::exit(1);
  }
  std::thread([listener] {
    for (;;) {
      int c = accept(listener, nullptr, nullptr);
      if (c < 0) continue;
      std::thread([c] {
        int on = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        char buf[65536];
        for (;;) {
          ssize_t n = read(c, buf, sizeof buf);
          if (n <= 0 || write(c, buf, static_cast<size_t>(n)) != n) break;
        }
        close(c);
      }).detach();
    }
  }).detach();
}

int Serve(int tcp_port, int grpc_port) {
  ServeTcpEcho(tcp_port);
  UnaryEcho unary;
  return ServeFloors(grpc_port, &unary);
}

// ---- client side -----------------------------------------------------------

Percentiles RunTcp(int port, int rate, double seconds) {
  const size_t n = static_cast<size_t>(rate * seconds);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("tcp connect");
    std::exit(1);
  }
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::vector<int64_t> arrived(n, 0);
  std::atomic<size_t> seen{0};
  std::thread reader([&] {
    char buf[65536];
    size_t have = 0;
    while (seen.load() < n) {
      ssize_t k = read(s, buf + have, sizeof buf - have);
      if (k <= 0) break;
      have += static_cast<size_t>(k);
      int64_t now = MonotonicMicros();
      size_t off = 0;
      for (; have - off >= 8; off += 8) {
        uint64_t seq;
        std::memcpy(&seq, buf + off, 8);
        if (seq < n) arrived[seq] = now;
        seen.fetch_add(1);
      }
      std::memmove(buf, buf + off, have - off);
      have -= off;
    }
  });
  Percentiles r = OpenLoopRoundTrips(
      rate,
      [s](size_t i) {
        uint64_t seq = i;
        if (write(s, &seq, sizeof seq) != sizeof seq) std::perror("tcp write");
      },
      [&] { return seen.load(); }, arrived);
  shutdown(s, SHUT_RDWR);
  reader.join();
  close(s);
  return r;
}

Percentiles RunUnary(const std::string& address, int rate, double seconds) {
  auto stub = v1::CredentialBroker::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  return OpenLoopStatus(stub.get(), rate, seconds);
}

}  // namespace
}  // namespace turnbroker::bench

int main(int argc, char** argv) {
  using namespace turnbroker::bench;
  CLI::App app{
      "grpc_floor_bench: latency of one no-op hop on this machine (raw TCP, gRPC unary, "
      "gRPC stream), open loop"};
  std::vector<int> rates{1000, 2000, 5000};
  int runs = 3;
  int watchers = 8;
  double seconds = 4;
  QuietOptions quiet;
  bool serve = false;
  int tcp_port = 0, grpc_port = 0;
  app.add_option("--rates", rates, "Messages per second (comma-separated)")->delimiter(',');
  app.add_option("--runs", runs, "Runs of each (the median is reported)");
  app.add_option("--watchers", watchers, "Watch streams the relay path sends every message to");
  app.add_option("--seconds", seconds, "Seconds per run (the first 0.5 s is left out)");
  AddQuietFlags(app, &quiet);
  app.add_flag("--serve", serve, "(internal) be the server");
  app.add_option("--tcp-port", tcp_port, "(internal)");
  app.add_option("--grpc-port", grpc_port, "(internal)");
  CLI11_PARSE(app, argc, argv);
  if (serve) return Serve(tcp_port, grpc_port);

  ProbeMachine(quiet);
  using turnbroker::testing::FreePort;
  turnbroker::testing::TempDir dir;
  tcp_port = FreePort();
  grpc_port = FreePort();
  auto server = StartFloorServer(
      {"--serve", "--tcp-port", std::to_string(tcp_port), "--grpc-port", std::to_string(grpc_port)},
      dir.File("server.log"));
  if (!server) return 1;
  const std::string address = "127.0.0.1:" + std::to_string(grpc_port);
  std::printf(
      "one no-op hop, open loop, %d runs of %.1f s (medians of p50 / p99; the gRPC "
      "paths beside raw TCP, their floor)\n",
      runs, seconds);
  const std::string relay_name = "relay to " + std::to_string(watchers) + " watchers";
  for (int rate : rates) {
    std::map<std::string, std::vector<double>> p50, p99, cpu, switches;
    for (int run = 0; run < runs; ++run) {
      // Interleaved, so that a noisy minute hits all of them alike.
      for (const char* path : {"tcp", "unary", "stream", "relay"}) {
        std::string p = path;
        const UsageWindow usage(server->pid());
        Percentiles r = p == "tcp"      ? RunTcp(tcp_port, rate, seconds)
                        : p == "unary"  ? RunUnary(address, rate, seconds)
                        : p == "stream" ? OpenLoopStreamEcho(address, rate, seconds)
                                        : RunRelay(address, watchers, rate, seconds);
        const std::optional<ProcessUsage> used = usage.Stop();
        const double messages = rate * seconds;
        p50[p].push_back(r.p50);
        p99[p].push_back(r.p99);
        if (used) {
          cpu[p].push_back(used->cpu_us / messages);
          switches[p].push_back((used->voluntary_switches + used->involuntary_switches) / messages);
        }
        std::fprintf(
            stderr, "  %5d/s run %d %-6s %s; server %s%s\n", rate, run + 1, path,
            Format(r, "ms", 1e-3).c_str(),
            used ? FormatPerCredential(*used, messages, seconds, "message").c_str() : "(no /proc)",
            Mark());
      }
    }
    const double tcp50 = Median(p50["tcp"]), tcp99 = Median(p99["tcp"]);
    auto server_cost = [&](const std::string& p) {
      if (cpu[p].empty()) return std::string("server: no /proc");
      char b[128];
      std::snprintf(b, sizeof b, "server %.1f us CPU, %.2f switches per message", Median(cpu[p]),
                    Median(switches[p]));
      return std::string(b);
    };
    std::printf("  %5d/s  %-27s p50 %s ms  p99 %s ms   %s%s\n", rate, "raw TCP echo (the floor)",
                FormatValue(tcp50, 1e-3).c_str(), FormatValue(tcp99, 1e-3).c_str(),
                server_cost("tcp").c_str(), Mark());
    for (const char* path : {"unary", "stream", "relay"}) {
      const std::string p = path;
      std::printf("  %5d/s  %-27s %s   %s\n", rate,
                  p == "unary"    ? "gRPC unary, no-op handler"
                  : p == "stream" ? "gRPC stream, echo"
                                  : relay_name.c_str(),
                  BesideFloor(Median(p50[p]), Median(p99[p]), tcp50, tcp99).c_str(),
                  server_cost(p).c_str());
    }
  }
  return CheckMachineAfterRun();
}
