// storm_bench: a re-registration storm after an outage
// (docs/benchmarks.md#storm_bench). One real turn-broker (durable embedded
// store by default, --store=redis on a real redis-server), --agents eP-CSCF
// agents issuing new credentials open-loop at --rate in total for
// --seconds, and --watchers raw Watch streams. It reports:
//
//   * what was sent and acknowledged: the rate reached, against the target;
//     sends a busy agent could not start before the end of the window are
//     counted as not sent, never silently dropped;
//   * lost: acknowledged credentials that did not reach every watcher
//     (exit status 1 when there is one);
//   * publish -> visible per credential (from the scheduled send: open
//     loop) at every watcher and at the first, and the agents' answer, each
//     beside the floor of the same run (GetStatus at the rate reached, on
//     the same broker, after the storm);
//   * the broker's RSS and CPU every second (/proc), with its backlog
//     metrics (/metrics: write queue, history, live credentials, watchers
//     cut off as too slow): start, max, end and the slope over the second
//     half, so that growth that does not follow the live credentials shows;
//   * where the CPU went: broker, agents, this program.
//
// An agent (--agents-as):
//   library    (default) what pcscf-turn-agent runs inside: a pcscf::Issuer
//              over a pcscf::Publisher over its own gRPC connection, called
//              by --workers threads (the SIP server's workers) in this
//              process. No HTTP hop: on a small machine the HTTP client and
//              server would take the CPU the broker is measured with.
//   processes  real pcscf-turn-agent processes, each driven over HTTP
//              (POST /v1/credentials) by --workers keep-alive connections.
// Send k goes to agent k % agents, on one of its workers; the worker sends
// it at its scheduled time or, when still busy, as soon as it is free (the
// lateness counts in the latency). Each send is a new IMPU
// (sip:storm<k>@example.org), so each mints a new credential; the watchers
// find k again in Credential.subscriber.
//
// First the machine is probed (report.h): on a busy machine every figure is
// marked [noisy].
#include <httplib.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "open_loop.h"
#include "pcscf_bench_support.h"
#include "percentiles.h"
#include "proc_usage.h"
#include "process.h"
#include "report.h"
#include "status_floor.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/pcscf/issuer.h"
#include "turnbroker/pcscf/publisher.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::bench {
namespace {

namespace v1 = ::turnbroker::v1;
using testing::BuiltBinary;
using testing::FreePort;
using testing::Subprocess;
using testing::TempDir;

struct StormOptions {
  double rate = 50'000;
  double seconds = 60;
  int agents = 8;
  int workers = 32;  // per agent
  int watchers = 16;
  std::string agents_as = "library";
  std::string store = "embedded";
  double drain_seconds = 30;
  std::vector<std::string> broker_flags;
  std::string json_path;
};

constexpr char kImpuPrefix[] = "sip:storm";
constexpr double kMaxFloorRate = 5000;

std::string Impu(uint64_t k) { return kImpuPrefix + std::to_string(k) + "@example.org"; }

// k of an IMPU made by Impu(); nullopt for any other.
std::optional<uint64_t> IndexOfImpu(const std::string& impu) {
  constexpr size_t kPrefix = sizeof(kImpuPrefix) - 1;
  if (impu.compare(0, kPrefix, kImpuPrefix) != 0) return std::nullopt;
  uint64_t k = 0;
  const char* end = impu.data() + impu.size();
  auto [p, ec] = std::from_chars(impu.data() + kPrefix, end, k);
  if (ec != std::errc() || p == end || *p != '@') return std::nullopt;
  return k;
}

// CPU this thread has used so far, µs.
double ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

// CPU of this program's threads of one kind, added by each as it ends, µs.
class ThreadCpu {
 public:
  void AddThisThread() {
    const double used = ThreadCpuMicros();
    std::lock_guard<std::mutex> lock(mu_);
    total_us_ += used;
  }
  double total_us() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_us_;
  }

 private:
  std::mutex mu_;
  double total_us_ = 0;
};

// A channel of its own: gRPC shares one connection between channels made
// with the same arguments, and each watcher and agent is a client apart.
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  static std::atomic<int> next{0};
  grpc::ChannelArguments args;
  args.SetInt("bench.storm.client", next.fetch_add(1));
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// Every send's fate, by k. sent_us and acked_us are written by the worker
// that owns k; the watchers' arrivals through Seen(). Read the arrays only
// after the workers and the watchers stopped.
class Ledger {
 public:
  Ledger(size_t n, int watchers)
      : sent_us(n, 0),
        acked_us(n, 0),
        n_(n),
        watchers_(watchers),
        first_us_(n, 0),
        all_us_(n, 0),
        count_(new std::atomic<uint8_t>[n]()),
        seen_(watchers, std::vector<bool>(n, false)) {}

