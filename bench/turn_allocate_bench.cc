// turn_allocate_bench: does a TURN node's Redis holding 1M live credentials
// slow coturn's Allocates, or stall that Redis? (Issue: coturn flags that
// scale; docs/benchmarks-turn.md#allocate-latency-with-1m-credentials.)
//
// Two TURN nodes side by side, each a real coturn (the chart's flags) on its
// own real redis-server holding N long-term credentials in coturn's schema
// (turn/realm/<realm>/user/<username>/key): 1,000 and 1,000,000 by default.
// Runs alternate between them (A/B rounds), each an open loop of Allocates
// over UDP at --rate by a minimal STUN client (RFC 8489 / RFC 8656): an
// unauthenticated Allocate (401 with a nonce), the authenticated Allocate
// (coturn reads the user's key from Redis: what is measured), and a Refresh
// with lifetime 0 that frees the relay. Each Allocate is for a random user
// of the N. Printed beside the floor measured in the same run: a STUN
// Binding to the same coturn (one round trip, no Redis; an Allocate is two).
//
// During each run a probe PINGs the node's Redis every 5 ms (the highest
// round trip is "Redis max latency"), and Redis' own LATENCY monitor
// (threshold 1 ms) reports its slowest event. --unsafe-flags starts coturn
// without --no-auth-pings --no-dynamic-ip-list --no-dynamic-realms, to show
// the KEYS scans those flags avoid.
//
// Targets (the issue): Allocate p99 with 1M within 20% of the one with 1k;
// Redis max latency <= 10 ms.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "coturn.h"
#include "open_loop.h"
#include "percentiles.h"
#include "redis_server.h"
#include "report.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/redis.h"

namespace turnbroker::bench {
namespace {

using testing::CoturnOptions;
using testing::CoturnServer;
using testing::RedisServer;
using testing::TempDir;

constexpr char kRealm[] = "bench.example.org";

std::string UserName(size_t i) { return "u" + std::to_string(i); }
std::string Password(size_t i) { return "pw-" + std::to_string(i) + "-bench"; }

// ---- A minimal STUN/TURN client ------------------------------------------

constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr uint16_t kBindingRequest = 0x0001, kBindingSuccess = 0x0101;
constexpr uint16_t kAllocateRequest = 0x0003, kAllocateSuccess = 0x0103, kAllocateError = 0x0113;
constexpr uint16_t kRefreshRequest = 0x0004;
constexpr uint16_t kAttrUsername = 0x0006, kAttrIntegrity = 0x0008, kAttrErrorCode = 0x0009,
                   kAttrLifetime = 0x000D, kAttrRealm = 0x0014, kAttrNonce = 0x0015,
                   kAttrRequestedTransport = 0x0019;

class Message {
 public:
  Message(uint16_t type, std::mt19937_64& rng) {
    Put16(type);
    Put16(0);
    Put32(kMagicCookie);
    for (int i = 0; i < 12; ++i) bytes_.push_back(static_cast<char>(rng()));
  }
  void Attr(uint16_t type, std::string_view value) {
    Put16(type);
    Put16(static_cast<uint16_t>(value.size()));
    bytes_.append(value);
    while (bytes_.size() % 4) bytes_.push_back('\0');
  }
  void Attr32(uint16_t type, uint32_t value) {
    char v[4] = {char(value >> 24), char(value >> 16), char(value >> 8), char(value)};
    Attr(type, std::string_view(v, 4));
  }
  // MESSAGE-INTEGRITY over everything before it, with the length covering it
  // (RFC 8489 §14.5), keyed by the long-term key.
  void Integrity(const LongTermKey& key) {
    SetLength(bytes_.size() - 20 + 24);
    unsigned char mac[20];
    unsigned int len = 0;
    HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(bytes_.data()), bytes_.size(), mac, &len);
    Attr(kAttrIntegrity, std::string_view(reinterpret_cast<char*>(mac), 20));
  }
  const std::string& Finish() {
    SetLength(bytes_.size() - 20);
    return bytes_;
  }
  std::string_view transaction() const { return std::string_view(bytes_).substr(8, 12); }

