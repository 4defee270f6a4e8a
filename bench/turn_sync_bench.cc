// turn_sync_bench: how fast a published credential becomes visible in the
// TURN servers' Redis, compared with the two paths a user would otherwise
// take, and how long a cold sync of many credentials takes.
//
// Scenarios (each on its own fresh processes, all on loopback):
//   broker          publisher -> turn-broker (--ephemeral) -> N turn-credential-sync
//                   -> N redis-server (one sync per Redis), a Publish per credential
//   broker-library  the same, published through the eP-CSCF library's batching
//                   Publisher (pcscf-plugin) over its PublishStream
//   broker-durable  the same as broker with the broker's durable store (fsync per
//                   group commit)
//   diy             the publisher writes SET ... PX into the N Redis itself
//   replication     the publisher writes SET ... PX into one primary Redis with N
//                   replicas
// The broker paths are also set against the sum of the floors they stand on,
// measured in the same run: two gRPC stream hops (publish, watch; each a
// round trip on one stream to an echo server in a process of its own,
// stream_floor.h) plus the do-it-yourself write (diy, when it runs); and
// against the relay floor (relay_floor.h: one publish stream fanned out to N
// watch streams by a server that does nothing else, the fan-out's own cost
// on this machine included) plus the diy write.
// Load is open-loop: send i is scheduled at t0 + i/rate and its latency is
// counted from that scheduled time, so a stalled path cannot hide its queue.
// A key is "visible" when the Redis that must serve it emits its keyspace
// event (notify-keyspace-events E$, channel __keyevent@0__:set); the figure
// is the time until it is visible in all N. A key never seen in all N is a
// lost sample (percentiles.h).
//
// Each broker run also reports the broker's CPU and context switches per
// credential over its measured window (proc_usage.h), and measures the floor
// on the same broker right after it: GetStatus at the same rate
// (status_floor.h). Every latency figure is printed beside the floor of the
// same run (diy and replication beside the median of this run's broker
// floors). Before anything, the machine is probed (report.h).
//
//   cold-sync       C live credentials in the broker, a sync started against an
//                   empty Redis: time until it logged SYNCED (all C keys written).
//
// Usage: turn_sync_bench [--rate 5000] [--duration 5] [--runs 3] [--syncs 4]
//                        [--cold 1000000] [--cold-runs 3] [--batch-window 0]
//                        [--scenarios broker,broker-library,broker-durable,diy,
//                                     replication,cold-sync] [--broker-flag=F]...
//                        [--require-quiet]
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
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "open_loop.h"
#include "percentiles.h"
#include "proc_usage.h"
#include "process.h"
#include "redis_server.h"
#include "relay_floor.h"
#include "report.h"
#include "status_floor.h"
#include "stream_floor.h"
#include "stream_publisher.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/random.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/pcscf/publisher.h"
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
    if (left > 300)
      std::this_thread::sleep_for(std::chrono::microseconds(left - 200));
    else
      std::this_thread::yield();
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
    std::string cmd = StrCat("*5\r\n$3\r\nSET\r\n$", key.size(), "\r\n", key, "\r\n$", value.size(),
                             "\r\n", value, "\r\n$2\r\nPX\r\n$", px.size(), "\r\n", px, "\r\n");
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
  // broker-library: the Publisher's max_in_flight (0: its default).
  int publisher_in_flight = 0;
  std::string scenarios = "broker,broker-library,broker-durable,diy,replication,cold-sync";
  // The stream echo server (stream_floor.h) the broker runs measure their
  // stream floor on; empty: none.
  std::string stream_echo;
};

// --broker-flag: extra flags for every turn-broker this program starts.
std::vector<std::string> g_broker_flags;

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
  std::vector<std::string> argv = {BuiltBinary("turn-broker"),
                                   "--listen",
                                   StrCat("127.0.0.1:", port),
                                   "--log-level",
                                   "warn",
                                   "--max-queue",
                                   "100000"};
  if (durable) {
    argv.push_back("--data-dir");
    argv.push_back(dir.File(StrCat("broker-", port)));
  } else {
    argv.push_back("--ephemeral");
  }
  argv.insert(argv.end(), g_broker_flags.begin(), g_broker_flags.end());
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
  std::optional<ProcessUsage> u = ReadProcessUsage(pid);
  return u ? u->cpu_us / 1e6 : 0;
}