  size_t size() const { return n_; }
  // From watcher `w`'s thread only. False when k is no send of this run or
  // the watcher had it already (a snapshot sends every live one again).
  bool Seen(int w, uint64_t k, int64_t now_us) {
    if (k >= n_ || seen_[w][k]) return false;
    seen_[w][k] = true;
    const int before = count_[k].fetch_add(1, std::memory_order_acq_rel);
    if (before == 0) first_us_[k] = now_us;
    if (before + 1 == watchers_) {
      all_us_[k] = now_us;
      complete_.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  }
  bool AtEveryWatcher(size_t k) const {
    return count_[k].load(std::memory_order_acquire) == watchers_;
  }
  // Credentials every watcher has (acknowledged or not).
  size_t complete() const { return complete_.load(std::memory_order_relaxed); }
  // When the first watcher, and the last, had k (0: none yet).
  int64_t first_us(size_t k) const { return first_us_[k]; }
  int64_t all_us(size_t k) const { return all_us_[k]; }

  // When k was sent and when its agent answered with it (0: not).
  std::vector<int64_t> sent_us, acked_us;

 private:
  const size_t n_;
  const int watchers_;
  std::vector<int64_t> first_us_, all_us_;
  std::unique_ptr<std::atomic<uint8_t>[]> count_;
  std::vector<std::vector<bool>> seen_;  // [watcher][k], each row one thread's
  std::atomic<size_t> complete_{0};
};

// A raw Watch stream on its own connection and thread. If the stream ends
// it watches again from the last revision it had (as turn-credential-sync
// does), and counts the reconnection.
class StormWatcher {
 public:
  // `cpu` gets the CPU of the watcher's thread when it ends.
  StormWatcher(const std::string& address, int index, Ledger* ledger, ThreadCpu* cpu)
      : stub_(v1::CredentialBroker::NewStub(OwnChannel(address))), index_(index), ledger_(ledger) {
    thread_ = std::thread([this, cpu] {
      Loop();
      cpu->AddThisThread();
    });
  }
  ~StormWatcher() { Stop(); }

  bool WaitSynced(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return synced_; });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }
  // After Stop().
  int reconnects() const { return reconnects_; }
  // Snapshots after the first (the broker started one over: history
  // compacted, or this stream fell behind: WATCHER_TOO_SLOW).
  int resnapshots() const { return std::max(0, snapshots_ - 1); }
  int64_t puts() const { return puts_; }
  int64_t repeated_puts() const { return repeated_puts_; }

 private:
  void Loop() {
    uint64_t revision = 0;
    std::string epoch;
    for (;;) {
      grpc::ClientContext context;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        context_ = &context;
      }
      v1::WatchRequest request;
      request.set_watcher_name("storm-" + std::to_string(index_));
      request.set_resume_revision(revision);
      request.set_resume_epoch(epoch);
      auto reader = stub_->Watch(&context, request);
      v1::WatchResponse response;
      while (reader->Read(&response)) {
        const int64_t now = MonotonicMicros();
        for (const v1::Event& e : response.events()) {
          if (!e.has_put()) continue;
          ++puts_;
          const std::optional<uint64_t> k = IndexOfImpu(e.put().subscriber());
          if (!k || !ledger_->Seen(index_, *k, now)) ++repeated_puts_;
        }
        if (response.marker() == v1::WatchResponse::SNAPSHOT_BEGIN) ++snapshots_;
        if (response.revision() != 0) {
          revision = response.revision();
          epoch = response.epoch();
        }
        if (response.marker() == v1::WatchResponse::SYNCED) {
          std::lock_guard<std::mutex> lock(mu_);
          synced_ = true;
          cv_.notify_all();
        }
      }
      const grpc::Status status = reader->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      context_ = nullptr;
      if (stopping_) return;
      ++reconnects_;
      std::fprintf(stderr,
                   "watcher %d: stream ended (%s), watching again from revision %" PRIu64 "\n",
                   index_, status.error_message().c_str(), revision);
    }
  }

  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  const int index_;
  Ledger* const ledger_;
  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  bool synced_ = false;                     // guarded by mu_
  // The watcher's thread's own; read after Stop().
  int reconnects_ = 0, snapshots_ = 0;
  int64_t puts_ = 0, repeated_puts_ = 0;
  std::thread thread_;
};

