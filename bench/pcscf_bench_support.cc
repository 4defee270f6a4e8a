#include "pcscf_bench_support.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "open_loop.h"
#include "report.h"
#include "status_floor.h"

namespace turnbroker::bench {

using testing::BuiltBinary;
using testing::FreePort;
using testing::Subprocess;

namespace {

// Stages and activates a fresh secret for example.org on the (plaintext)
// broker, so that a shared-secret agent can mint.
void ActivateSecret(const std::string& broker_address) {
  auto stub = v1::CredentialBroker::NewStub(
      grpc::CreateChannel(broker_address, grpc::InsecureChannelCredentials()));
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(10);
  grpc::Status added, activated;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    v1::AddSecretRequest req;
    req.mutable_secret()->set_realm("example.org");
    req.mutable_secret()->set_id("bench");
    req.mutable_secret()->set_secret("bench-secret-0123456789-abcdefghijklmnop");
    v1::SecretResponse resp;
    added = stub->AddSecret(&ctx, req, &resp);
  }
  // No TURN sync watches this broker: activation is not held back, but
  // wait a little should it be.
  while (added.ok() && std::chrono::system_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    v1::ActivateSecretRequest req;
    req.mutable_ref()->set_realm("example.org");
    req.mutable_ref()->set_id("bench");
    v1::SecretResponse resp;
    activated = stub->ActivateSecret(&ctx, req, &resp);
    if (activated.error_code() != grpc::StatusCode::FAILED_PRECONDITION) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!added.ok() || !activated.ok()) {
    std::fprintf(stderr, "cannot add and activate a shared secret: %s\n",
                 (added.ok() ? activated : added).error_message().c_str());
    std::exit(1);
  }
}

}  // namespace

AgentProcess StartAgent(const std::string& broker_address, const std::string& log_path,
                        int http_threads, const std::string& mode,
                        const std::vector<std::string>& extra_args) {
  AgentProcess a;
  a.port = FreePort();
  std::vector<std::string> argv = {BuiltBinary("pcscf-turn-agent"),
                                   "--broker",
                                   broker_address,
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(a.port),
                                   "--realm",
                                   "example.org",
                                   "--turn-uri",
                                   "turn:127.0.0.1:3478?transport=udp",
                                   "--http-threads",
                                   std::to_string(http_threads),
                                   "--mode",
                                   mode,
                                   "--log-level",
                                   "warn"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  a.process = std::make_unique<Subprocess>(argv, log_path);
  if (!a.process->WaitForOutput("pcscf-turn-agent listening on", std::chrono::seconds(10))) {
    std::fprintf(stderr, "pcscf-turn-agent did not start:\n%s\n", a.process->Output().c_str());
    std::exit(1);
  }
  // Ready: in shared-secret mode once the secret has arrived over Watch.
  httplib::Client cli("127.0.0.1", a.port);
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    auto r = cli.Get("/healthz");
    ready = r && r->status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!ready) {
    std::fprintf(stderr, "pcscf-turn-agent (--mode %s) not ready in 10 s:\n%s\n", mode.c_str(),
                 a.process->Output().c_str());
    std::exit(1);
  }
  return a;
}

AgentStack StartAgentStack(const testing::TempDir& dir, int http_threads, const std::string& mode,
                           const std::vector<std::string>& extra_agent_args) {
  AgentStack s;
  static int stacks = 0;  // each stack its own log files
  const std::string name = mode + "-" + std::to_string(++stacks);
  s.broker_address = "127.0.0.1:" + std::to_string(FreePort());
  s.broker = std::make_unique<Subprocess>(
      std::vector<std::string>{BuiltBinary("turn-broker"), "--listen", s.broker_address,
                               "--ephemeral", "--log-level", "warn"},
      dir.File("broker-" + name + ".log"));
  if (!s.broker->WaitForOutput("turn-broker listening on", std::chrono::seconds(10))) {
    std::fprintf(stderr, "turn-broker did not start:\n%s\n", s.broker->Output().c_str());
    std::exit(1);
  }
  if (mode == "shared-secret") ActivateSecret(s.broker_address);
  AgentProcess agent = StartAgent(s.broker_address, dir.File("agent-" + name + ".log"),
                                  http_threads, mode, extra_agent_args);
  s.agent = std::move(agent.process);
  s.agent_port = agent.port;
  return s;
}