 private:
  void Put16(uint16_t v) {
    bytes_.push_back(static_cast<char>(v >> 8));
    bytes_.push_back(static_cast<char>(v));
  }
  void Put32(uint32_t v) {
    Put16(static_cast<uint16_t>(v >> 16));
    Put16(static_cast<uint16_t>(v));
  }
  void SetLength(size_t n) {
    bytes_[2] = static_cast<char>(n >> 8);
    bytes_[3] = static_cast<char>(n);
  }
  std::string bytes_;
};

struct Response {
  uint16_t type = 0;
  int error = 0;
  std::string realm, nonce;
};

uint16_t Get16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

// Sends `request` and waits (up to 2 s) for the response to its
// transaction. False on a timeout or a malformed answer.
bool Exchange(int fd, Message& request, Response* out) {
  const std::string& wire = request.Finish();
  if (send(fd, wire.data(), wire.size(), 0) != static_cast<ssize_t>(wire.size())) return false;
  char buf[1500];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 20) return false;  // timeout, error or runt
    if (std::string_view(buf + 8, 12) != request.transaction()) continue;
    *out = Response{};
    out->type = Get16(buf);
    size_t len = std::min<size_t>(Get16(buf + 2), static_cast<size_t>(n) - 20);
    for (size_t at = 20; at + 4 <= 20 + len;) {
      uint16_t type = Get16(buf + at), size = Get16(buf + at + 2);
      if (at + 4 + size > 20 + len) break;
      std::string_view value(buf + at + 4, size);
      if (type == kAttrRealm) out->realm = value;
      if (type == kAttrNonce) out->nonce = value;
      if (type == kAttrErrorCode && size >= 4)
        out->error = (value[2] & 0x7) * 100 + static_cast<uint8_t>(value[3]);
      at += 4 + ((size + 3) & ~3u);
    }
    return true;
  }
}

int UdpSocketTo(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One Binding round trip (the floor). True on a success response.
bool Binding(int port, std::mt19937_64& rng) {
  int fd = UdpSocketTo(port);
  if (fd < 0) return false;
  Message m(kBindingRequest, rng);
  Response r;
  bool ok = Exchange(fd, m, &r) && r.type == kBindingSuccess;
  close(fd);
  return ok;
}

// One allocation of user `i`: 401, the authenticated Allocate (timed into
// *auth_done, MonotonicMicros), and a Refresh to lifetime 0. True if the
// authenticated Allocate succeeded.
bool Allocate(int port, size_t i, std::mt19937_64& rng, int64_t* auth_done) {
  // A new socket's ephemeral port can be one whose allocation coturn has not
  // freed yet (437 Allocation Mismatch): that is this client's artifact, so
  // it takes another socket.
  int fd = -1;
  Response challenge;
  bool challenged = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (fd >= 0) close(fd);
    fd = UdpSocketTo(port);
    if (fd < 0) return false;
    Message first(kAllocateRequest, rng);
    first.Attr32(kAttrRequestedTransport, 17u << 24);
    challenged = Exchange(fd, first, &challenge);
    if (!challenged || challenge.error != 437) break;
  }
  bool ok = false;
  if (std::getenv("TURN_ALLOCATE_BENCH_DEBUG") && !(challenged && challenge.error == 401))
    std::fprintf(stderr, "first allocate: %s type %x error %d\n",
                 challenged ? "answered" : "no answer", challenge.type, challenge.error);
  if (challenged && challenge.type == kAllocateError && challenge.error == 401) {
    const std::string user = UserName(i);
    const LongTermKey key = DeriveLongTermKey(user, challenge.realm, Password(i));
    Message auth(kAllocateRequest, rng);
    auth.Attr32(kAttrRequestedTransport, 17u << 24);
    auth.Attr(kAttrUsername, user);
    auth.Attr(kAttrRealm, challenge.realm);
    auth.Attr(kAttrNonce, challenge.nonce);
    auth.Integrity(key);
    Response allocated;
    bool answered = Exchange(fd, auth, &allocated);
    ok = answered && allocated.type == kAllocateSuccess;
    *auth_done = MonotonicMicros();
    if (!ok && std::getenv("TURN_ALLOCATE_BENCH_DEBUG"))
      std::fprintf(stderr, "allocate of %s: %s\n", user.c_str(),
                   answered ? ("error " + std::to_string(allocated.error)).c_str() : "no answer");
    if (ok) {
      Message refresh(kRefreshRequest, rng);
      refresh.Attr32(kAttrLifetime, 0);
      refresh.Attr(kAttrUsername, user);
      refresh.Attr(kAttrRealm, challenge.realm);
      refresh.Attr(kAttrNonce, challenge.nonce);
      refresh.Integrity(key);
      Response freed;
      Exchange(fd, refresh, &freed);
    }
  }
  close(fd);
  return ok;
}

// ---- The TURN nodes -------------------------------------------------------