// Issues the credential of send k; "" once the agent answered with it, else
// what it answered instead. One per worker thread.
using IssueOne = std::function<std::string(uint64_t k)>;

// An agent as pcscf-turn-agent wires one in per-credential mode
// (CredentialService::Connect), on a connection of its own.
struct LibraryAgent {
  LibraryAgent(const std::string& broker_address, int index)
      : client(pcscf::NewGrpcBrokerClient(OwnChannel(broker_address), {})),
        publisher(client.get(), pcscf::PublisherOptions()),
        issuer(&publisher, [index] {
          pcscf::IssuerOptions o;
          o.realm = "example.org";
          o.issuer = "storm-agent-" + std::to_string(index);
          o.turn_uris = {"turn:127.0.0.1:3478?transport=udp"};
          return o;
        }()) {}
  IssueOne Caller() {
    return [this](uint64_t k) -> std::string {
      const auto c = issuer.Issue(Impu(k), "", 0);
      return c.ok() ? "" : absl::StatusCodeToString(c.status().code());
    };
  }
  std::unique_ptr<pcscf::BrokerClient> client;
  pcscf::Publisher publisher;
  pcscf::Issuer issuer;
};

IssueOne HttpCaller(int port) {
  auto client = std::make_shared<httplib::Client>("127.0.0.1", port);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  client->set_read_timeout(5, 0);
  return [client](uint64_t k) -> std::string {
    const auto r =
        client->Post("/v1/credentials", "{\"impu\":\"" + Impu(k) + "\"}", "application/json");
    if (!r) return "HTTP: " + httplib::to_string(r.error());
    return r->status == 201 ? "" : "HTTP " + std::to_string(r->status);
  };
}

// One sample a second.
struct Sample {
  double t_s = 0;  // since the first scheduled send
  double rss_mb = NAN;
  double broker_cpu_percent = NAN;  // of one core, over the last second
  size_t acked = 0, complete = 0;
  std::map<std::string, double> metrics;
};

// The broker's metrics sampled (gauges and counters, summed over labels).
const std::vector<std::string> kMetrics = {
    "turnbroker_store_queue_depth",        "turnbroker_live_credentials",
    "turnbroker_history_events",           "turnbroker_watchers",
    "turnbroker_watch_too_slow_total",     "turnbroker_watch_snapshots_total",
    "turnbroker_rate_limited_total",       "turnbroker_store_failures_total",
    "turnbroker_store_commit_groups_total"};

std::map<std::string, double> ScrapeMetrics(httplib::Client& client) {
  std::map<std::string, double> out;
  const auto r = client.Get("/metrics");
  if (!r || r->status != 200) return out;
  size_t pos = 0;
  const std::string& body = r->body;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    const std::string line = body.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    if (std::find(kMetrics.begin(), kMetrics.end(), name) == kMetrics.end()) continue;
    out[name] += std::atof(line.substr(line.rfind(' ') + 1).c_str());
  }
  return out;
}