HttpLoadResult RunHttpLoad(const HttpLoad& load, bool trace) {
  std::mutex mu;
  std::vector<double> service_ms, latency_ms;
  HttpLoadResult result;
  size_t lost = 0;
  std::atomic<long> errors{0}, sent{0};
  // A new IMPU per request and per call of this function.
  static std::atomic<long> series{0};
  const long this_series = series.fetch_add(1);
  const long total = static_cast<long>(load.rate * (load.warmup_s + load.duration_s));
  const long warmup = static_cast<long>(load.rate * load.warmup_s);
  const OpenLoopSchedule schedule(load.rate);
  std::vector<std::thread> threads;
  for (int c = 0; c < load.connections; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client cli(load.host, load.port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(5, 0);
      std::vector<double> s_local, l_local;
      std::vector<HttpLoadResult::TraceLine> t_local;
      size_t lost_local = 0;
      for (long k = c; k < total; k += load.connections) {
        schedule.SleepUntil(k);
        const int64_t start = MonotonicMicros();
        std::string body = "{\"impu\":\"sip:b" + std::to_string(this_series) + "-" +
                           std::to_string(k) + "@example.org\"}";
        auto r = load.floor ? cli.Get("/v1/floor")
                            : cli.Post("/v1/credentials", body, "application/json");
        const int64_t end = MonotonicMicros();
        ++sent;
        const bool ok = r && r->status == (load.floor ? 404 : 201);
        if (!ok) ++errors;
        if (k < warmup) continue;
        if (!ok) {
          ++lost_local;
          continue;
        }
        s_local.push_back((end - start) / 1e3);
        l_local.push_back((end - schedule.At(k)) / 1e3);
        if (trace) {
          auto ms = [&](int64_t us) { return (us - schedule.t0()) / 1e3; };
          t_local.push_back({k, ms(schedule.At(k)), ms(start), s_local.back()});
        }
      }
      std::lock_guard lock(mu);
      service_ms.insert(service_ms.end(), s_local.begin(), s_local.end());
      latency_ms.insert(latency_ms.end(), l_local.begin(), l_local.end());
      result.trace.insert(result.trace.end(), t_local.begin(), t_local.end());
      lost += lost_local;
    });
  }
  for (auto& t : threads) t.join();
  result.elapsed_s = (MonotonicMicros() - schedule.t0()) / 1e6;
  result.service = Summarize(std::move(service_ms), lost);
  result.latency = Summarize(std::move(latency_ms), lost);
  result.sent = sent.load();
  result.errors = errors.load();
  result.t0_us = schedule.t0();
  std::sort(result.trace.begin(), result.trace.end(),
            [](const auto& a, const auto& b) { return a.k < b.k; });
  return result;
}

Floors MeasureFloors(const HttpLoad& load, const std::string& broker_address) {
  Floors f;
  HttpLoad floor = load;
  floor.floor = true;
  f.http = RunHttpLoad(floor);
  if (!broker_address.empty()) {
    auto stub = v1::CredentialBroker::NewStub(
        grpc::CreateChannel(broker_address, grpc::InsecureChannelCredentials()));
    f.grpc = OpenLoopStatus(stub.get(), static_cast<int>(load.rate), load.duration_s);
  }
  return f;
}

void PrintFloors(const Floors& f) {
  std::printf("floor, HTTP hop (GET of an unknown path, 404), service time: %s%s\n",
              Format(f.http.service, "ms").c_str(), Mark());
  if (f.grpc) {
    std::printf("floor, gRPC hop (GetStatus on the broker, same rate):        %s%s\n",
                Format(*f.grpc, "ms", 1e-3).c_str(), Mark());
  }
}

}  // namespace turnbroker::bench