bool WaitSynced(Subprocess& p, std::chrono::milliseconds timeout) {
  return p.WaitForOutput("msg=\"synced\"", timeout).has_value();
}

// Runs the open-loop schedule; `send(i)` must not block for long.
void OpenLoop(int n, const OpenLoopSchedule& schedule, const std::function<void(int)>& send) {
  for (int i = 0; i < n; ++i) {
    WaitUntilUs(schedule.At(i));
    send(i);
  }
}

// When each key became visible in all Redis (0: not in all).
std::vector<int64_t> VisibleInAll(const Visibility& vis, int n) {
  std::vector<int64_t> at(n, 0);
  for (int i = 0; i < n; ++i) {
    int64_t last = 0;
    for (size_t r = 0; r < vis.redises(); ++r) {
      const int64_t seen = vis.At(r, i);
      if (!seen) {
        last = 0;
        break;
      }
      last = std::max(last, seen);
    }
    at[i] = last;
  }
  return at;
}

// Latency (µs) from each scheduled send to visible in all Redis (after
// warm-up); a key not visible in all is lost.
Percentiles Measure(const Visibility& vis, int n, const OpenLoopSchedule& schedule,
                    const Options& o) {
  return LatenciesFromSchedule(schedule, VisibleInAll(vis, n),
                               schedule.FirstMeasured(n, o.warmup_s));
}

struct RunResult {
  Percentiles p;  // µs
  double achieved_rate = 0;
  // Broker runs: GetStatus at the same rate on the same broker, right after.
  std::optional<Percentiles> floor;
  // Broker runs: round trips on one gRPC stream to an echo server at the same
  // rate, right after (the stream floor, stream_floor.h).
  std::optional<Percentiles> stream_floor;
  // Right after too: the relay floor to as many watch streams as syncs.
  std::optional<Percentiles> relay_floor;
  // Broker runs: the broker over the measured window, and the TURN side's
  // processes (all syncs together, all Redis together).
  std::optional<ProcessUsage> broker_usage, syncs_usage, redis_usage;
  double window_seconds = 0;
  int credentials = 0;
};

enum class Publishing { kPerCredential, kLibrary };

// The usage of several processes together; nullopt if any sample failed.
std::optional<ProcessUsage> SumOf(const std::vector<UsageWindow>& windows) {
  ProcessUsage sum;
  for (const UsageWindow& w : windows) {
    auto u = w.Stop();
    if (!u) return std::nullopt;
    sum += *u;
  }
  return sum;
}

