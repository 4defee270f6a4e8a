// turn_sync_bench: how fast a published credential becomes visible in the
// TURN servers' Redis, compared with the two paths a user would otherwise
// take, and how long a cold sync of many credentials takes.
//
// Scenarios (each on its own fresh processes, all on loopback):
//   broker          publisher -> turn-broker (--ephemeral) -> N turn-credential-sync
//                   -> N redis-server (one sync per Redis)
//   broker-durable  the same with the broker's durable store (fsync per group commit)
//   diy             the publisher writes SET ... PX into the N Redis itself
//   replication     the publisher writes SET ... PX into one primary Redis with N
//                   replicas
// Load is open-loop: send i is scheduled at t0 + i/rate and its latency is
// counted from that scheduled time, so a stalled path cannot hide its queue.
// A key is "visible" when the Redis that must serve it emits its keyspace
// event (notify-keyspace-events E$, channel __keyevent@0__:set); the figure
// is the time until it is visible in all N.
//
//   cold-sync       C live credentials in the broker, a sync started against an
//                   empty Redis: time until it logged SYNCED (all C keys written).
//
// Usage: turn_sync_bench [--rate 5000] [--duration 5] [--runs 3] [--syncs 4]
//                        [--cold 1000000] [--cold-runs 3] [--batch-window 0]
//                        [--scenarios broker,broker-durable,diy,replication,cold-sync]
// Prints one line per run and a summary table with medians and ratios.
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "process.h"
#include "redis_server.h"
#include "stream_publisher.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/random.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::bench {
namespace {

namespace v1 = ::turnbroker::v1;
using turnbroker::testing::BuiltBinary;
using turnbroker::testing::FreePort;
using turnbroker::testing::RedisServer;
using turnbroker::testing::Subprocess;
using turnbroker::testing::TempDir;
using turnbroker::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kRealm = "bench.example.org";

int64_t NowUs() { return MonotonicMicros(); }

std::string Username(int run, int i) { return StrCat("b", run, "-", i); }
std::string KeyName(int run, int i) {
  return StrCat("turn/realm/", kRealm, "/user/", Username(run, i), "/key");
}

// Sleeps, then spins, until the monotonic clock reaches `target_us`.
void WaitUntilUs(int64_t target_us) {
  for (;;) {
    int64_t left = target_us - NowUs();
    if (left <= 0) return;
    if (left > 300) std::this_thread::sleep_for(std::chrono::microseconds(left - 200));
    else std::this_thread::yield();
  }
}

// Records when each key of a run appears in each Redis (keyspace events).
class Visibility {
 public:
  Visibility(const std::vector<int>& ports, int run, int count)
      : run_(run), count_(count), arrival_(ports.size()) {
    for (auto& a : arrival_) a = std::make_unique<std::atomic<int64_t>[]>(count);
    for (size_t r = 0; r < ports.size(); ++r) {
      for (int i = 0; i < count; ++i) arrival_[r][i] = 0;
      Subscribe(ports[r], static_cast<int>(r));
    }
  }
  ~Visibility() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  // Mono µs at which key i became visible in Redis r (0: not seen).
  int64_t At(size_t r, int i) const { return arrival_[r][i].load(); }
  size_t redises() const { return arrival_.size(); }
  bool AllSeen() const {
    for (size_t r = 0; r < arrival_.size(); ++r)
      for (int i = 0; i < count_; ++i)
        if (arrival_[r][i].load() == 0) return false;
    return true;
  }

 private:
  void Subscribe(int port, int r) {
    timeval tv{2, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
      std::fprintf(stderr, "bench: cannot connect to redis %d\n", port);
      std::exit(1);
    }
    freeReplyObject(redisCommand(c, "CONFIG SET notify-keyspace-events E$"));
    freeReplyObject(redisCommand(c, "SUBSCRIBE __keyevent@0__:set"));
    const std::string prefix = StrCat("turn/realm/", kRealm, "/user/b", run_, "-");
    threads_.emplace_back([this, c, r, prefix] {
      while (!stop_) {
        // Replies already read come first; otherwise wait (at most 100 ms,
        // to notice stop_) for the socket.
        void* raw = nullptr;
        if (redisGetReplyFromReader(c, &raw) != REDIS_OK) break;
        if (raw == nullptr) {
          pollfd p{c->fd, POLLIN, 0};
          if (poll(&p, 1, 100) <= 0) continue;
          if (redisBufferRead(c) != REDIS_OK) break;
          continue;
        }
        auto* reply = static_cast<redisReply*>(raw);
        int64_t now = NowUs();
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
          std::string key(reply->element[2]->str, reply->element[2]->len);
          if (key.compare(0, prefix.size(), prefix) == 0) {
            int i = std::atoi(key.c_str() + prefix.size());
            if (i >= 0 && i < count_) {
              int64_t expected = 0;
              arrival_[r][i].compare_exchange_strong(expected, now);
            }
          }
        }
        freeReplyObject(reply);
      }
      redisFree(c);
    });
  }