// N credentials in coturn's schema, through redis-cli --pipe.
bool Load(const RedisServer& redis, size_t n) {
  std::string cmd = "redis-cli -p " + std::to_string(redis.port()) + " --pipe >/dev/null";
  FILE* pipe = popen(cmd.c_str(), "w");
  if (!pipe) return false;
  std::string batch;
  auto bulk = [&](std::string_view s) {
    batch += "$" + std::to_string(s.size()) + "\r\n";
    batch.append(s);
    batch += "\r\n";
  };
  for (size_t i = 0; i < n; ++i) {
    const std::string user = UserName(i);
    const LongTermKey key = DeriveLongTermKey(user, kRealm, Password(i));
    batch += "*3\r\n";
    bulk("SET");
    bulk(std::string("turn/realm/") + kRealm + "/user/" + user + "/key");
    bulk(HexLower(std::string_view(reinterpret_cast<const char*>(key.data()), key.size())));
    if (batch.size() > (1 << 20) || i + 1 == n) {
      fwrite(batch.data(), 1, batch.size(), pipe);
      batch.clear();
    }
  }
  return pclose(pipe) == 0;
}

struct Node {
  size_t credentials = 0;
  std::unique_ptr<RedisServer> redis;
  std::unique_ptr<CoturnServer> coturn;
};

// ---- One run ----------------------------------------------------------------

struct Run {
  Percentiles allocate, floor;
  double redis_ping_max_ms = 0;
  int64_t redis_latency_max_ms = 0;  // LATENCY LATEST: the highest event
  size_t refused = 0;
};

// `threads` senders share an open-loop schedule at `rate`; latency from the
// scheduled time to the response.
template <typename Send>
Percentiles OpenLoop(double rate, double seconds, int threads, Send send) {
  const size_t n = static_cast<size_t>(rate * seconds);
  OpenLoopSchedule schedule(rate);
  std::vector<int64_t> done(n, 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(std::random_device{}() + t);
      for (size_t i = t; i < n; i += threads) {
        schedule.SleepUntil(i);
        int64_t at = 0;
        if (send(rng, &at)) done[i] = at;
      }
    });
  }
  for (auto& w : workers) w.join();
  return LatenciesFromSchedule(schedule, done, schedule.FirstMeasured(n));
}