// Samples the broker every second on its own thread until destroyed.
class Sampler {
 public:
  Sampler(pid_t broker, int metrics_port, int64_t t0_us, const Ledger* ledger,
          const std::atomic<size_t>* acked)
      : broker_(broker), metrics_(std::make_unique<httplib::Client>("127.0.0.1", metrics_port)) {
    metrics_->set_read_timeout(1, 0);
    thread_ = std::thread([this, t0_us, ledger, acked] {
      std::optional<ProcessUsage> last = ReadProcessUsage(broker_);
      int64_t last_us = MonotonicMicros();
      for (int64_t next = t0_us;; next += 1'000'000) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          const int64_t wait = next - MonotonicMicros();
          if (cv_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(wait, 0)),
                           [this] { return stopping_; }))
            return;
        }
        Sample s;
        const int64_t now = MonotonicMicros();
        s.t_s = (now - t0_us) / 1e6;
        const int64_t kb = testing::ResidentKb(broker_);
        if (kb >= 0) s.rss_mb = kb / 1024.0;
        const std::optional<ProcessUsage> usage = ReadProcessUsage(broker_);
        if (usage && last)
          s.broker_cpu_percent = 100 * (usage->cpu_us - last->cpu_us) / (now - last_us);
        last = usage;
        last_us = now;
        s.acked = acked->load();
        s.complete = ledger->complete();
        s.metrics = ScrapeMetrics(*metrics_);
        auto metric = [&](const char* name) {
          auto it = s.metrics.find(name);
          return it == s.metrics.end() ? NAN : it->second;
        };
        std::fprintf(stderr,
                     "t %5.1f s: acknowledged %zu, at every watcher %zu; broker RSS %.0f MB, CPU "
                     "%.0f %%, write queue %.0f, live %.0f, watchers cut off %.0f\n",
                     s.t_s, s.acked, s.complete, s.rss_mb, s.broker_cpu_percent,
                     metric("turnbroker_store_queue_depth"), metric("turnbroker_live_credentials"),
                     metric("turnbroker_watch_too_slow_total"));
        std::lock_guard<std::mutex> lock(samples_mu_);
        samples_.push_back(std::move(s));
      }
    });
  }
  ~Sampler() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }
  // After Stop().
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  const pid_t broker_;
  std::unique_ptr<httplib::Client> metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::mutex samples_mu_;
  std::vector<Sample> samples_;
  std::thread thread_;
};

// Least-squares slope of y over x (NaN with fewer than two points).
double Slope(const std::vector<std::pair<double, double>>& xy) {
  if (xy.size() < 2) return NAN;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [x, y] : xy) sx += x, sy += y, sxx += x * x, sxy += x * y;
  const double n = xy.size(), d = n * sxx - sx * sx;
  return d == 0 ? NAN : (n * sxy - sx * sy) / d;
}