RunResult RunBroker(const Options& o, const char* scenario, int run, bool durable,
                    Publishing publishing) {
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
  auto channel = *MakeChannel(co);
  auto stub = v1::CredentialBroker::NewStub(channel);
  struct Call {
    grpc::ClientContext ctx;
    v1::PublishResponse resp;
    int i;
  };
  std::atomic<int> done{0}, errors{0};
  std::vector<int64_t> acked(n, 0);  // when each publish was acknowledged
  // broker-library: the eP-CSCF library's Publisher, as an eP-CSCF runs it.
  std::unique_ptr<pcscf::BrokerClient> library_client;
  std::unique_ptr<pcscf::Publisher> library;
  if (publishing == Publishing::kLibrary) {
    library_client = pcscf::NewGrpcBrokerClient(channel);
    pcscf::PublisherOptions options;
    if (o.publisher_in_flight > 0) options.max_in_flight = o.publisher_in_flight;
    library = std::make_unique<pcscf::Publisher>(library_client.get(), options);
  }
  std::this_thread::sleep_for(200ms);
  const OpenLoopSchedule schedule(o.rate, 10'000);
  // One credential per Publish, or (--batch-window) every credential
  // scheduled within a window in one Publish sent at the window's end.
  const int per_window =
      o.batch_window_ms > 0 ? std::max(1, static_cast<int>(o.rate * o.batch_window_ms / 1000)) : 1;
  std::vector<v1::PublishRequest> batches;
  for (int i = 0; i < n; i += per_window) {
    v1::PublishRequest req;
    for (int k = i; k < std::min(n, i + per_window); ++k)
      *req.add_credentials() = requests[k].credentials(0);
    batches.push_back(std::move(req));
  }
  // --stream-publisher: each Publish a request on one PublishStream, its id
  // the index of its first credential.
  std::unique_ptr<StreamPublisher> streamer;
  if (o.stream_publisher && !library) {
    streamer =
        std::make_unique<StreamPublisher>(stub.get(), [&](const v1::PublishStreamResponse& a) {
          const int first = static_cast<int>(a.id());
          const int count = batches[first / per_window].credentials_size();
          if (a.code() != 0)
            errors++;
          else
            for (int k = first; k < first + count; ++k) acked[k] = NowUs();
          done += count;
        });
  }
  const UsageWindow usage(broker->pid());
  std::vector<UsageWindow> sync_usage, redis_usage;
  for (auto& s : syncs) sync_usage.emplace_back(s->pid());
  for (auto& r : redis) redis_usage.emplace_back(r->pid());
  OpenLoop(n, schedule, [&](int i) {
    if (library) {
      library->PublishAsync(requests[i].credentials(0), 10'000, [&, i](absl::Status s) {
        if (s.ok())
          acked[i] = NowUs();
        else
          errors++;
        done++;
      });
      return;
    }
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
                             if (!s.ok())
                               errors++;
                             else
                               for (int k = call->i; k <= i; ++k) acked[k] = NowUs();
                             done += i - call->i + 1;
                             delete call;
                           });
  });
  RunResult result;
  result.achieved_rate = n / (static_cast<double>(NowUs() - schedule.t0()) / 1e6);
  WaitUntil([&] { return done.load() == n && vis.AllSeen(); }, 15s);
  result.broker_usage = usage.Stop();
  result.syncs_usage = SumOf(sync_usage);
  result.redis_usage = SumOf(redis_usage);
  result.window_seconds = static_cast<double>(NowUs() - schedule.t0()) / 1e6;
  result.credentials = n;
  if (streamer) streamer->Close();
  if (errors) std::fprintf(stderr, "bench: %d publishes failed\n", errors.load());
  // Where the time goes: until the broker acknowledged, and from there on.
  const size_t first = schedule.FirstMeasured(n, o.warmup_s);
  Percentiles ack = LatenciesFromSchedule(schedule, acked, first);
  // The TURN side's own share: from the acknowledgement to visible in all
  // Redis (0 when a key was visible before the publisher had its answer);
  // lost when either never happened.
  const std::vector<int64_t> visible = VisibleInAll(vis, n);
  std::vector<int64_t> after_ack;
  size_t after_ack_lost = 0;
  for (size_t i = first; i < static_cast<size_t>(n); ++i) {
    if (acked[i] && visible[i])
      after_ack.push_back(std::max<int64_t>(0, visible[i] - acked[i]));
    else
      ++after_ack_lost;
  }
  Percentiles turn_side = Summarize(after_ack, after_ack_lost);
  result.p = LatenciesFromSchedule(schedule, visible, first);
  result.floor = OpenLoopStatus(stub.get(), static_cast<int>(o.rate), o.duration_s);
  if (!o.stream_echo.empty()) {
    result.stream_floor = OpenLoopStreamEcho(o.stream_echo, static_cast<int>(o.rate), o.duration_s);
    std::printf("  %-15s        stream floor (echo round trip): %s%s\n", scenario,
                Format(*result.stream_floor, "ms", 1e-3).c_str(), Mark());
    result.relay_floor = RunRelay(o.stream_echo, o.syncs, static_cast<int>(o.rate), o.duration_s);
    std::printf("  %-15s        relay floor (to %d watch streams): %s%s\n", scenario, o.syncs,
                Format(*result.relay_floor, "ms", 1e-3).c_str(), Mark());
  }
  std::printf(
      "  %-15s        publish acknowledged: %s\n"
      "  %-15s        acknowledged -> visible in all: %s%s\n"
      "  %-15s        broker: %s%s\n"
      "  %-15s        the %d syncs: %s; the %d Redis: %s%s\n",
      scenario, BesideFloor(ack.p50, ack.p99, result.floor->p50, result.floor->p99).c_str(),
      scenario, Format(turn_side, "ms", 1e-3).c_str(), Mark(), scenario,
      result.broker_usage
          ? FormatPerCredential(*result.broker_usage, n, result.window_seconds).c_str()
          : "n/a (/proc not readable)",
      Mark(), scenario, o.syncs,
      result.syncs_usage
          ? FormatPerCredential(*result.syncs_usage, n, result.window_seconds).c_str()
          : "n/a",
      o.syncs,
      result.redis_usage
          ? FormatPerCredential(*result.redis_usage, n, result.window_seconds).c_str()
          : "n/a",
      Mark());
  return result;
}