  const int run_;
  const int count_;
  std::vector<std::unique_ptr<std::atomic<int64_t>[]>> arrival_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
};

// SET ... PX over one connection without waiting for each reply (a reader
// thread drains them), so that an open-loop publisher is never held up by
// a round trip, as an asynchronous client would not be.
class PipelinedSetter {
 public:
  explicit PipelinedSetter(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::fprintf(stderr, "bench: cannot connect to redis %d\n", port);
      std::exit(1);
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    reader_ = std::thread([this] {
      char buf[65536];
      for (;;) {
        ssize_t n = recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return;
        replies_ += std::count(buf, buf + n, '\n');
      }
    });
  }
  ~PipelinedSetter() {
    shutdown(fd_, SHUT_RDWR);
    reader_.join();
    close(fd_);
  }
  void Set(const std::string& key, const std::string& value, const std::string& px) {
    std::string cmd = StrCat("*5\r\n$3\r\nSET\r\n$", key.size(), "\r\n", key, "\r\n$",
                             value.size(), "\r\n", value, "\r\n$2\r\nPX\r\n$", px.size(),
                             "\r\n", px, "\r\n");
    size_t off = 0;
    while (off < cmd.size()) {
      ssize_t n = send(fd_, cmd.data() + off, cmd.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  int64_t replies() const { return replies_.load(); }

 private:
  int fd_ = -1;
  std::thread reader_;
  std::atomic<int64_t> replies_{0};
};

struct Percentiles {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  size_t samples = 0, lost = 0;
};

Percentiles Compute(std::vector<int64_t> us, size_t lost) {
  Percentiles p;
  p.lost = lost;
  p.samples = us.size();
  if (us.empty()) return p;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    size_t k = static_cast<size_t>(q * static_cast<double>(us.size() - 1));
    return static_cast<double>(us[k]) / 1000.0;
  };
  p.p50_ms = at(0.50);
  p.p99_ms = at(0.99);
  p.max_ms = static_cast<double>(us.back()) / 1000.0;
  return p;
}

struct Options {
  double rate = 5'000;
  double duration_s = 5;
  int runs = 3;
  int syncs = 4;
  int cold = 1'000'000;
  int cold_runs = 3;
  double warmup_s = 0.5;
  double batch_window_ms = 0;
  bool stream_publisher = false;
  std::string scenarios = "broker,broker-durable,diy,replication,cold-sync";
};

v1::Credential MakeCredential(int run, int i, int64_t ttl_ms) {
  v1::Credential c;
  c.set_realm(kRealm);
  c.set_username(Username(run, i));
  c.set_key(RandomBytes(16));
  c.set_expires_at_ms(Clock::System()->NowMs() + ttl_ms);
  c.set_subscriber(StrCat("sip:u", i, "@", kRealm));
  c.set_issuer("bench-pcscf");
  return c;
}

std::unique_ptr<Subprocess> StartBroker(const TempDir& dir, bool durable, int port) {
  std::vector<std::string> argv = {BuiltBinary("turn-broker"), "--listen",
                                   StrCat("127.0.0.1:", port), "--log-level", "warn",
                                   "--max-queue", "100000"};
  if (durable) {
    argv.push_back("--data-dir");
    argv.push_back(dir.File(StrCat("broker-", port)));
  } else {
    argv.push_back("--ephemeral");
  }
  auto p = std::make_unique<Subprocess>(argv, dir.File(StrCat("broker-", port, ".log")));
  if (!p->WaitForOutput("turn-broker listening on", 10s)) {
    std::fprintf(stderr, "bench: turn-broker did not start:\n%s\n", p->Output().c_str());
    std::exit(1);
  }
  return p;
}

std::unique_ptr<Subprocess> StartSync(const TempDir& dir, int broker_port, const RedisServer& redis,
                                      const std::string& name) {
  auto p = std::make_unique<Subprocess>(
      std::vector<std::string>{BuiltBinary("turn-credential-sync"), "--broker",
                               StrCat("127.0.0.1:", broker_port), "--redis-url", redis.url(),
                               "--realm", kRealm, "--name", name, "--log-level", "info"},
      dir.File(StrCat("sync-", name, ".log")));
  return p;
}

// CPU seconds (user + system) a process has used so far.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) {
      stime = std::stod(f);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

bool WaitSynced(Subprocess& p, std::chrono::milliseconds timeout) {
  return p.WaitForOutput("msg=\"synced\"", timeout).has_value();
}

// Runs the open-loop schedule; `send(i)` must not block for long.
void OpenLoop(int n, double rate, int64_t t0, const std::function<void(int)>& send) {
  for (int i = 0; i < n; ++i) {
    WaitUntilUs(t0 + static_cast<int64_t>(static_cast<double>(i) * 1e6 / rate));
    send(i);
  }
}

// Latency from each scheduled send to visible in all Redis (after warm-up).
Percentiles Measure(const Visibility& vis, int n, double rate, int64_t t0, double warmup_s) {
  std::vector<int64_t> lat;
  size_t lost = 0;
  int first = static_cast<int>(warmup_s * rate);
  for (int i = first; i < n; ++i) {
    int64_t scheduled = t0 + static_cast<int64_t>(static_cast<double>(i) * 1e6 / rate);
    int64_t last = 0;
    bool seen = true;
    for (size_t r = 0; r < vis.redises(); ++r) {
      int64_t at = vis.At(r, i);
      if (at == 0) seen = false;
      last = std::max(last, at);
    }
    if (!seen) {
      ++lost;
      continue;
    }
    lat.push_back(last - scheduled);
  }
  return Compute(std::move(lat), lost);
}

struct RunResult {
  Percentiles p;
  double achieved_rate = 0;
};

RunResult RunBroker(const Options& o, int run, bool durable) {
  TempDir dir;
  int broker_port = FreePort();
  auto broker = StartBroker(dir, durable, broker_port);
  std::vector<std::unique_ptr<RedisServer>> redis;
  std::vector<std::unique_ptr<Subprocess>> syncs;
  std::vector<int> ports;
  for (int s = 0; s < o.syncs; ++s) {
    redis.push_back(std::make_unique<RedisServer>(dir));
    ports.push_back(redis.back()->port());
    syncs.push_back(StartSync(dir, broker_port, *redis.back(), StrCat("s", s)));
  }
  for (auto& s : syncs) {
    if (!WaitSynced(*s, 10s)) {
      std::fprintf(stderr, "bench: a sync did not sync:\n%s\n", s->Output().c_str());
      std::exit(1);
    }
  }
  const int n = static_cast<int>(o.rate * o.duration_s);
  Visibility vis(ports, run, n);
  std::vector<v1::PublishRequest> requests(n);
  for (int i = 0; i < n; ++i) *requests[i].add_credentials() = MakeCredential(run, i, 600'000);

  ChannelOptions co;
  co.target = StrCat("127.0.0.1:", broker_port);
  auto stub = v1::CredentialBroker::NewStub(*MakeChannel(co));
  struct Call {
    grpc::ClientContext ctx;
    v1::PublishResponse resp;
    int i;
  };
  std::atomic<int> done{0}, errors{0};
  std::vector<int64_t> acked(n, 0);  // when each publish was acknowledged
  std::this_thread::sleep_for(200ms);
  const int64_t t0 = NowUs() + 10'000;
  // One credential per Publish, or (--batch-window) every credential
  // scheduled within a window in one Publish sent at the window's end.
  const int per_window =
      o.batch_window_ms > 0 ? std::max(1, static_cast<int>(o.rate * o.batch_window_ms / 1000)) : 1;
  std::vector<v1::PublishRequest> batches;
  for (int i = 0; i < n; i += per_window) {
    v1::PublishRequest req;
    for (int k = i; k < std::min(n, i + per_window); ++k) *req.add_credentials() = requests[k].credentials(0);
    batches.push_back(std::move(req));
  }
  // --stream-publisher: each Publish a request on one PublishStream, its id
  // the index of its first credential.
  std::unique_ptr<StreamPublisher> streamer;
  if (o.stream_publisher) {
    streamer = std::make_unique<StreamPublisher>(
        stub.get(), [&](const v1::PublishStreamResponse& a) {
          if (a.code() != 0) errors++;
          const int first = static_cast<int>(a.id());
          const int count = batches[first / per_window].credentials_size();
          for (int k = first; k < first + count; ++k) acked[k] = NowUs();
          done += count;
        });
  }
  OpenLoop(n, o.rate, t0, [&](int i) {
    if ((i + 1) % per_window != 0 && i + 1 != n) return;  // the window is not over
    const int first = i / per_window * per_window;
    if (streamer) {
      v1::PublishStreamRequest r;
      r.set_id(static_cast<uint64_t>(first));
      *r.mutable_request() = batches[first / per_window];
      streamer->Send(std::move(r));
      return;
    }
    auto* call = new Call;
    call->i = first;
    call->ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    stub->async()->Publish(&call->ctx, &batches[first / per_window], &call->resp,
                           [call, &done, &errors, &acked, i](grpc::Status s) {
                             if (!s.ok()) errors++;
                             for (int k = call->i; k <= i; ++k) acked[k] = NowUs();
                             done += i - call->i + 1;
                             delete call;
                           });
  });
  double achieved = n / (static_cast<double>(NowUs() - t0) / 1e6);
  WaitUntil([&] { return done.load() == n && vis.AllSeen(); }, 15s);
  if (streamer) streamer->Close();
  if (errors) std::fprintf(stderr, "bench: %d publishes failed\n", errors.load());
  // Where the time goes: until the broker acknowledged, and from there on.
  std::vector<int64_t> ack_lat;
  for (int i = static_cast<int>(o.warmup_s * o.rate); i < n; ++i) {
    if (acked[i]) ack_lat.push_back(acked[i] - (t0 + static_cast<int64_t>(i * 1e6 / o.rate)));
  }
  Percentiles ack = Compute(std::move(ack_lat), 0);
  // The TURN side's own share: from the acknowledgement to visible in all
  // Redis (0 when a key was visible before the publisher had its answer).
  std::vector<int64_t> after_ack;
  for (int i = static_cast<int>(o.warmup_s * o.rate); i < n; ++i) {
    int64_t last = 0;
    for (size_t r = 0; r < vis.redises(); ++r) last = std::max(last, vis.At(r, i));
    if (acked[i] && last) after_ack.push_back(std::max<int64_t>(0, last - acked[i]));
  }
  Percentiles turn_side = Compute(std::move(after_ack), 0);
  std::printf("  %-15s        publish acknowledged: p50 %.3f ms  p99 %.3f ms; "
              "acknowledged -> visible in all: p50 %.3f ms  p99 %.3f ms\n",
              durable ? "broker-durable" : "broker", ack.p50_ms, ack.p99_ms, turn_side.p50_ms,
              turn_side.p99_ms);
  return {Measure(vis, n, o.rate, t0, o.warmup_s), achieved};
}

RunResult RunDiy(const Options& o, int run) {
  TempDir dir;
  std::vector<std::unique_ptr<RedisServer>> redis;
  std::vector<int> ports;
  for (int s = 0; s < o.syncs; ++s) {
    redis.push_back(std::make_unique<RedisServer>(dir));
    ports.push_back(redis.back()->port());
  }
  const int n = static_cast<int>(o.rate * o.duration_s);
  Visibility vis(ports, run, n);
  std::vector<std::string> values(n);
  for (int i = 0; i < n; ++i) values[i] = HexLower(RandomBytes(16));
  std::this_thread::sleep_for(200ms);
  const int64_t t0 = NowUs() + 10'000;
  // The publisher fans each credential out to every TURN Redis.
  std::vector<std::unique_ptr<PipelinedSetter>> setters;
  for (int s = 0; s < o.syncs; ++s) setters.push_back(std::make_unique<PipelinedSetter>(ports[s]));
  OpenLoop(n, o.rate, t0, [&](int i) {
    for (auto& setter : setters) setter->Set(KeyName(run, i), values[i], "600000");
  });
  double achieved = n / (static_cast<double>(NowUs() - t0) / 1e6);
  WaitUntil([&] { return vis.AllSeen(); }, 10s);
  return {Measure(vis, n, o.rate, t0, o.warmup_s), achieved};
}

RunResult RunReplication(const Options& o, int run) {
  TempDir dir;
  RedisServer primary(dir, {"--repl-diskless-sync-delay", "0"});
  std::vector<std::unique_ptr<RedisServer>> replicas;
  std::vector<int> ports;
  for (int s = 0; s < o.syncs; ++s) {
    replicas.push_back(std::make_unique<RedisServer>(
        dir, std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(primary.port())}));
    ports.push_back(replicas.back()->port());
  }
  for (auto& r : replicas) {
    bool ok = WaitUntil(
        [&] {
          auto info = r->client().Command({"INFO", "replication"});
          return info.ok() && info->str.find("master_link_status:up") != std::string::npos;
        },
        10s);
    if (!ok) {
      std::fprintf(stderr, "bench: a replica did not sync\n");
      std::exit(1);
    }
  }
  const int n = static_cast<int>(o.rate * o.duration_s);
  Visibility vis(ports, run, n);
  std::vector<std::string> values(n);
  for (int i = 0; i < n; ++i) values[i] = HexLower(RandomBytes(16));
  std::this_thread::sleep_for(200ms);
  PipelinedSetter setter(primary.port());
  const int64_t t0 = NowUs() + 10'000;
  OpenLoop(n, o.rate, t0, [&](int i) { setter.Set(KeyName(run, i), values[i], "600000"); });
  double achieved = n / (static_cast<double>(NowUs() - t0) / 1e6);
  WaitUntil([&] { return vis.AllSeen(); }, 10s);
  return {Measure(vis, n, o.rate, t0, o.warmup_s), achieved};
}

// Publishes `count` credentials in batches as fast as the broker takes them.
void Fill(int broker_port, int count) {
  ChannelOptions co;
  co.target = StrCat("127.0.0.1:", broker_port);
  auto stub = v1::CredentialBroker::NewStub(*MakeChannel(co));
  const int batch = 10'000;
  for (int start = 0; start < count; start += batch) {
    v1::PublishRequest req;
    for (int i = start; i < std::min(count, start + batch); ++i) {
      *req.add_credentials() = MakeCredential(0, i, 3'600'000);
    }
    v1::PublishResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    grpc::Status s = stub->Publish(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "bench: fill failed: %s\n", s.error_message().c_str());
      std::exit(1);
    }
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

bool Wants(const Options& o, const std::string& scenario) {
  std::stringstream ss(o.scenarios);
  std::string s;
  while (std::getline(ss, s, ',')) {
    if (s == scenario) return true;
  }
  return false;
}

}  // namespace
}  // namespace turnbroker::bench

int main(int argc, char** argv) {
  using namespace turnbroker::bench;
  Options o;
  CLI::App app{"turn_sync_bench: publish -> key visible in the TURN Redis (broker + "
               "turn-credential-sync vs. do-it-yourself SET PX vs. Redis replication), and "
               "the cold sync of many credentials."};
  app.add_option("--rate", o.rate, "Credentials per second (open loop)")->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds of load per run")->capture_default_str();
  app.add_option("--runs", o.runs, "Runs per scenario (the median is reported)")
      ->capture_default_str();
  app.add_option("--syncs", o.syncs, "TURN Redis (each with its own sync)")->capture_default_str();
  app.add_option("--cold", o.cold, "Live credentials for the cold sync")->capture_default_str();
  app.add_option("--cold-runs", o.cold_runs, "Cold sync runs")->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "Seconds of each run left out of the figures")
      ->capture_default_str();
  app.add_option("--scenarios", o.scenarios, "Comma-separated scenarios")->capture_default_str();
  app.add_flag("--stream-publisher", o.stream_publisher,
               "Broker paths: publish on one PublishStream instead of a Publish call each");
  app.add_option("--batch-window", o.batch_window_ms,
                 "Broker paths: publish the credentials of each window of this many ms in one "
                 "Publish (0: one credential per Publish)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  struct Row {
    std::string name;
    std::vector<double> p50, p99, max, rate;
    size_t lost = 0;
  };
  std::vector<Row> rows;
  std::printf("rate=%.0f/s duration=%.1fs runs=%d syncs=%d (latency: scheduled send -> visible "
              "in all %d Redis; warm-up %.1fs left out)\n",
              o.rate, o.duration_s, o.runs, o.syncs, o.syncs, o.warmup_s);
  int run_id = 1;
  for (const char* scenario : {"broker", "broker-durable", "diy", "replication"}) {
    if (!Wants(o, scenario)) continue;
    Row row{scenario, {}, {}, {}, {}, 0};
    for (int r = 0; r < o.runs; ++r) {
      RunResult res;
      std::string s = scenario;
      if (s == "broker") res = RunBroker(o, run_id++, false);
      else if (s == "broker-durable") res = RunBroker(o, run_id++, true);
      else if (s == "diy") res = RunDiy(o, run_id++);
      else res = RunReplication(o, run_id++);
      std::printf("  %-15s run %d: p50 %.3f ms  p99 %.3f ms  max %.3f ms  samples %zu  lost %zu  "
                  "sent %.0f/s\n",
                  scenario, r + 1, res.p.p50_ms, res.p.p99_ms, res.p.max_ms, res.p.samples,
                  res.p.lost, res.achieved_rate);
      std::fflush(stdout);
      row.p50.push_back(res.p.p50_ms);
      row.p99.push_back(res.p.p99_ms);
      row.max.push_back(res.p.max_ms);
      row.rate.push_back(res.achieved_rate);
      row.lost += res.p.lost;
    }
    rows.push_back(row);
  }