// The broker (and its Redis with --store=redis), with /metrics on.
struct BrokerProcess {
  BrokerProcess(const TempDir& dir, const StormOptions& o) {
    address = "127.0.0.1:" + std::to_string(FreePort());
    metrics_port = FreePort();
    std::vector<std::string> argv = {BuiltBinary("turn-broker"),
                                     "--listen",
                                     address,
                                     "--metrics-listen",
                                     "127.0.0.1:" + std::to_string(metrics_port),
                                     "--log-level",
                                     "warn"};
    if (o.store == "redis") {
      const int port = FreePort();
      redis = std::make_unique<Subprocess>(
          std::vector<std::string>{"redis-server", "--port", std::to_string(port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no"},
          dir.File("redis.log"));
      if (!redis->WaitForOutput("Ready to accept connections", std::chrono::seconds(10))) {
        std::fprintf(stderr, "redis-server did not start:\n%s\n", redis->Output().c_str());
        std::exit(1);
      }
      argv.insert(argv.end(), {"--store=redis", "--redis-url",
                               "redis://127.0.0.1:" + std::to_string(port) + "/0"});
    } else {
      argv.insert(argv.end(), {"--data-dir", dir.File("data")});
    }
    argv.insert(argv.end(), o.broker_flags.begin(), o.broker_flags.end());
    process = std::make_unique<Subprocess>(argv, dir.File("broker.log"));
    if (!process->WaitForOutput("listening on", std::chrono::seconds(20))) {
      std::fprintf(stderr, "turn-broker did not start:\n%s\n", process->Output().c_str());
      std::exit(1);
    }
  }
  ~BrokerProcess() {
    process->Signal(SIGTERM);
    process->Wait(std::chrono::seconds(30));
  }
  std::string address;
  int metrics_port = 0;
  std::unique_ptr<Subprocess> redis;
  std::unique_ptr<Subprocess> process;
};

std::string Join(const std::map<std::string, size_t>& counts) {
  std::string out;
  for (const auto& [what, n] : counts)
    out += (out.empty() ? "" : ", ") + what + " " + std::to_string(n);
  return out.empty() ? "none" : out;
}

int Run(const StormOptions& o) {
  TempDir dir;
  BrokerProcess broker(dir, o);
  const size_t n = static_cast<size_t>(o.rate * o.seconds);
  Ledger ledger(n, o.watchers);
  // This program's CPU by kind of thread: the watchers' (reading and
  // decoding every event), the workers' (load generator; with in-process
  // agents also the Issuer's minting), the rest (gRPC's threads: the
  // agents' Publishers, the floor).
  ThreadCpu watcher_cpu, worker_cpu;

  std::vector<std::unique_ptr<StormWatcher>> watchers;
  for (int i = 0; i < o.watchers; ++i)
    watchers.push_back(std::make_unique<StormWatcher>(broker.address, i, &ledger, &watcher_cpu));
  for (auto& w : watchers) {
    if (!w->WaitSynced(std::chrono::seconds(30))) {
      std::fprintf(stderr, "a watcher did not reach SYNCED in 30 s\n");
      return 1;
    }
  }

  // The agents, and how each worker thread calls its agent.
  std::vector<std::unique_ptr<LibraryAgent>> library_agents;
  std::vector<AgentProcess> agent_processes;
  std::function<IssueOne(int agent)> caller;
  if (o.agents_as == "library") {
    for (int a = 0; a < o.agents; ++a)
      library_agents.push_back(std::make_unique<LibraryAgent>(broker.address, a));
    caller = [&](int a) { return library_agents[a]->Caller(); };
  } else {
    for (int a = 0; a < o.agents; ++a) {
      agent_processes.push_back(
          StartAgent(broker.address, dir.File("agent-" + std::to_string(a) + ".log"), o.workers + 4,
                     "per-credential", {"--issuer", "storm-agent-" + std::to_string(a)}));
    }
    caller = [&](int a) { return HttpCaller(agent_processes[a].port); };
  }
  auto agents_usage = [&] {
    ProcessUsage sum;
    for (const AgentProcess& a : agent_processes)
      if (auto u = ReadProcessUsage(a.process->pid())) sum += *u;
    return sum;
  };

  std::printf(
      "storm_bench: %d agents (%s, %d workers each) issuing %.0f new credentials/s in total for "
      "%.0f s to one turn-broker (%s store), %d watchers\n",
      o.agents,
      o.agents_as == "library" ? "in-process Issuer over Publisher, own gRPC connection"
                               : "pcscf-turn-agent processes over HTTP",
      o.workers, o.rate, o.seconds, o.store == "redis" ? "Redis" : "durable embedded", o.watchers);
  std::fflush(stdout);

  // The storm.
  const OpenLoopSchedule schedule(o.rate, 300'000);
  const int64_t end_us = schedule.At(n);
  std::atomic<size_t> acked{0}, not_sent{0};
  std::mutex errors_mu;
  std::map<std::string, size_t> errors;
  const int64_t rss_before_kb = testing::ResidentKb(broker.process->pid());
  const UsageWindow broker_window(broker.process->pid());
  const std::optional<ProcessUsage> self_before = ReadProcessUsage(getpid());
  const ProcessUsage agents_before = agents_usage();
  const UsageWindow redis_window(broker.redis ? broker.redis->pid() : 0);
  Sampler sampler(broker.process->pid(), broker.metrics_port, schedule.t0(), &ledger, &acked);
  {
    const int threads = o.agents * o.workers;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const IssueOne issue = caller(t % o.agents);
        for (size_t k = t; k < n; k += threads) {
          if (MonotonicMicros() >= end_us) {
            not_sent.fetch_add((n - 1 - k) / threads + 1);
            break;
          }
          schedule.SleepUntil(k);
          ledger.sent_us[k] = MonotonicMicros();
          const std::string error = issue(k);
          if (error.empty()) {
            ledger.acked_us[k] = MonotonicMicros();
            acked.fetch_add(1);
          } else {
            std::lock_guard<std::mutex> lock(errors_mu);
            ++errors[error];
          }
        }
        worker_cpu.AddThisThread();
      });
    }
    for (auto& w : workers) w.join();
  }
  const int64_t sent_end_us = MonotonicMicros();
  // The drain: until every watcher has every acknowledged credential.
  size_t cursor = 0;
  const int64_t drain_deadline = sent_end_us + static_cast<int64_t>(o.drain_seconds * 1e6);
  while (MonotonicMicros() < drain_deadline) {
    while (cursor < n && (ledger.acked_us[cursor] == 0 || ledger.AtEveryWatcher(cursor))) ++cursor;
    if (cursor == n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int64_t drained_us = MonotonicMicros();
  const std::optional<ProcessUsage> broker_used = broker_window.Stop();
  const std::optional<ProcessUsage> self_after = ReadProcessUsage(getpid());
  const ProcessUsage agents_used = agents_usage() - agents_before;
  const std::optional<ProcessUsage> redis_used = redis_window.Stop();
  const int64_t rss_drained_kb = testing::ResidentKb(broker.process->pid());
  // A few seconds more, idle: does the broker give memory back, or keep
  // growing with nothing coming in?
  std::this_thread::sleep_for(std::chrono::seconds(3));
  sampler.Stop();
  const int64_t rss_idle_kb = testing::ResidentKb(broker.process->pid());
  for (auto& w : watchers) w->Stop();

  // What was sent, acknowledged, lost.
  const double storm_s = (sent_end_us - schedule.t0()) / 1e6;
  const double window_s = (drained_us - schedule.t0()) / 1e6;
  const size_t warm = schedule.FirstMeasured(n);
  std::vector<int64_t> visible_all, visible_first, answered, lag, service;
  size_t lost = 0, lost_measured = 0, sent = 0;
  for (size_t k = 0; k < n; ++k) {
    if (ledger.sent_us[k] != 0) ++sent;
    if (ledger.acked_us[k] == 0) continue;
    const bool everywhere = ledger.AtEveryWatcher(k);
    if (!everywhere) ++lost;
    if (k < warm) continue;
    lag.push_back(ledger.sent_us[k] - schedule.At(k));
    answered.push_back(ledger.acked_us[k] - schedule.At(k));
    service.push_back(ledger.acked_us[k] - ledger.sent_us[k]);
    if (ledger.first_us(k) != 0) visible_first.push_back(ledger.first_us(k) - schedule.At(k));
    if (everywhere)
      visible_all.push_back(ledger.all_us(k) - schedule.At(k));
    else
      ++lost_measured;
  }
  const Percentiles all_p = Summarize(visible_all, lost_measured);
  const Percentiles first_p = Summarize(visible_first, answered.size() - visible_first.size());
  const Percentiles answered_p = Summarize(answered);
  const Percentiles lag_p = Summarize(lag);
  const Percentiles service_p = Summarize(service);
  const double acked_rate = acked.load() / storm_s;

  // The floor, same run, same broker: GetStatus at the rate reached, at
  // most kMaxFloorRate (one client's open-loop unary calls fall behind
  // beyond it on 2 cores, and a floor that queues is no floor).
  auto stub = v1::CredentialBroker::NewStub(OwnChannel(broker.address));
  const int floor_rate = static_cast<int>(std::clamp(acked_rate, 100.0, kMaxFloorRate));
  const Percentiles floor = OpenLoopStatus(stub.get(), floor_rate, std::min(5.0, o.seconds));

  size_t failed = 0;
  for (const auto& [what, count] : errors) failed += count;
  std::printf(
      "sent %zu of %zu scheduled (%zu not sent: every worker of their agent busy until the end), "
      "acknowledged %zu: %.0f/s reached of %.0f/s (%.0f %%) over %.1f s%s\n",
      sent, n, not_sent.load(), acked.load(), acked_rate, o.rate, 100 * acked_rate / o.rate,
      storm_s, Mark());
  std::printf("failed issues (answered, not acknowledged): %zu (%s)\n", failed,
              Join(errors).c_str());
  std::printf(
      "%s: %zu acknowledged credentials missing at one watcher or more (%d watchers, "
      "after %.1f s of drain)\n",
      lost == 0 ? "lost" : "LOST", lost, o.watchers, (drained_us - sent_end_us) / 1e6);
  std::printf("floor (GetStatus at %d/s on the same broker after the storm): %s%s\n", floor_rate,
              Format(floor, "ms", 1e-3).c_str(), Mark());
  std::printf("publish -> visible at all %d watchers: %s\n", o.watchers,
              BesideFloor(all_p.p50, all_p.p99, floor.p50, floor.p99).c_str());
  std::printf("                                        %s%s\n", Format(all_p, "ms", 1e-3).c_str(),
              Mark());
  std::printf("publish -> visible at the first watcher: %s\n",
              BesideFloor(first_p.p50, first_p.p99, floor.p50, floor.p99).c_str());
  std::printf("publish -> agent's answer:              %s\n",
              BesideFloor(answered_p.p50, answered_p.p99, floor.p50, floor.p99).c_str());
  // A lag that grows while the service time does not: the agents' workers
  // (or this program's CPU) are the bound, not the broker.
  std::printf("send lag (scheduled -> a worker sent it): %s%s\n", Format(lag_p, "ms", 1e-3).c_str(),
              Mark());
  std::printf("service time (sent -> agent's answer):    %s%s\n",
              Format(service_p, "ms", 1e-3).c_str(), Mark());
  int reconnects = 0, resnapshots = 0;
  int64_t repeated = 0;
  for (const auto& w : watchers) {
    reconnects += w->reconnects();
    resnapshots += w->resnapshots();
    repeated += w->repeated_puts();
  }
  std::printf(
      "watchers: %d streams ended and resumed, %d snapshots started over by the broker, "
      "%" PRId64 " puts received again\n",
      reconnects, resnapshots, repeated);

  // CPU: where it went, over the window (first send until drained).
  if (broker_used)
    std::printf("broker: %s%s\n", FormatPerCredential(*broker_used, acked.load(), window_s).c_str(),
                Mark());
  auto share = [&](double cpu_us) { return FormatValue(100 * cpu_us / (window_s * 1e6), 1, 0); };
  const double self_us = self_before && self_after ? self_after->cpu_us - self_before->cpu_us : NAN;
  std::printf(
      "CPU over %.1f s, %% of one core (%u CPUs): broker %s%s%s, agent processes %s, this program "
      "%s (its watcher threads %s, worker threads %s%s, gRPC and the rest %s)%s\n",
      window_s, std::thread::hardware_concurrency(),
      broker_used ? share(broker_used->cpu_us).c_str() : "n/a", redis_used ? ", Redis " : "",
      redis_used ? share(redis_used->cpu_us).c_str() : "",
      agent_processes.empty() ? "none" : share(agents_used.cpu_us).c_str(), share(self_us).c_str(),
      share(watcher_cpu.total_us()).c_str(), share(worker_cpu.total_us()).c_str(),
      agent_processes.empty() ? " with the agents' Issue" : "",
      share(std::max(0.0, self_us - watcher_cpu.total_us() - worker_cpu.total_us())).c_str(),
      Mark());

  // Memory: RSS over the storm.
  const std::vector<Sample>& samples = sampler.samples();
  double rss_max = rss_before_kb / 1024.0, rss_storm_end = NAN;
  std::vector<std::pair<double, double>> rss_t, rss_live;
  std::map<std::string, double> metric_max;
  for (const Sample& s : samples) {
    if (std::isfinite(s.rss_mb)) rss_max = std::max(rss_max, s.rss_mb);
    for (const auto& [name, v] : s.metrics) metric_max[name] = std::max(metric_max[name], v);
    if (s.t_s > storm_s) continue;
    rss_storm_end = s.rss_mb;
    if (s.t_s < storm_s / 2 || !std::isfinite(s.rss_mb)) continue;
    rss_t.emplace_back(s.t_s, s.rss_mb);
    if (auto it = s.metrics.find("turnbroker_live_credentials"); it != s.metrics.end())
      rss_live.emplace_back(it->second, s.rss_mb * 1024 * 1024);
  }
  const double live_end =
      samples.empty() || !samples.back().metrics.count("turnbroker_live_credentials")
          ? NAN
          : samples.back().metrics.at("turnbroker_live_credentials");
  std::printf(
      "broker RSS: %.0f MB before, max %.0f, %.0f at the end of the storm, %.0f drained, %.0f "
      "after 3 s idle; over the second half %s MB/s, %s B per live credential added (%s live at "
      "the end)%s\n",
      rss_before_kb / 1024.0, rss_max, rss_storm_end, rss_drained_kb / 1024.0, rss_idle_kb / 1024.0,
      FormatValue(Slope(rss_t), 1, 2).c_str(), FormatValue(Slope(rss_live), 1, 0).c_str(),
      FormatValue(live_end, 1, 0).c_str(), Mark());
  std::printf(
      "broker metrics, max over the run: write queue %s, history events %s; watchers cut "
      "off as too slow %s, snapshots %s, rate-limited %s, store failures %s\n",
      FormatValue(metric_max["turnbroker_store_queue_depth"], 1, 0).c_str(),
      FormatValue(metric_max["turnbroker_history_events"], 1, 0).c_str(),
      FormatValue(metric_max["turnbroker_watch_too_slow_total"], 1, 0).c_str(),
      FormatValue(metric_max["turnbroker_watch_snapshots_total"], 1, 0).c_str(),
      FormatValue(metric_max["turnbroker_rate_limited_total"], 1, 0).c_str(),
      FormatValue(metric_max["turnbroker_store_failures_total"], 1, 0).c_str());

  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    const std::string mark = Mark();
    auto num = [](double v) { return std::isfinite(v) ? std::to_string(v) : std::string("null"); };
    out << "{\"machine\":\"" << (mark.empty() ? "quiet" : mark.substr(2, mark.size() - 3))
        << "\",\"rate\":" << o.rate << ",\"seconds\":" << o.seconds << ",\"agents\":" << o.agents
        << ",\"agents_as\":\"" << o.agents_as << "\",\"workers\":" << o.workers
        << ",\"watchers\":" << o.watchers << ",\"store\":\"" << o.store << "\",\"scheduled\":" << n
        << ",\"sent\":" << sent << ",\"acknowledged\":" << acked.load() << ",\"failed\":" << failed
        << ",\"lost\":" << lost << ",\"acknowledged_per_s\":" << num(acked_rate)
        << ",\"visible_all_p50_us\":" << num(all_p.p50)
        << ",\"visible_all_p99_us\":" << num(all_p.p99)
        << ",\"visible_all_max_us\":" << num(all_p.max)
        << ",\"answered_p50_us\":" << num(answered_p.p50)
        << ",\"answered_p99_us\":" << num(answered_p.p99) << ",\"floor_p50_us\":" << num(floor.p50)
        << ",\"floor_p99_us\":" << num(floor.p99) << ",\"broker_cpu_us_per_credential\":"
        << (broker_used && acked.load() ? num(broker_used->cpu_us / acked.load()) : "null")
        << ",\"rss_slope_mb_per_s\":" << num(Slope(rss_t)) << ",\"samples\":[";
    for (size_t i = 0; i < samples.size(); ++i) {
      const Sample& s = samples[i];
      out << (i ? "," : "") << "{\"t_s\":" << num(s.t_s) << ",\"rss_mb\":" << num(s.rss_mb)
          << ",\"broker_cpu_percent\":" << num(s.broker_cpu_percent)
          << ",\"acknowledged\":" << s.acked << ",\"at_every_watcher\":" << s.complete;
      for (const auto& [name, v] : s.metrics) out << ",\"" << name << "\":" << num(v);
      out << "}";
    }
    out << "]}\n";
  }
  const int machine = CheckMachineAfterRun();
  return lost != 0 ? 1 : machine;
}

}  // namespace
}  // namespace turnbroker::bench