// Open-loop SET ... PX of each key into every Redis of `set_ports` by the
// publisher itself; visible when in every Redis of `visible_ports`.
RunResult RunSetPx(const Options& o, int run, const std::vector<int>& set_ports,
                   const std::vector<int>& visible_ports) {
  const int n = static_cast<int>(o.rate * o.duration_s);
  Visibility vis(visible_ports, run, n);
  std::vector<std::string> values(n);
  for (int i = 0; i < n; ++i) values[i] = HexLower(RandomBytes(16));
  std::this_thread::sleep_for(200ms);
  std::vector<std::unique_ptr<PipelinedSetter>> setters;
  for (int port : set_ports) setters.push_back(std::make_unique<PipelinedSetter>(port));
  const OpenLoopSchedule schedule(o.rate, 10'000);
  OpenLoop(n, schedule, [&](int i) {
    for (auto& setter : setters) setter->Set(KeyName(run, i), values[i], "600000");
  });
  RunResult result;
  result.achieved_rate = n / (static_cast<double>(NowUs() - schedule.t0()) / 1e6);
  WaitUntil([&] { return vis.AllSeen(); }, 10s);
  result.p = Measure(vis, n, schedule, o);
  return result;
}

// The publisher fans each credential out to every TURN Redis.
RunResult RunDiy(const Options& o, int run) {
  TempDir dir;
  std::vector<std::unique_ptr<RedisServer>> redis;
  std::vector<int> ports;
  for (int s = 0; s < o.syncs; ++s) {
    redis.push_back(std::make_unique<RedisServer>(dir));
    ports.push_back(redis.back()->port());
  }
  return RunSetPx(o, run, ports, ports);
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
  return RunSetPx(o, run, {primary.port()}, ports);
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

// The floor on a broker of its own (for diy and replication when no broker
// scenario ran): GetStatus at the benchmark's rate.
Percentiles FloorOnAFreshBroker(const Options& o) {
  TempDir dir;
  const int port = FreePort();
  auto broker = StartBroker(dir, false, port);
  ChannelOptions co;
  co.target = StrCat("127.0.0.1:", port);
  auto stub = v1::CredentialBroker::NewStub(*MakeChannel(co));
  return OpenLoopStatus(stub.get(), static_cast<int>(o.rate), o.duration_s);
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
  CLI::App app{
      "turn_sync_bench: publish -> key visible in the TURN Redis (broker + "
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
  app.add_option("--publisher-in-flight", o.publisher_in_flight,
                 "broker-library: Publish calls the library's Publisher keeps in flight (0: its "
                 "default, pcscf::PublisherOptions)")
      ->capture_default_str();
  app.add_option(
      "--broker-flag", g_broker_flags,
      "Extra turn-broker flag (repeatable), e.g. --broker-flag=--min-frame-interval-us=1000");
  QuietOptions quiet;
  AddQuietFlags(app, &quiet);
  int serve_stream_echo = 0;
  app.add_option("--serve-stream-echo", serve_stream_echo,
                 "(internal) be the floor server (stream echo and relay)");
  CLI11_PARSE(app, argc, argv);
  if (serve_stream_echo > 0) return ServeFloors(serve_stream_echo);  // the echo and the relay
  ProbeMachine(quiet);
  // The stream floor's echo server, in a process of its own like the broker.
  TempDir echo_dir;
  std::unique_ptr<Subprocess> echo;
  if (Wants(o, "broker") || Wants(o, "broker-library") || Wants(o, "broker-durable")) {
    const int port = FreePort();
    echo =
        StartFloorServer({"--serve-stream-echo", std::to_string(port)}, echo_dir.File("echo.log"));
    if (!echo) return 1;
    o.stream_echo = turnbroker::StrCat("127.0.0.1:", port);
  }

  struct Row {
    std::string name;
    std::vector<double> p50, p99, max, rate, floor50, floor99;  // µs, /s
    std::vector<double> stream50, stream99;                     // µs
    std::vector<double> relay50, relay99;                       // µs
    size_t lost = 0;
    // The broker over all runs' windows together.
    std::optional<ProcessUsage> usage;
    double credentials = 0, seconds = 0;
  };
  std::vector<Row> rows;
  std::printf(
      "rate=%.0f/s duration=%.1fs runs=%d syncs=%d (latency: scheduled send -> visible "
      "in all %d Redis; warm-up %.1fs left out)\n",
      o.rate, o.duration_s, o.runs, o.syncs, o.syncs, o.warmup_s);
  int run_id = 1;
  std::vector<double> floors50, floors99;  // every broker run's floor
  for (const char* scenario :
       {"broker", "broker-library", "broker-durable", "diy", "replication"}) {
    if (!Wants(o, scenario)) continue;
    Row row;
    row.name = scenario;
    for (int r = 0; r < o.runs; ++r) {
      RunResult res;
      std::string s = scenario;
      if (s == "broker")
        res = RunBroker(o, scenario, run_id++, false, Publishing::kPerCredential);
      else if (s == "broker-library")
        res = RunBroker(o, scenario, run_id++, false, Publishing::kLibrary);
      else if (s == "broker-durable")
        res = RunBroker(o, scenario, run_id++, true, Publishing::kPerCredential);
      else if (s == "diy")
        res = RunDiy(o, run_id++);
      else
        res = RunReplication(o, run_id++);
      std::printf("  %-15s run %d: %s; sent %.0f/s", scenario, r + 1,
                  Format(res.p, "ms", 1e-3).c_str(), res.achieved_rate);
      if (res.floor) {
        std::printf("; floor p50 %s ms p99 %s ms", FormatValue(res.floor->p50, 1e-3).c_str(),
                    FormatValue(res.floor->p99, 1e-3).c_str());
        row.floor50.push_back(res.floor->p50);
        row.floor99.push_back(res.floor->p99);
        floors50.push_back(res.floor->p50);
        floors99.push_back(res.floor->p99);
      }
      if (res.stream_floor) {
        row.stream50.push_back(res.stream_floor->p50);
        row.stream99.push_back(res.stream_floor->p99);
      }
      if (res.relay_floor) {
        row.relay50.push_back(res.relay_floor->p50);
        row.relay99.push_back(res.relay_floor->p99);
      }
      std::printf("%s\n", Mark());
      std::fflush(stdout);
      row.p50.push_back(res.p.p50);
      row.p99.push_back(res.p.p99);
      row.max.push_back(res.p.max);
      row.rate.push_back(res.achieved_rate);
      row.lost += res.p.lost;
      if (res.broker_usage) {
        if (!row.usage) row.usage = ProcessUsage{};
        *row.usage += *res.broker_usage;
        row.credentials += res.credentials;
        row.seconds += res.window_seconds;
      }
    }
    rows.push_back(row);
  }
  // diy and replication have no broker: their floor is the median of this
  // run's broker floors, or one measured now.
  const bool have_rows_without_floor =
      std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.floor50.empty(); });
  if (have_rows_without_floor && floors50.empty()) {
    Percentiles f = FloorOnAFreshBroker(o);
    floors50.push_back(f.p50);
    floors99.push_back(f.p99);
  }
  for (Row& row : rows) {
    if (!row.floor50.empty()) continue;
    row.floor50 = floors50;
    row.floor99 = floors99;
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
          if (at != std::string::npos)
            redis_cpu += std::atof(info->str.c_str() + at + strlen(field));
        }
      }
      std::printf(
          "  cold-sync       run %d: %.2f s  (%.0f keys/s, DBSIZE %lld; CPU s: sync %.2f, "
          "redis %.2f, broker %.2f)%s\n",
          r + 1, secs, o.cold / secs, size.ok() ? static_cast<long long>(size->integer) : -1LL,
          sync_cpu, redis_cpu, broker_cpu, Mark());
      std::fflush(stdout);
      cold.push_back(secs);
    }
  }

  std::printf("\nsummary (median of runs; ms; the floor: GetStatus at %.0f/s, same run)%s\n",
              o.rate, Mark());
  std::printf("  %-15s %9s %9s %9s %8s %6s %10s %10s %8s\n", "path", "p50", "p99", "max", "sent/s",
              "lost", "floor p50", "floor p99", "p99/fl");
  double diy50 = 0, diy99 = 0, rep50 = 0, rep99 = 0;
  for (auto& row : rows) {
    if (row.name == "diy") diy50 = Median(row.p50), diy99 = Median(row.p99);
    if (row.name == "replication") rep50 = Median(row.p50), rep99 = Median(row.p99);
  }
  auto ratio = [](double a, double b) { return FormatRatio(a, b, 2); };
  for (auto& row : rows) {
    const double p50 = Median(row.p50), p99 = Median(row.p99);
    const double f50 = Median(row.floor50), f99 = Median(row.floor99);
    std::printf("  %-15s %9s %9s %9s %8.0f %6zu %10s %10s %8s", row.name.c_str(),
                FormatValue(p50, 1e-3).c_str(), FormatValue(p99, 1e-3).c_str(),
                FormatValue(Median(row.max), 1e-3).c_str(), Median(row.rate), row.lost,
                FormatValue(f50, 1e-3).c_str(), FormatValue(f99, 1e-3).c_str(),
                ratio(p99, f99).c_str());
    if (diy50 > 0 && row.name.rfind("broker", 0) == 0) {
      std::printf("   vs diy: p50 %s p99 %s", ratio(p50, diy50).c_str(), ratio(p99, diy99).c_str());
    }
    if (rep50 > 0 && row.name.rfind("broker", 0) == 0) {
      std::printf("   vs replication: p50 %s p99 %s", ratio(p50, rep50).c_str(),
                  ratio(p99, rep99).c_str());
    }
    std::printf("%s\n", Mark());
    if (row.usage) {
      std::printf("  %-15s broker, all runs' windows: %s%s\n", "",
                  FormatPerCredential(*row.usage, row.credentials, row.seconds).c_str(), Mark());
    }
  }
  // The broker paths against the sum of the floors they stand on, all from
  // this run: a publish-stream hop and a watch-stream hop (each counted as a
  // stream echo round trip) plus the do-it-yourself write into the N Redis.
  if (diy50 > 0) {
    for (auto& row : rows) {
      if (row.stream50.empty()) continue;
      const double s50 = Median(row.stream50), s99 = Median(row.stream99);
      const double sum50 = 2 * s50 + diy50, sum99 = 2 * s99 + diy99;
      std::printf(
          "  %-15s vs the sum of floors (2 x stream echo p50 %s / p99 %s + diy): p50 %s ms "
          "%s (target <= 1.3), p99 %s ms %s (target <= 1.5)%s\n",
          row.name.c_str(), FormatValue(s50, 1e-3).c_str(), FormatValue(s99, 1e-3).c_str(),
          FormatValue(sum50, 1e-3).c_str(), ratio(Median(row.p50), sum50).c_str(),
          FormatValue(sum99, 1e-3).c_str(), ratio(Median(row.p99), sum99).c_str(), Mark());
      if (row.relay50.empty()) continue;
      const double r50 = Median(row.relay50) + diy50, r99 = Median(row.relay99) + diy99;
      std::printf("  %-15s vs the relay floor to %d + diy (p50 %s / p99 %s ms): p50 %s, p99 %s%s\n",
                  row.name.c_str(), o.syncs, FormatValue(r50, 1e-3).c_str(),
                  FormatValue(r99, 1e-3).c_str(), ratio(Median(row.p50), r50).c_str(),
                  ratio(Median(row.p99), r99).c_str(), Mark());
    }
  }
  if (!cold.empty()) {
    std::printf("  %-15s %10.2f s for %d credentials (median of %zu)%s\n", "cold-sync",
                Median(cold), o.cold, cold.size(), Mark());
  }
  return CheckMachineAfterRun();
}