  std::vector<double> cold;
  if (Wants(o, "cold-sync")) {
    TempDir dir;
    int port = FreePort();
    auto broker = StartBroker(dir, false, port);
    int64_t fill_start = NowUs();
    Fill(port, o.cold);
    std::printf("cold-sync: %d credentials published in %.1f s\n", o.cold,
                static_cast<double>(NowUs() - fill_start) / 1e6);
    for (int r = 0; r < o.cold_runs; ++r) {
      RedisServer redis(dir);
      double broker_cpu = CpuSeconds(broker->pid());
      int64_t start = NowUs();
      auto sync = StartSync(dir, port, redis, turnbroker::StrCat("cold", r));
      if (!WaitSynced(*sync, 300s)) {
        std::fprintf(stderr, "bench: cold sync did not finish:\n%s\n", sync->Output().c_str());
        return 1;
      }
      double secs = static_cast<double>(NowUs() - start) / 1e6;
      double sync_cpu = CpuSeconds(sync->pid());
      broker_cpu = CpuSeconds(broker->pid()) - broker_cpu;
      auto size = redis.client().Command({"DBSIZE"});
      auto info = redis.client().Command({"INFO", "cpu"});
      double redis_cpu = 0;
      if (info.ok()) {
        for (const char* field : {"used_cpu_user:", "used_cpu_sys:"}) {
          size_t at = info->str.find(field);
          if (at != std::string::npos) redis_cpu += std::atof(info->str.c_str() + at + strlen(field));
        }
      }
      std::printf("  cold-sync       run %d: %.2f s  (%.0f keys/s, DBSIZE %lld; CPU s: sync %.2f, "
                  "redis %.2f, broker %.2f)\n",
                  r + 1, secs, o.cold / secs,
                  size.ok() ? static_cast<long long>(size->integer) : -1LL, sync_cpu, redis_cpu,
                  broker_cpu);
      std::fflush(stdout);
      cold.push_back(secs);
    }
  }

