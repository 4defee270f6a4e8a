// ha_bench: the Redis store against the embedded store, in one run
// (docs/benchmarks.md#ha). In-process brokers over real gRPC sockets and
// real redis-servers, in four configurations: embedded (one ephemeral
// broker), redis (two replicas on one Redis: no WAIT), redis+replica (two
// replicas on a primary with one Redis replica: WAIT 1, the production
// shape) and embedded (durable) (one broker on SQLite with fsync, the default
// store). --rounds alternates them (the order reversed every other round)
// and prints each round's p50 ratios to both embedded stores, so that a
// shared machine's load, which moves between rounds, cancels out.
//   1. publish -> visible: credentials published open-loop at --rate through
//      the eP-CSCF library's Publisher on replica A, until a watcher of
//      replica B has the event (embedded: one broker, publish and watch on it);
//   2. batched throughput: --batch-credentials per Publish, several in
//      flight, until every one of --watchers watchers per replica has all;
//   3. CPU per credential: this process (brokers and clients together) and
//      Redis (INFO cpu), over the throughput phase.
// Figures are to be measured on a quiet machine: the probe marks them.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "open_loop.h"
#include "percentiles.h"
#include "process.h"
#include "redis_server.h"
#include "report.h"
#include "turnbroker/broker/server.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/pcscf/publisher.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = ::turnbroker::v1;

struct Options {
  double rate = 5'000;
  int seconds = 5;
  int throughput_credentials = 200'000;
  int batch_credentials = 1'000;
  int watchers = 8;
  int rounds = 1;
  bool redis_replica = true;
  bool compare_earlier = false;
  // Also the durable embedded store (SQLite with fsync: the default store),
  // the one the Redis store replaces in production.
  bool durable_embedded = true;
  QuietOptions quiet;
};

// Voluntary context switches of this process (every thread): each thread
// hand-off and each blocking round trip costs one or more.
int64_t VoluntarySwitches() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_nvcsw;
}

int64_t CpuMicros() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000LL + u.ru_utime.tv_usec +
         u.ru_stime.tv_usec;
}

double RedisCpuSeconds(testing::RedisServer* redis) {
  if (!redis) return 0;
  std::string info = redis->Command({"INFO", "cpu"}).str;
  double total = 0;
  for (const char* field : {"used_cpu_sys:", "used_cpu_user:"}) {
    size_t at = info.find(field);
    if (at != std::string::npos) total += std::atof(info.c_str() + at + std::strlen(field));
  }
  return total;
}