int main(int argc, char** argv) {
  using namespace turnbroker::bench;
  turnbroker::InitRuntime();
  // The in-process agents log as the agent does, warnings only.
  turnbroker::InitLogging("storm_bench", turnbroker::LogLevel::kWarn);
  StormOptions o;
  QuietOptions quiet;
  bool quick = false;
  CLI::App app{"storm_bench: a re-registration storm (docs/benchmarks.md#storm_bench)"};
  app.add_option("--rate", o.rate, "New credentials per second, all agents together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seconds", o.seconds, "Length of the storm")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--agents", o.agents, "eP-CSCF agents")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--workers", o.workers,
                 "Per agent: threads calling it at once (the SIP server's workers; with "
                 "--agents-as=processes, keep-alive connections)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--watchers", o.watchers, "Watch streams, each on its own connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 255));
  app.add_option("--agents-as", o.agents_as,
                 "library: in this program, an Issuer over a Publisher each (as the agent wires "
                 "them); processes: pcscf-turn-agent processes driven over HTTP")
      ->capture_default_str()
      ->check(CLI::IsMember({"library", "processes"}));
  app.add_option("--store", o.store, "The broker's store: embedded (durable) or redis")
      ->capture_default_str()
      ->check(CLI::IsMember({"embedded", "redis"}));
  app.add_option("--drain-seconds", o.drain_seconds,
                 "After the storm, how long to wait for every watcher to have every "
                 "acknowledged credential; what is missing then is lost")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--broker-flag", o.broker_flags,
                 "Extra turn-broker flag (repeatable), e.g. --broker-flag=--no-fsync");
  app.add_option("--json", o.json_path, "Write the figures and the per-second samples here");
  app.add_flag("--quick", quick, "A smoke run: 2,000/s for 5 s, 1 s probe");
  AddQuietFlags(app, &quiet);
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    o.rate = 2000, o.seconds = 5;
    quiet.probe_seconds = std::min(quiet.probe_seconds, 1.0);
  }
  ProbeMachine(quiet);
  return Run(o);
}