  std::printf("\nsummary (median of runs)\n");
  std::printf("  %-15s %10s %10s %10s %10s %6s\n", "path", "p50 ms", "p99 ms", "max ms", "sent/s",
              "lost");
  double diy50 = 0, diy99 = 0, rep50 = 0, rep99 = 0;
  for (auto& row : rows) {
    if (row.name == "diy") diy50 = Median(row.p50), diy99 = Median(row.p99);
    if (row.name == "replication") rep50 = Median(row.p50), rep99 = Median(row.p99);
  }
  for (auto& row : rows) {
    std::printf("  %-15s %10.3f %10.3f %10.3f %10.0f %6zu", row.name.c_str(), Median(row.p50),
                Median(row.p99), Median(row.max), Median(row.rate), row.lost);
    if (diy50 > 0 && row.name.rfind("broker", 0) == 0) {
      std::printf("   vs diy: p50 x%.2f p99 x%.2f", Median(row.p50) / diy50,
                  Median(row.p99) / diy99);
    }
    if (rep50 > 0 && row.name.rfind("broker", 0) == 0) {
      std::printf("   vs replication: p50 x%.2f p99 x%.2f", Median(row.p50) / rep50,
                  Median(row.p99) / rep99);
    }
    std::printf("\n");
  }
  if (!cold.empty()) {
    std::printf("  %-15s %10.2f s for %d credentials (median of %zu)\n", "cold-sync", Median(cold),
                o.cold, cold.size());
  }
  return 0;
}
