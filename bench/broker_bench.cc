// turn-broker benchmark: the real daemon (default durable configuration,
// fsync on) and this load generator on loopback.
//
//   latency     open-loop publishes of one credential each at --rate/s
//               (sends scheduled by the clock, latency counted from the
//               scheduled time) to --watchers watchers: p50/p99 publish ->
//               watcher (the first 0.5 s left out: warm-up), once per
//               --publishers mode (default: a Publish call per credential,
//               and the eP-CSCF library's batching Publisher); then, on the
//               same broker, GetStatus at the same rate: the floor of one
//               unary hop in the same run (grpc_floor_bench has more). The
//               broker's CPU and context switches per credential over the
//               measured window (proc_usage.h).
//   throughput  batched publishes (--batch, --inflight in flight) of --total
//               credentials: rate at which every watcher has all of them,
//               and the broker's CPU per credential
//   memory      broker RSS growth / live credentials, at --total live
//   disk        store bytes / credential (after a clean shutdown)
//   snapshot    time for a new watcher to receive --total live credentials
//               and SYNCED
//
// First the machine is probed (report.h): on a busy machine every figure is
// marked [noisy]. Each is run --runs times on a fresh broker; medians are
// printed (percentiles.h), and all samples go to --json.
// Usage: broker_bench [--runs 3] [--quick] [--require-quiet]
#include <google/protobuf/arena.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
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
#include "stream_publisher.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/pcscf/publisher.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::bench {
namespace {

namespace v1 = ::turnbroker::v1;
using testing::FreePort;
using testing::Subprocess;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

int64_t NowUs() { return MonotonicMicros(); }

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  if (!std::filesystem::exists(dir)) return 0;  // --broker-flag=--ephemeral
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

// A credential shaped like the ones pcscf-plugin mints: a 16-character
// username (96 bits, base64url), a subscriber IMPU, an issuer.
std::string Username(uint64_t seq) {
  char buf[24];
  snprintf(buf, sizeof buf, "u%015" PRIu64, seq);
  return buf;
}
uint64_t SeqOf(const std::string& username) { return std::stoull(username.substr(1)); }

void FillCredential(v1::Credential* c, uint64_t seq, int64_t now_ms) {
  c->set_realm("ims.example.org");
  c->set_username(Username(seq));
  c->set_key(std::string(16, static_cast<char>(seq)));
  c->set_expires_at_ms(now_ms + 3'600'000);
  char sub[48];
  snprintf(sub, sizeof sub, "sip:+1555%07" PRIu64 "@ims.example.org", seq % 10'000'000);
  c->set_subscriber(sub);
  c->set_issuer("pcscf-1");
}

std::string g_external;  // --external: use this broker instead of starting one

class Broker {
 public:
  explicit Broker(const TempDir& dir, std::vector<std::string> extra = {})
      : data_(dir.File("data")) {
    if (!g_external.empty()) {
      external_ = g_external;
      return;
    }
    port_ = testing::FreePort();
    metrics_port_ = testing::FreePort();
    std::vector<std::string> argv = {testing::BuiltBinary("turn-broker"),
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--data-dir",
                                     data_,
                                     "--log-level",
                                     "warn",
                                     "--metrics-listen",
                                     "127.0.0.1:" + std::to_string(metrics_port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<testing::Subprocess>(argv, dir.File("broker.log"));
    if (!process_->WaitForOutput("listening on", std::chrono::seconds(20))) {
      fprintf(stderr, "broker did not start:\n%s\n", process_->Output().c_str());
      std::exit(1);
    }
  }
  std::string address() const {
    return external_.empty() ? "127.0.0.1:" + std::to_string(port_) : external_;
  }
  pid_t pid() const { return process_ ? process_->pid() : 0; }
  // A counter or gauge of the broker's /metrics (no labels); nullopt for
  // --external or when it cannot be read.
  std::optional<double> Metric(const std::string& name) const {
    if (!process_) return std::nullopt;
    httplib::Client cli("127.0.0.1", metrics_port_);
    cli.set_read_timeout(5, 0);
    auto r = cli.Get("/metrics");
    if (!r || r->status != 200) return std::nullopt;
    const std::string prefix = "\n" + name + " ";
    size_t at = r->body.find(prefix);
    if (at == std::string::npos) return std::nullopt;
    return std::strtod(r->body.c_str() + at + prefix.size(), nullptr);
  }
  const std::string& data() const { return data_; }
  void Stop() {
    if (!process_) return;
    process_->Signal(SIGTERM);
    process_->Wait(std::chrono::seconds(30));
  }

 private:
  std::string data_;
  std::string external_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<testing::Subprocess> process_;
};

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  // One connection per client: watchers do not share an HTTP/2 connection.
  ChannelOptions o;
  o.target = address;
  auto creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetInt("bench.unique", static_cast<int>(NowUs() & 0x7fffffff));
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, creds, args);
}

// A watcher on its own thread and connection. Records, per sequence number,
// when the put arrived (latency mode) or only counts them.
class Watcher {
 public:
  Watcher(const std::string& address, size_t expect, bool record_times)
      : channel_(NewChannel(address)),
        stub_(v1::CredentialBroker::NewStub(channel_)),
        expect_(expect),
        arrivals_(record_times ? expect : 0, 0) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Watcher() {
    context_.TryCancel();
    thread_.join();
  }
  bool WaitSynced(int seconds = 60) {
    auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (!synced_.load() && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return synced_.load();
  }
  // Waits until `expect` puts arrived; returns the time of the last one.
  int64_t WaitAll(int seconds = 120) {
    auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (received_.load() < expect_ && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    return received_.load() >= expect_ ? last_us_.load() : -1;
  }
  size_t received() const { return received_.load(); }
  const std::vector<int64_t>& arrivals() const { return arrivals_; }
  int64_t synced_at_us() const { return synced_at_us_.load(); }

 private:
  void Loop() {
    v1::WatchRequest req;
    req.set_watcher_name("bench");
    auto reader = stub_->Watch(&context_, req);
    google::protobuf::Arena arena;
    for (;;) {
      auto* r = google::protobuf::Arena::CreateMessage<v1::WatchResponse>(&arena);
      if (!reader->Read(r)) break;
      int64_t now = NowUs();
      size_t n = 0;
      for (const auto& e : r->events()) {
        if (!e.has_put()) continue;
        if (!arrivals_.empty()) {
          uint64_t seq = SeqOf(e.put().username());
          if (seq < arrivals_.size()) arrivals_[seq] = now;
        }
        ++n;
      }
      if (n) {
        last_us_.store(now);
        received_.fetch_add(n);
      }
      if (r->marker() == v1::WatchResponse::SYNCED) {
        synced_at_us_.store(now);
        synced_.store(true);
      }
      if (arena.SpaceUsed() > (8 << 20)) arena.Reset();
    }
    reader->Finish();
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  grpc::ClientContext context_;
  size_t expect_;
  std::vector<int64_t> arrivals_;
  std::atomic<size_t> received_{0};
  std::atomic<int64_t> last_us_{0};
  std::atomic<bool> synced_{false};
  std::atomic<int64_t> synced_at_us_{0};
  std::thread thread_;
};

// How the latency run publishes (--publishers).
enum class Publishing {
  kUnary,         // one Publish call per credential (gRPC callback client)
  kStream,        // each credential a request on one PublishStream
  kLibrary,       // the eP-CSCF library's Publisher (pcscf-plugin) as an eP-CSCF
                  // runs it, over its PublishStream: credentials that arrive
                  // while its calls are in flight share the next one
  kLibraryUnary,  // the same Publisher with unary Publish calls
};
const std::map<std::string, Publishing> kPublishing = {
    {"unary", Publishing::kUnary},
    {"stream", Publishing::kStream},
    {"library", Publishing::kLibrary},
    {"library-unary", Publishing::kLibraryUnary}};

struct LatencyResult {
  Percentiles delivered, acked;  // µs from the scheduled send
  double achieved_rate = 0;
  // The floor, same run: GetStatus at the same rate on the same broker.
  Percentiles floor;
  // The broker over the measured window (first send to last delivery);
  // nullopt for --external.
  std::optional<ProcessUsage> broker_usage;
  double window_seconds = 0;
  size_t credentials = 0;
  // From the broker's metrics over the same window: commit groups and Watch
  // frames sent (all watchers); nullopt for --external.
  std::optional<double> groups, frames;
};

std::vector<std::string> g_broker_flags;
// --ab-broker-flag: the B side of an A/B (A: g_broker_flags alone).
std::vector<std::string> g_ab_flags;

// --latency-trace: one line per credential of the first latency run,
// "<scheduled ms since start> <ack us> <first watcher us> <slowest watcher us>
// <issued us>" (all from the scheduled time; issued: when the load generator
// actually sent it),
// to see whether a tail is periodic (a stall) or spread (CPU queueing).
std::string g_latency_trace;

LatencyResult RunLatency(int watchers, int rate, double seconds, Publishing publishing,
                         const std::vector<std::string>& broker_flags) {
  TempDir dir;
  Broker broker(dir, broker_flags);
  const size_t n = static_cast<size_t>(rate * seconds);
  std::vector<std::unique_ptr<Watcher>> ws;
  for (int i = 0; i < watchers; ++i)
    ws.push_back(std::make_unique<Watcher>(broker.address(), n, true));
  for (auto& w : ws) w->WaitSynced();

  auto channel = NewChannel(broker.address());
  auto stub = v1::CredentialBroker::NewStub(channel);
  std::unique_ptr<pcscf::BrokerClient> library_client;
  std::unique_ptr<pcscf::Publisher> library;
  if (publishing == Publishing::kLibrary || publishing == Publishing::kLibraryUnary) {
    library_client = pcscf::NewGrpcBrokerClient(
        channel,
        pcscf::GrpcBrokerClientOptions{.publish_stream = publishing == Publishing::kLibrary});
    library = std::make_unique<pcscf::Publisher>(library_client.get(), pcscf::PublisherOptions());
  }
  std::vector<int64_t> issued(n, 0), acked(n, 0);
  std::atomic<size_t> done{0};
  struct Call {
    grpc::ClientContext ctx;
    v1::PublishRequest req;
    v1::PublishResponse resp;
  };
  std::unique_ptr<StreamPublisher> streamer;
  if (publishing == Publishing::kStream) {
    streamer = std::make_unique<StreamPublisher>(
        stub.get(), [&acked, &done](const v1::PublishStreamResponse& a) {
          if (a.code() == 0 && a.id() < acked.size()) acked[a.id()] = NowUs();
          if (a.code() != 0) fprintf(stderr, "publish failed: %s\n", a.message().c_str());
          done.fetch_add(1);
        });
  }
  int64_t now_ms = turnbroker::Clock::System()->NowMs();
  const std::optional<double> groups0 = broker.Metric("turnbroker_store_commit_groups_total");
  const std::optional<double> frames0 = broker.Metric("turnbroker_watch_frames_sent_total");
  const OpenLoopSchedule schedule(rate);
  const UsageWindow usage(broker.pid());
  for (size_t i = 0; i < n; ++i) {
    // Sleep, never spin: a spinning sender takes the CPU from gRPC's own
    // threads and the watchers and shows up as multi-millisecond tails.
    schedule.SleepUntil(i);
    issued[i] = NowUs();
    if (library) {
      v1::Credential c;
      FillCredential(&c, i, now_ms);
      library->PublishAsync(std::move(c), 30'000, [i, &acked, &done](absl::Status s) {
        if (s.ok())
          acked[i] = NowUs();
        else
          fprintf(stderr, "publish failed: %s\n", std::string(s.message()).c_str());
        done.fetch_add(1);
      });
      continue;
    }
    if (streamer) {
      v1::PublishStreamRequest r;
      r.set_id(i);
      FillCredential(r.mutable_request()->add_credentials(), i, now_ms);
      streamer->Send(std::move(r));
      continue;
    }
    auto* call = new Call;
    FillCredential(call->req.add_credentials(), i, now_ms);
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stub->async()->Publish(&call->ctx, &call->req, &call->resp,
                           [call, i, &acked, &done](grpc::Status s) {
                             if (s.ok())
                               acked[i] = NowUs();
                             else
                               fprintf(stderr, "publish failed: %s\n", s.error_message().c_str());
                             delete call;
                             done.fetch_add(1);
                           });
  }
  int64_t sent_end = NowUs();
  while (done.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (auto& w : ws) w->WaitAll();
  LatencyResult r;
  r.broker_usage = usage.Stop();
  r.window_seconds = (NowUs() - schedule.t0()) / 1e6;
  r.credentials = n;
  const std::optional<double> groups1 = broker.Metric("turnbroker_store_commit_groups_total");
  const std::optional<double> frames1 = broker.Metric("turnbroker_watch_frames_sent_total");
  if (groups0 && groups1) r.groups = *groups1 - *groups0;
  if (frames0 && frames1) r.frames = *frames1 - *frames0;
  if (streamer) streamer->Close();
  // The first half second is left out (connections and threads warming up),
  // as in turn_sync_bench. A delivery that never came is lost.
  const size_t warm = schedule.FirstMeasured(n);
  std::vector<int64_t> lat;
  lat.reserve(n * watchers);
  size_t delivered = 0, lost = 0;
  for (auto& w : ws)
    for (size_t i = 0; i < n; ++i) {
      if (w->arrivals()[i]) ++delivered;
      if (i < warm) continue;
      if (w->arrivals()[i])
        lat.push_back(w->arrivals()[i] - schedule.At(i));
      else
        ++lost;
    }
  if (!g_latency_trace.empty()) {
    std::ofstream out(g_latency_trace);
    for (size_t i = 0; i < n; ++i) {
      int64_t first = INT64_MAX, slowest = 0;
      for (auto& w : ws) {
        int64_t a = w->arrivals()[i] ? w->arrivals()[i] - schedule.At(i) : -1;
        first = std::min(first, a);
        slowest = std::max(slowest, a);
      }
      out << (schedule.At(i) - schedule.t0()) / 1000 << ' '
          << (acked[i] ? acked[i] - schedule.At(i) : -1) << ' ' << first << ' ' << slowest << ' '
          << issued[i] - schedule.At(i) << '\n';
    }
    g_latency_trace.clear();  // the first run only
  }
  r.delivered = Summarize(lat, lost);
  r.acked = LatenciesFromSchedule(schedule, acked, warm);
  r.achieved_rate = n / ((sent_end - schedule.t0()) / 1e6);
  r.floor = OpenLoopStatus(stub.get(), rate, seconds);
  if (delivered != n * watchers)
    fprintf(stderr, "warning: %zu of %zu deliveries\n", delivered, n * watchers);
  ws.clear();
  broker.Stop();
  return r;
}

// Closed loop, one request at a time: the floor under the open-loop
// figures; beside it GetStatus the same way on the same broker (µs).
std::pair<Percentiles, Percentiles> RunSequential(size_t n) {
  TempDir dir;
  Broker broker(dir, g_broker_flags);
  auto stub = v1::CredentialBroker::NewStub(NewChannel(broker.address()));
  std::vector<int64_t> lat;
  size_t lost = 0;
  int64_t now_ms = turnbroker::Clock::System()->NowMs();
  for (size_t i = 0; i < n; ++i) {
    v1::PublishRequest req;
    FillCredential(req.add_credentials(), i, now_ms);
    v1::PublishResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    int64_t t = NowUs();
    if (stub->Publish(&ctx, req, &resp).ok())
      lat.push_back(NowUs() - t);
    else
      ++lost;
  }
  Percentiles floor = ClosedLoopStatus(stub.get(), n);
  broker.Stop();
  return {Summarize(lat, lost), floor};
}

struct BulkResult {
  double delivered_per_s, acked_per_s, rss_bytes_per_credential, disk_bytes_per_credential,
      snapshot_seconds;
  // The broker from the first publish until every watcher had them all.
  std::optional<ProcessUsage> broker_usage;
  double window_seconds;
};

BulkResult RunBulk(int watchers, size_t total, int batch, int inflight) {
  TempDir dir;
  Broker broker(dir, g_broker_flags);
  std::vector<std::unique_ptr<Watcher>> ws;
  for (int i = 0; i < watchers; ++i)
    ws.push_back(std::make_unique<Watcher>(broker.address(), total, false));
  for (auto& w : ws) w->WaitSynced();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int64_t rss0 = testing::ResidentKb(broker.pid());

  std::atomic<size_t> next{0};
  int64_t now_ms = turnbroker::Clock::System()->NowMs();
  int64_t start = NowUs();
  const UsageWindow usage(broker.pid());
  std::vector<std::thread> publishers;
  std::atomic<int64_t> last_ack{0};
  for (int p = 0; p < inflight; ++p) {
    publishers.emplace_back([&] {
      auto stub = v1::CredentialBroker::NewStub(NewChannel(broker.address()));
      for (;;) {
        size_t first = next.fetch_add(batch);
        if (first >= total) break;
        size_t last = std::min(total, first + batch);
        v1::PublishRequest req;
        for (size_t i = first; i < last; ++i) FillCredential(req.add_credentials(), i, now_ms);
        v1::PublishResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        grpc::Status s = stub->Publish(&ctx, req, &resp);
        if (!s.ok()) {
          fprintf(stderr, "publish failed: %s\n", s.error_message().c_str());
          std::exit(1);
        }
      }
      last_ack.store(std::max(last_ack.load(), NowUs()));
    });
  }
  for (auto& t : publishers) t.join();
  int64_t end = 0;
  for (auto& w : ws) {
    int64_t t = w->WaitAll();
    if (t < 0) fprintf(stderr, "a watcher received only %zu\n", w->received());
    end = std::max(end, t);
  }
  BulkResult r;
  r.broker_usage = usage.Stop();
  r.window_seconds = (NowUs() - start) / 1e6;
  r.delivered_per_s = total / ((end - start) / 1e6);
  r.acked_per_s = total / ((last_ack.load() - start) / 1e6);
  ws.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.rss_bytes_per_credential = (testing::ResidentKb(broker.pid()) - rss0) * 1024.0 / total;

  int64_t snap_start = NowUs();
  {
    Watcher fresh(broker.address(), total, false);
    fresh.WaitSynced(120);
    r.snapshot_seconds = (fresh.synced_at_us() - snap_start) / 1e6;
    if (fresh.received() != total)
      fprintf(stderr, "snapshot had %zu of %zu\n", fresh.received(), total);
  }
  broker.Stop();
  r.disk_bytes_per_credential = static_cast<double>(DirBytes(broker.data())) / total;
  return r;
}

}  // namespace
}  // namespace turnbroker::bench

int main(int argc, char** argv) {
  using namespace turnbroker::bench;
  turnbroker::InitRuntime();
  int runs = 3, watchers = 8, rate = 5000, batch = 1000, inflight = 4;
  double seconds = 5;
  size_t total = 1'000'000;
  std::string json_path;
  bool quick = false;
  std::vector<std::string> publishers = {"unary", "library"};
  QuietOptions quiet;
  CLI::App app{"turn-broker benchmark (see the header of bench/broker_bench.cc)"};
  app.add_option("--runs", runs)->capture_default_str();
  app.add_option("--watchers", watchers)->capture_default_str();
  app.add_option("--rate", rate, "Latency run: credentials/s")->capture_default_str();
  app.add_option("--seconds", seconds, "Latency run length")->capture_default_str();
  app.add_option("--total", total, "Bulk run: credentials")->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--inflight", inflight, "Concurrent batched publishers")->capture_default_str();
  app.add_option("--json", json_path, "Write all samples here");
  app.add_option("--external", g_external, "Measure a running broker HOST:PORT (latency only)");
  app.add_option("--publishers", publishers,
                 "Latency runs, one each per run (comma-separated): unary (a Publish call per "
                 "credential), stream (each credential a request on one PublishStream), library "
                 "(libpcscf_turn's batching Publisher over its PublishStream, as an eP-CSCF "
                 "runs it), library-unary (the same Publisher with unary calls)")
      ->delimiter(',')
      ->check(CLI::IsMember({"unary", "stream", "library", "library-unary"}))
      ->capture_default_str();
  app.add_option("--latency-trace", g_latency_trace,
                 "Write per-credential latencies of the first latency run here");
  app.add_flag("--quick", quick, "One short run of each (a smoke test)");
  app.add_option("--broker-flag", g_broker_flags,
                 "Extra turn-broker flag (repeatable), e.g. --broker-flag=--no-fsync");
  app.add_option("--ab-broker-flag", g_ab_flags,
                 "A/B: every latency run runs twice, A with the --broker-flag flags, B with this "
                 "flag too (repeatable), in alternating order; B/A ratios are printed");
  bool no_relay_floor = false;
  app.add_flag("--no-relay-floor", no_relay_floor,
               "Skip the relay floor (relay_floor.h) run after each round's latency runs");
  int serve_relay = 0;
  app.add_option("--serve-relay", serve_relay, "(internal) be the relay floor's server");
  AddQuietFlags(app, &quiet);
  CLI11_PARSE(app, argc, argv);
  if (serve_relay > 0) return ServeFloors(serve_relay);
  if (quick) runs = 1, seconds = 1, total = 50'000;
  ProbeMachine(quiet);
  // The relay floor's server, in a process of its own like the broker.
  TempDir relay_dir;
  std::unique_ptr<Subprocess> relay;
  std::string relay_address;
  if (!no_relay_floor) {
    const int port = FreePort();
    relay = StartFloorServer({"--serve-relay", std::to_string(port)}, relay_dir.File("relay.log"));
    if (!relay) return 1;
    relay_address = "127.0.0.1:" + std::to_string(port);
  }

  std::map<std::string, std::vector<double>> samples;
  auto add_usage = [&](const std::string& key, const std::optional<ProcessUsage>& u,
                       double credentials) {
    if (!u) return;
    samples[key + "_broker_cpu_us_per_credential"].push_back(u->cpu_us / credentials);
    samples[key + "_broker_voluntary_switches_per_credential"].push_back(u->voluntary_switches /
                                                                         credentials);
    samples[key + "_broker_involuntary_switches_per_credential"].push_back(u->involuntary_switches /
                                                                           credentials);
  };
  std::map<std::string, ProcessUsage> usage_sum;                  // per key, over all runs
  std::map<std::string, std::pair<double, double>> usage_amount;  // credentials, seconds
  auto sum_usage = [&](const std::string& key, const std::optional<ProcessUsage>& u,
                       double credentials, double seconds) {
    if (!u) return;
    usage_sum[key] += *u;
    usage_amount[key].first += credentials;
    usage_amount[key].second += seconds;
  };
  // Commit groups and Watch frames over all runs' windows, per key.
  std::map<std::string, std::pair<double, double>> group_sum;
  // The latency runs of one round: (mode, key, broker flags). With
  // --ab-broker-flag each mode runs as A (the broker flags alone) and B
  // (with the A/B flags too), in alternating order from round to round.
  struct LatencyRun {
    std::string mode, key;
    std::vector<std::string> flags;
  };
  std::vector<std::string> b_flags = g_broker_flags;
  b_flags.insert(b_flags.end(), g_ab_flags.begin(), g_ab_flags.end());
  auto latency_runs = [&](int run) {
    std::vector<LatencyRun> out;
    for (const std::string& mode : publishers) {
      if (g_ab_flags.empty()) {
        out.push_back({mode, mode, g_broker_flags});
        continue;
      }
      LatencyRun a{mode, mode + "[A]", g_broker_flags}, b{mode, mode + "[B]", b_flags};
      if (run % 2 == 0) {
        out.push_back(a);
        out.push_back(b);
      } else {
        out.push_back(b);
        out.push_back(a);
      }
    }
    return out;
  };
  std::vector<std::string> latency_keys;
  for (const auto& r : latency_runs(0)) latency_keys.push_back(r.key);
  for (int run = 0; run < runs; ++run) {
    auto [seq, seq_floor] = RunSequential(2000);
    samples["sequential_p50_us"].push_back(seq.p50);
    samples["sequential_p99_us"].push_back(seq.p99);
    samples["sequential_floor_p50_us"].push_back(seq_floor.p50);
    samples["sequential_floor_p99_us"].push_back(seq_floor.p99);
    fprintf(stderr, "run %d: sequential publish %s\n", run + 1,
            BesideFloor(seq.p50, seq.p99, seq_floor.p50, seq_floor.p99).c_str());
    for (const auto& [mode, key, flags] : latency_runs(run)) {
      LatencyResult l = RunLatency(watchers, rate, seconds, kPublishing.at(mode), flags);
      const std::string k = key + "_";
      samples[k + "latency_p50_us"].push_back(l.delivered.p50);
      samples[k + "latency_p99_us"].push_back(l.delivered.p99);
      samples[k + "latency_lost"].push_back(l.delivered.lost);
      samples[k + "ack_p50_us"].push_back(l.acked.p50);
      samples[k + "ack_p99_us"].push_back(l.acked.p99);
      samples[k + "achieved_rate"].push_back(l.achieved_rate);
      samples[k + "floor_p50_us"].push_back(l.floor.p50);
      samples[k + "floor_p99_us"].push_back(l.floor.p99);
      add_usage(key, l.broker_usage, l.credentials);
      sum_usage(key, l.broker_usage, l.credentials, l.window_seconds);
      if (l.groups && l.frames && *l.groups > 0) {
        samples[k + "credentials_per_group"].push_back(l.credentials / *l.groups);
        samples[k + "frames_per_watcher_per_group"].push_back(*l.frames / watchers / *l.groups);
        group_sum[key].first += *l.groups;
        group_sum[key].second += *l.frames;
      }
      fprintf(stderr, "run %d: %s: publish->watcher %s; ack %s; sent %.0f/s; broker %s\n", run + 1,
              key.c_str(),
              BesideFloor(l.delivered.p50, l.delivered.p99, l.floor.p50, l.floor.p99).c_str(),
              Format(l.acked, "ms", 1e-3).c_str(), l.achieved_rate,
              l.broker_usage
                  ? FormatPerCredential(*l.broker_usage, l.credentials, l.window_seconds).c_str()
                  : "n/a (external)");
    }
    if (relay) {
      // The transport's floor for the same job at the same rate: its
      // latency and, per message, the relay server's CPU.
      const UsageWindow usage(relay->pid());
      const Percentiles r = RunRelay(relay_address, watchers, rate, seconds);
      const std::optional<ProcessUsage> used = usage.Stop();
      samples["relay_p50_us"].push_back(r.p50);
      samples["relay_p99_us"].push_back(r.p99);
      add_usage("relay", used, rate * seconds);
      sum_usage("relay", used, rate * seconds, seconds);
      fprintf(stderr, "run %d: relay floor: publish->watcher %s; server %s%s\n", run + 1,
              Format(r, "ms", 1e-3).c_str(),
              used ? FormatPerCredential(*used, rate * seconds, seconds, "message").c_str() : "n/a",
              Mark());
    }
    if (!g_external.empty()) continue;
    auto b = RunBulk(watchers, total, batch, inflight);
    samples["delivered_per_s"].push_back(b.delivered_per_s);
    samples["acked_per_s"].push_back(b.acked_per_s);
    samples["rss_bytes_per_credential"].push_back(b.rss_bytes_per_credential);
    samples["disk_bytes_per_credential"].push_back(b.disk_bytes_per_credential);
    samples["snapshot_seconds"].push_back(b.snapshot_seconds);
    add_usage("batch", b.broker_usage, total);
    sum_usage("batch", b.broker_usage, total, b.window_seconds);
    fprintf(stderr,
            "run %d: delivered %.0f/s to each of %d watchers (acked %.0f/s); %.0f B RSS and %.0f "
            "B disk per credential; snapshot of %zu in %.2f s%s\n",
            run + 1, b.delivered_per_s, watchers, b.acked_per_s, b.rss_bytes_per_credential,
            b.disk_bytes_per_credential, total, b.snapshot_seconds, Mark());
  }
  auto median = [&](const std::string& key) { return Median(samples[key]); };
  // The broker's cost over all runs' windows together (so the 10 ms ticks
  // of /proc add up), per credential.
  auto broker_cost = [&](const std::string& key) {
    if (!usage_sum.count(key)) return std::string("n/a (external broker)");
    return FormatPerCredential(usage_sum[key], usage_amount[key].first, usage_amount[key].second) +
           Mark();
  };
  printf(
      "turn-broker benchmark: %d runs, %d watchers, medians (figures beside the floor of "
      "the same run)\n",
      runs, watchers);
  printf("  one publish at a time (closed loop):  %s\n",
         BesideFloor(median("sequential_p50_us"), median("sequential_p99_us"),
                     median("sequential_floor_p50_us"), median("sequential_floor_p99_us"))
             .c_str());
  // The relay floor's CPU per message over all rounds, and the broker's
  // per credential against it.
  auto per_credential = [&](const std::string& key, auto ProcessUsage::*field) {
    return usage_sum.count(key) && usage_amount[key].first > 0
               ? usage_sum[key].*field / usage_amount[key].first
               : NAN;
  };
  const double relay_cpu = per_credential("relay", &ProcessUsage::cpu_us);
  if (relay) {
    printf(
        "  relay floor, %d/s (the broker's job with nothing of the broker in it: each message read "
        "from a stream, answered and written to %d watch streams; relay_floor.h):\n",
        rate, watchers);
    printf("    publish->watcher:  p50 %s ms  p99 %s ms%s\n",
           FormatValue(median("relay_p50_us"), 1e-3).c_str(),
           FormatValue(median("relay_p99_us"), 1e-3).c_str(), Mark());
    printf("    relay server:      %s\n",
           FormatPerCredential(usage_sum["relay"], usage_amount["relay"].first,
                               usage_amount["relay"].second, "message")
               .c_str());
  }
  for (const std::string& key : latency_keys) {
    const std::string k = key + "_";
    printf("  %s, %d/s (floor: GetStatus at %d/s on the same broker):\n", key.c_str(), rate, rate);
    printf("    publish->watcher:  %s   (target p99 < 2 ms)\n",
           BesideFloor(median(k + "latency_p50_us"), median(k + "latency_p99_us"),
                       median(k + "floor_p50_us"), median(k + "floor_p99_us"))
               .c_str());
    printf("    publish ack:       %s\n",
           BesideFloor(median(k + "ack_p50_us"), median(k + "ack_p99_us"),
                       median(k + "floor_p50_us"), median(k + "floor_p99_us"))
               .c_str());
    printf("    broker:            %s\n", broker_cost(key).c_str());
    if (relay && usage_sum.count(key))
      printf("    broker CPU per credential x%.2f the relay floor's per message\n",
             per_credential(key, &ProcessUsage::cpu_us) / relay_cpu);
    if (group_sum.count(key) && group_sum[key].first > 0) {
      const double groups = group_sum[key].first, frames = group_sum[key].second;
      printf(
          "    commit groups:     %.1f credentials per group; %.2f Watch frames per watcher per "
          "group\n",
          usage_amount[key].first / groups, frames / watchers / groups);
    }
  }
  if (!g_ab_flags.empty()) {
    // B against A, from the same runs: what an A/B on a shared machine can
    // say (each side's absolute figures are only as good as the machine).
    std::string b_desc;
    for (const auto& f : g_ab_flags) b_desc += " " + f;
    printf("  A/B (B = A +%s; rounds alternate A,B / B,A), B/A ratios:\n", b_desc.c_str());
    for (const std::string& mode : publishers) {
      const std::string a = mode + "[A]", b = mode + "[B]";
      printf(
          "    %s: broker CPU per credential x%.2f, voluntary switches x%.2f, publish->watcher "
          "p50 x%.2f p99 x%.2f, ack p50 x%.2f p99 x%.2f%s\n",
          mode.c_str(),
          per_credential(b, &ProcessUsage::cpu_us) / per_credential(a, &ProcessUsage::cpu_us),
          per_credential(b, &ProcessUsage::voluntary_switches) /
              per_credential(a, &ProcessUsage::voluntary_switches),
          median(b + "_latency_p50_us") / median(a + "_latency_p50_us"),
          median(b + "_latency_p99_us") / median(a + "_latency_p99_us"),
          median(b + "_ack_p50_us") / median(a + "_ack_p50_us"),
          median(b + "_ack_p99_us") / median(a + "_ack_p99_us"), Mark());
    }
  }
  if (!g_external.empty()) return CheckMachineAfterRun();
  printf(
      "  throughput, batches of %d:          %.0f credentials/s to every watcher (target >= "
      "100000)%s\n",
      batch, median("delivered_per_s"), Mark());
  printf("    broker:            %s\n", broker_cost("batch").c_str());
  printf("  memory at %zu live:              %.0f bytes RSS per credential (target < 300)%s\n",
         total, median("rss_bytes_per_credential"), Mark());
  printf("  disk:                                 %.0f bytes per credential%s\n",
         median("disk_bytes_per_credential"), Mark());
  printf("  snapshot of %zu to a new watcher:  %.2f s (target < 2 s)%s\n", total,
         median("snapshot_seconds"), Mark());
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    // " [noisy]" -> "noisy", "" -> "quiet".
    const std::string mark = Mark();
    out << "{\"machine\":\"" << (mark.empty() ? "quiet" : mark.substr(2, mark.size() - 3)) << "\"";
    for (auto& [k, v] : samples) {
      out << ",\"" << k << "\":[";
      for (size_t i = 0; i < v.size(); ++i) {
        // JSON has no infinity: a lost figure is null.
        if (i) out << ",";
        if (std::isfinite(v[i]))
          out << v[i];
        else
          out << "null";
      }
      out << "]";
    }
    out << "}\n";
  }
  return CheckMachineAfterRun();
}