// A Watch stream counting puts and noting when each username arrived.
class Watcher {
 public:
  Watcher(std::shared_ptr<grpc::Channel> channel, bool record)
      : stub_(v1::CredentialBroker::NewStub(channel)), record_(record) {
    reader_ = stub_->Watch(&ctx_, v1::WatchRequest());
    thread_ = std::thread([this] {
      v1::WatchResponse r;
      while (reader_->Read(&r)) {
        if (r.marker() == v1::WatchResponse::SYNCED) synced_ = true;
        auto now = Clock::now();
        for (const auto& e : r.events()) {
          if (!e.has_put()) continue;
          puts_++;
          if (record_) {
            std::lock_guard<std::mutex> lock(mu_);
            seen_.emplace(e.put().username(), now);
          }
        }
      }
    });
  }
  ~Watcher() {
    ctx_.TryCancel();
    thread_.join();
  }
  bool synced() const { return synced_; }
  int64_t puts() const { return puts_; }
  std::optional<Clock::time_point> Seen(const std::string& u) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = seen_.find(u);
    if (it == seen_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader_;
  const bool record_;
  std::atomic<bool> synced_{false};
  std::atomic<int64_t> puts_{0};
  std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> seen_;
  std::thread thread_;
};

v1::Credential Cred(const std::string& name) {
  v1::Credential c;
  c.set_realm("ims.example.org");
  c.set_username(name);
  c.set_key(std::string(16, 'k'));
  c.set_expires_at_ms(turnbroker::Clock::System()->NowMs() + 3600000);
  return c;
}

struct Setup {
  std::vector<std::unique_ptr<broker::BrokerServer>> brokers;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
};

// A Redis for one configuration: a primary, with one replica if asked
// (then the brokers WAIT for it: --redis-min-replicas-ack defaults to 1).
struct RedisSetup {
  RedisSetup(const testing::TempDir& dir, bool with_replica)
      : primary(dir, {"--repl-diskless-sync-delay", "0"}) {
    if (!with_replica) return;
    replica.emplace(
        dir, std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(primary.port())});
    auto give_up = Clock::now() + std::chrono::seconds(10);
    while (primary.Command({"INFO", "replication"}).str.find("state=online") == std::string::npos) {
      if (Clock::now() > give_up) {
        std::fprintf(stderr, "redis replica did not come online\n");
        std::exit(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  testing::RedisServer primary;
  std::optional<testing::RedisServer> replica;
};

// `data_dir` empty: the ephemeral embedded store; else the durable one there.
Setup Start(int replicas, testing::RedisServer* redis, bool earlier,
            const std::string& data_dir = "") {
  Setup s;
  for (int i = 0; i < replicas; ++i) {
    broker::BrokerOptions o;
    o.listen = {"127.0.0.1", 0};
    if (redis) {
      o.use_redis = true;
      o.redis.target.url = redis->redis_url();
      o.redis.pipeline_confirmation = !earlier;
      o.redis.apply_own_commits = !earlier;
    } else if (data_dir.empty()) {
      o.ephemeral = true;
    } else {
      o.data_dir = data_dir;
    }
    auto b = broker::BrokerServer::Start(o);
    if (!b.ok()) {
      std::fprintf(stderr, "broker: %s\n", std::string(b.status().message()).c_str());
      std::exit(1);
    }
    s.channels.push_back(*MakeChannel(ChannelOptions("127.0.0.1:" + std::to_string((*b)->port()))));
    s.brokers.push_back(std::move(*b));
  }
  return s;
}

// Runs one configuration; returns the publish->visible p50 (µs).
double Run(const char* name, const Options& o, testing::RedisServer* redis, bool earlier, int round,
           bool throughput, const std::string& data_dir = "") {
  const int replicas = redis ? 2 : 1;
  Setup s = Start(replicas, redis, earlier, data_dir);
  double p50 = 0;
  // 1. publish -> visible on the other replica (or the same broker).
  {
    Watcher w(s.channels.back(), /*record=*/true);
    while (!w.synced()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto client = pcscf::NewGrpcBrokerClient(s.channels.front());
    pcscf::Publisher publisher(client.get(), pcscf::PublisherOptions());
    const int n = static_cast<int>(o.rate * o.seconds);
    std::vector<Clock::time_point> sent(n);
    std::atomic<int> failed{0};
    const OpenLoopSchedule schedule(o.rate);
    const int64_t switches0 = VoluntarySwitches();
    for (int i = 0; i < n; ++i) {
      schedule.SleepUntil(i);
      sent[i] = Clock::now();
      publisher.PublishAsync(Cred("v" + std::to_string(round) + "-" + std::to_string(i)), 5'000,
                             [&failed](absl::Status st) {
                               if (!st.ok()) failed++;
                             });
    }
    const int64_t switches = VoluntarySwitches() - switches0;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::vector<double> latency_us;
    size_t lost = 0;
    for (int i = static_cast<int>(schedule.FirstMeasured(n)); i < n; ++i) {
      auto seen = w.Seen("v" + std::to_string(round) + "-" + std::to_string(i));
      if (!seen) {
        ++lost;
        continue;
      }
      latency_us.push_back(std::chrono::duration<double, std::micro>(*seen - sent[i]).count());
    }
    Percentiles p = Summarize(latency_us, lost);
    p50 = p.p50;
    std::printf(
        "round %d %s publish->visible at %.0f/s: %s (failed %d), %.1f voluntary context switches "
        "per credential (this process: brokers and clients) %s\n",
        round, name, o.rate, Format(p, "ms", 1e-3).c_str(), failed.load(),
        static_cast<double>(switches) / n, Mark());
  }
  // 2 and 3. batched throughput to `watchers` per replica; CPU per credential.
  if (throughput) {
    std::vector<std::unique_ptr<Watcher>> watchers;
    for (auto& ch : s.channels)
      for (int i = 0; i < o.watchers; ++i) watchers.push_back(std::make_unique<Watcher>(ch, false));
    for (auto& w : watchers)
      while (!w->synced()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::vector<int64_t> base;
    for (auto& w : watchers) base.push_back(w->puts());
    auto stub = v1::CredentialBroker::NewStub(s.channels.front());
    const int n = o.throughput_credentials;
    const int64_t cpu0 = CpuMicros();
    const double redis0 = RedisCpuSeconds(redis);
    auto start = Clock::now();
    std::atomic<int> next{0}, errors{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t) {
      senders.emplace_back([&, t] {
        for (int first; (first = next.fetch_add(o.batch_credentials)) < n;) {
          v1::PublishRequest req;
          for (int k = first; k < std::min(n, first + o.batch_credentials); ++k)
            *req.add_credentials() = Cred("t" + std::to_string(round) + "-" + std::to_string(k));
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          v1::PublishResponse resp;
          if (!stub->Publish(&ctx, req, &resp).ok()) errors++;
        }
        (void)t;
      });
    }
    for (auto& t : senders) t.join();
    bool all = false;
    auto give_up = Clock::now() + std::chrono::seconds(60);
    while (!all && Clock::now() < give_up) {
      all = true;
      for (size_t i = 0; i < watchers.size(); ++i) all &= watchers[i]->puts() - base[i] >= n;
      if (!all) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const int64_t cpu = CpuMicros() - cpu0;
    const double redis_cpu = RedisCpuSeconds(redis) - redis0;
    std::printf(
        "%s batched throughput: %d credentials in batches of %d to %zu watchers: %.0f "
        "credentials/s%s (errors %d) %s\n",
        name, n, o.batch_credentials, watchers.size(), n / secs, all ? "" : " (INCOMPLETE)",
        errors.load(), Mark());
    std::printf(
        "%s CPU per credential: this process (brokers and clients) %.1f us, Redis %.1f us %s\n",
        name, static_cast<double>(cpu) / n, redis_cpu * 1e6 / n, Mark());
  }
  for (auto& b : s.brokers) b->Shutdown();
  return p50;
}

}  // namespace
}  // namespace turnbroker::bench

int main(int argc, char** argv) {
  using namespace turnbroker::bench;
  Options o;
  CLI::App app{"ha_bench: the Redis store (2 replicas) against the embedded store"};
  app.add_option("--rate", o.rate, "publish->visible: credentials per second")
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "publish->visible: duration")->capture_default_str();
  app.add_option("--throughput-credentials", o.throughput_credentials,
                 "Credentials in the throughput phase")
      ->capture_default_str();
  app.add_option("--batch-credentials", o.batch_credentials, "Credentials per Publish there")
      ->capture_default_str();
  app.add_option("--watchers", o.watchers, "Watchers per replica there")->capture_default_str();
  app.add_option("--rounds", o.rounds,
                 "Rounds of every configuration (order reversed every other round); the "
                 "throughput phase runs in the first round only")
      ->capture_default_str();
  app.add_option("--redis-replica", o.redis_replica,
                 "Also run the redis+replica configuration (WAIT 1)")
      ->capture_default_str();
  app.add_option("--durable-embedded", o.durable_embedded,
                 "Also run the durable embedded store (SQLite with fsync, the default store) and "
                 "print the Redis configurations' ratios to it")
      ->capture_default_str();
  app.add_option("--compare-earlier", o.compare_earlier,
                 "Also run the Redis configurations on the earlier path (WAIT and the mark in "
                 "round trips of their own; the committer waits for its log thread), for A/B")
      ->capture_default_str();
  AddQuietFlags(app, &o.quiet);
  CLI11_PARSE(app, argc, argv);
  ProbeMachine(o.quiet);
  turnbroker::testing::TempDir dir;
  // 0 embedded; 1 redis; 2 redis+replica; 3 and 4 the same on the earlier
  // path; 5 the durable embedded store.
  std::vector<int> configs = {0, 1};
  if (o.redis_replica) configs.push_back(2);
  if (o.compare_earlier) {
    configs.push_back(3);
    if (o.redis_replica) configs.push_back(4);
  }
  if (o.durable_embedded) configs.push_back(5);
  const char* names[] = {"embedded             ",  "redis                ",
                         "redis+replica        ",  "redis (earlier)      ",
                         "redis+replica(earlier)", "embedded (durable)   "};
  std::vector<std::vector<double>> ratios(6), durable_ratios(6);
  // The path now against the earlier one, same Redis shape, same round.
  const std::pair<int, int> pairs[] = {{1, 3}, {2, 4}};
  std::vector<std::vector<double>> path_ratios(2);
  for (int round = 0; round < o.rounds; ++round) {
    double p50[6] = {0, 0, 0, 0, 0, 0};
    std::vector<int> order = configs;
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (int c : order) {
      if (c == 0) {
        p50[c] = Run(names[c], o, nullptr, false, round, round == 0);
      } else if (c == 5) {
        const std::string data = dir.path() + "/durable-" + std::to_string(round);
        p50[c] = Run(names[c], o, nullptr, false, round, round == 0, data);
      } else {
        RedisSetup redis(dir, c == 2 || c == 4);
        p50[c] = Run(names[c], o, &redis.primary, c >= 3, round, round == 0);
      }
    }
    for (int c : configs) {
      if (c == 0) continue;
      ratios[c].push_back(p50[c] / p50[0]);
      std::printf("round %d %s p50 / embedded p50: %s %s\n", round, names[c],
                  FormatRatio(p50[c], p50[0], 2).c_str(), Mark());
      if (c == 5 || !p50[5]) continue;
      durable_ratios[c].push_back(p50[c] / p50[5]);
      std::printf("round %d %s p50 / embedded (durable) p50: %s %s\n", round, names[c],
                  FormatRatio(p50[c], p50[5], 2).c_str(), Mark());
    }
    for (int k = 0; k < 2; ++k) {
      auto [now, earlier] = pairs[k];
      if (!p50[now] || !p50[earlier]) continue;
      path_ratios[k].push_back(p50[now] / p50[earlier]);
      std::printf("round %d %s p50 / %s p50: %s %s\n", round, names[now], names[earlier],
                  FormatRatio(p50[now], p50[earlier], 2).c_str(), Mark());
    }
  }
  if (o.rounds > 1) {
    for (int c : configs) {
      if (c == 0) continue;
      std::printf("median over %d rounds: %s p50 / embedded p50: x%.2f %s\n", o.rounds, names[c],
                  Median(ratios[c]), Mark());
      if (durable_ratios[c].empty()) continue;
      std::printf("median over %d rounds: %s p50 / embedded (durable) p50: x%.2f %s\n", o.rounds,
                  names[c], Median(durable_ratios[c]), Mark());
    }
    for (int k = 0; k < 2; ++k) {
      if (path_ratios[k].empty()) continue;
      std::printf("median over %d rounds: %s p50 / %s p50: x%.2f %s\n", o.rounds,
                  names[pairs[k].first], names[pairs[k].second], Median(path_ratios[k]), Mark());
    }
  }
  return CheckMachineAfterRun();
}