Run Measure(Node& node, double rate, double seconds, int threads) {
  Run run;
  node.redis->Command({"LATENCY", "RESET"});
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ping_max_us{0};
  std::thread probe([&] {
    HiredisClient client(RedisOptions{node.redis->redis_url()});
    while (!stop.load()) {
      int64_t t0 = MonotonicMicros();
      if (!client.Command({"PING"}).ok()) break;
      int64_t took = MonotonicMicros() - t0;
      if (took > ping_max_us.load()) ping_max_us.store(took);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  const int port = node.coturn->port();
  std::atomic<size_t> refused{0};
  run.allocate = OpenLoop(rate, seconds, threads, [&](std::mt19937_64& rng, int64_t* at) {
    size_t user = rng() % node.credentials;
    bool ok = Allocate(port, user, rng, at);
    if (!ok) refused++;
    return ok;
  });
  stop = true;
  probe.join();
  run.refused = refused;
  run.redis_ping_max_ms = static_cast<double>(ping_max_us.load()) / 1000.0;
  RedisReply latest = node.redis->Command({"LATENCY", "LATEST"});
  for (const auto& event : latest.elements)
    if (event.elements.size() >= 4)
      run.redis_latency_max_ms = std::max(run.redis_latency_max_ms, event.elements[3].integer);
  run.floor =
      OpenLoop(rate, std::min(seconds, 3.0), threads, [&](std::mt19937_64& rng, int64_t* at) {
        bool ok = Binding(port, rng);
        *at = MonotonicMicros();
        return ok;
      });
  return run;
}

}  // namespace
}  // namespace turnbroker::bench

int main(int argc, char** argv) {
  using namespace turnbroker::bench;
  CLI::App app(
      "coturn Allocate latency and its Redis' latency with many live credentials "
      "(see the header of bench/turn_allocate_bench.cc)");
  std::vector<size_t> sizes = {1'000, 1'000'000};
  double rate = 200, seconds = 10;
  int runs = 3, threads = 16;
  bool unsafe = false, quick = false;
  app.add_option("--sizes", sizes, "Live credentials in each node's Redis")->delimiter(',');
  app.add_option("--rate", rate, "Allocates/s")->capture_default_str();
  app.add_option("--seconds", seconds, "Length of each run")->capture_default_str();
  app.add_option("--runs", runs, "Runs per node, alternating nodes")->capture_default_str();
  app.add_option("--threads", threads, "Concurrent senders")->capture_default_str();
  app.add_flag("--unsafe-flags", unsafe,
               "coturn without --no-auth-pings --no-dynamic-ip-list --no-dynamic-realms");
  app.add_flag("--quick", quick, "One short run (with 1k and 20k unless --sizes; a smoke test)");
  QuietOptions quiet;
  AddQuietFlags(app, &quiet);
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    if (app.count("--sizes") == 0) sizes = {1'000, 20'000};
    runs = 1;
    seconds = 2;
  }
  ProbeMachine(quiet);

  TempDir dir;
  std::vector<Node> nodes;
  for (size_t n : sizes) {
    Node node;
    node.credentials = n;
    node.redis = std::make_unique<RedisServer>(
        dir, std::vector<std::string>{"--latency-monitor-threshold", "1"});
    const int64_t t0 = turnbroker::MonotonicMicros();
    if (!Load(*node.redis, n)) {
      std::fprintf(stderr, "loading %zu credentials failed\n", n);
      return 1;
    }
    const int64_t keys = node.redis->Command({"DBSIZE"}).integer;
    if (keys != static_cast<int64_t>(n)) {
      std::fprintf(stderr, "loaded %lld credentials of %zu\n", static_cast<long long>(keys), n);
      return 1;
    }
    std::printf("node with %zu credentials: loaded in %.1f s\n", n,
                (turnbroker::MonotonicMicros() - t0) / 1e6);
    CoturnOptions options;
    options.realm = kRealm;
    options.redis_port = node.redis->port();
    if (unsafe) {
      for (const auto& f : turnbroker::testing::ChartCoturnFlags())
        if (f.rfind("--no-auth-pings", 0) && f.rfind("--no-dynamic-", 0))
          options.peer_flags.push_back(f);
    }
    node.coturn = std::make_unique<CoturnServer>(dir, options);
    nodes.push_back(std::move(node));
  }
  std::printf("coturn %s; open loop %.0f Allocates/s for %.0f s, %d senders; %d runs per node\n",
              unsafe ? "WITHOUT the KEYS-avoiding flags" : "with the chart's flags", rate, seconds,
              threads, runs);

  std::vector<std::vector<Run>> results(nodes.size());
  for (int r = 0; r < runs; ++r) {
    for (size_t k = 0; k < nodes.size(); ++k) {
      Run run = Measure(nodes[k], rate, seconds, threads);
      std::printf(
          "run %d, %8zu credentials: Allocate (401 + authenticated: two round trips) %s; refused "
          "%zu; Redis: PING max "
          "%.2f ms, LATENCY max %lld ms%s\n",
          r + 1, nodes[k].credentials,
          BesideFloor(run.allocate.p50, run.allocate.p99, run.floor.p50, run.floor.p99).c_str(),
          run.refused, run.redis_ping_max_ms, static_cast<long long>(run.redis_latency_max_ms),
          Mark());
      std::fflush(stdout);
      results[k].push_back(run);
    }
  }
  std::printf("\nmedians of %d runs\n", runs);
  std::vector<double> p99s;
  for (size_t k = 0; k < nodes.size(); ++k) {
    std::vector<double> p50, p99, f50, f99, ping, lat;
    for (const Run& run : results[k]) {
      p50.push_back(run.allocate.p50);
      p99.push_back(run.allocate.p99);
      f50.push_back(run.floor.p50);
      f99.push_back(run.floor.p99);
      ping.push_back(run.redis_ping_max_ms);
      lat.push_back(static_cast<double>(run.redis_latency_max_ms));
    }
    p99s.push_back(Median(p99));
    std::printf(
        "  %8zu credentials: Allocate %s; Redis max latency: PING %.2f ms, LATENCY %.0f ms "
        "(target <= 10 ms)%s\n",
        nodes[k].credentials,
        BesideFloor(Median(p50), Median(p99), Median(f50), Median(f99)).c_str(), Median(ping),
        Median(lat), Mark());
  }
  if (p99s.size() >= 2)
    std::printf("  Allocate p99, %zu against %zu credentials: %s (target <= x1.2)%s\n",
                nodes.back().credentials, nodes.front().credentials,
                FormatRatio(p99s.back(), p99s.front(), 2).c_str(), Mark());
  return CheckMachineAfterRun();
}
