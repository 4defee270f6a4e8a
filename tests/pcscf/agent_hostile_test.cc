// pcscf-turn-agent as built, over raw sockets, against hostile clients
// (issue 14, docs/security.md): bodies bounded by the bytes read whatever
// the framing, content encodings refused, POST without Content-Length, idle
// and slowloris connections and peers that never read their answers (also
// for requests answered on the I/O thread) that must not lock a legitimate
// client out, and the per-peer connection cap.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent_process.h"
#include "broker_process.h"
#include "broker_view.h"
#include "process.h"
#include "turnbroker/common/clock.h"

namespace turnbroker::pcscf {
namespace {

using json = nlohmann::json;
using testing::AgentProcess;
using ::turnbroker::testing::BrokerProcess;
using ::turnbroker::testing::TempDir;

struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
};

// One TCP connection from `source` (a loopback address, so tests can be
// several peers) to the agent.
class Connection {
 public:
  Connection(int port, const char* source = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, source, &src.sin_addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  void Shutdown() { shutdown(fd_, SHUT_RDWR); }
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads one response (headers and Content-Length bytes) within
  // `timeout`, or nullopt.
  std::optional<HttpReply> Read(std::chrono::milliseconds timeout) {
    int64_t deadline = MonotonicMicros() / 1000 + timeout.count();
    while (true) {
      size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos && pending_.size() >= 12) {
        HttpReply r;
        r.status = std::atoi(pending_.substr(9, 3).c_str());
        r.headers = pending_.substr(0, end);
        size_t cl = r.headers.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(r.headers.substr(cl + 16));
        if (pending_.size() >= end + 4 + len) {
          r.body = pending_.substr(end + 4, len);
          pending_.erase(0, end + 4 + len);
          return r;
        }
      }
      int64_t left = deadline - MonotonicMicros() / 1000;
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      pending_.append(buf, static_cast<size_t>(n));
    }
  }
  // Whether the agent closed the connection (EOF or reset) within
  // `timeout`; bytes it sent before closing are skipped.
  bool ClosedByPeer(std::chrono::milliseconds timeout) {
    int64_t deadline = MonotonicMicros() / 1000 + timeout.count();
    while (true) {
      int64_t left = deadline - MonotonicMicros() / 1000;
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string Post(std::string_view body, std::string_view extra_headers = "") {
  return std::string("POST /v1/credentials HTTP/1.1\r\nHost: agent\r\n") +
         "Content-Type: application/json\r\n" + std::string(extra_headers) +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

std::string Gzip(std::string_view in) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

class AgentHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(dir_, std::vector<std::string>{"--ephemeral"});
    agent_ = std::make_unique<AgentProcess>(dir_, broker_->address());
  }
  // A legitimate request from `source`, answered within Kamailio's 1 s.
  void ExpectServed(const char* source, const std::string& impu, int port = 0) {
    Connection c(port ? port : agent_->port(), source);
    ASSERT_TRUE(c.connected());
    int64_t start = MonotonicMicros();
    ASSERT_TRUE(c.Send(Post(json({{"impu", impu}}).dump())));
    auto r = c.Read(std::chrono::milliseconds(1000));
    ASSERT_TRUE(r) << "no answer within 1 s for " << impu << " from " << source;
    EXPECT_EQ(r->status, 201) << r->body;
    EXPECT_LT(MonotonicMicros() - start, 1'000'000);
  }
  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentHostileTest, ChunkedBodyIsCutOffAtTheLimitNotReadWhole) {
  Connection c(agent_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("POST /v1/credentials HTTP/1.1\r\nHost: agent\r\n"
             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // 64 MiB in 64 KiB chunks; the agent must stop reading long before.
  const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
  size_t sent = 0;
  for (int i = 0; i < 1024 && c.Send(chunk); ++i) sent += chunk.size();
  auto r = c.Read(std::chrono::seconds(5));
  ASSERT_TRUE(r) << "no answer after " << sent << " bytes";
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_EQ(json::parse(r->body)["field"], "body");
  EXPECT_LT(sent, 16u << 20) << "the agent read the oversized body instead of refusing it";
}

TEST_F(AgentHostileTest, CompressedBodyIsRefusedNotInflated) {
  // 16 KiB on the wire of a body that inflates far beyond the limit, and
  // a small valid one: neither is decoded.
  std::string bomb = Gzip(R"({"impu":"sip:bomb@example.org","ttl":600,"x":")" +
                          std::string(16 << 20, 'a') + "\"}");
  ASSERT_LT(bomb.size(), 64u << 10);
  for (const std::string& body : {bomb, Gzip(R"({"impu":"sip:gzip@example.org"})")}) {
    Connection c(agent_->port());
    ASSERT_TRUE(c.Send(Post(body, "Content-Encoding: gzip\r\n")));
    auto r = c.Read(std::chrono::seconds(5));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 415) << r->body;
    EXPECT_EQ(json::parse(r->body)["field"], "Content-Encoding");
  }
}

TEST_F(AgentHostileTest, PostWithoutContentLengthGets411NamingIt) {
  Connection c(agent_->port());
  ASSERT_TRUE(
      c.Send("POST /v1/credentials HTTP/1.1\r\nHost: agent\r\n"
             "Content-Type: application/json\r\n\r\n"));
  auto r = c.Read(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 411) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["field"], "Content-Length");
  EXPECT_NE(j["error"].get<std::string>().find("Content-Length"), std::string::npos);
}

TEST_F(AgentHostileTest, IdleAndSlowlorisConnectionsDoNotLockOthersOut) {
  // 64 connections that never send a byte and 64 that send a request one
  // byte at a time: twice the agent's 32 threads, within its per-peer cap.
  std::vector<std::unique_ptr<Connection>> idle, slow;
  for (int i = 0; i < 64; ++i) {
    idle.push_back(std::make_unique<Connection>(agent_->port()));
    slow.push_back(std::make_unique<Connection>(agent_->port()));
    ASSERT_TRUE(idle.back()->connected() && slow.back()->connected());
  }
  std::atomic<bool> stop{false};
  std::thread loris([&] {
    const std::string request = Post(R"({"impu":"sip:slow@example.org"})");
    for (size_t i = 0; i < request.size() && !stop; ++i) {
      for (auto& s : slow) s->Send(request.substr(i, 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Another client (a second loopback address: another peer) is served
  // at once, again and again, while the attack goes on.
  for (int i = 0; i < 5; ++i) {
    ExpectServed("127.0.0.2", "sip:alice" + std::to_string(i) + "@example.org");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  // The agent closes both kinds at their deadlines (5 s by default).
  EXPECT_TRUE(idle.front()->ClosedByPeer(std::chrono::seconds(7))) << "idle connection kept";
  EXPECT_TRUE(slow.front()->ClosedByPeer(std::chrono::seconds(7))) << "slowloris kept";
  stop = true;
  loris.join();
  ExpectServed("127.0.0.1", "sip:after@example.org");
}

TEST_F(AgentHostileTest, PeersThatDoNotReadTheirAnswersDoNotHoldTheWorkers) {
  // 40 connections (more than the 32 workers) each pipeline 2,000 requests
  // for /metrics and never read: the answers pile up in their sockets.
  std::string request = "GET /metrics HTTP/1.1\r\nHost: agent\r\n\r\n";
  std::string burst;
  for (int i = 0; i < 2000; ++i) burst += request;
  std::vector<std::unique_ptr<Connection>> deaf;
  std::vector<std::thread> senders;
  for (int i = 0; i < 40; ++i) {
    deaf.push_back(std::make_unique<Connection>(agent_->port()));
    ASSERT_TRUE(deaf.back()->connected());
    senders.emplace_back([c = deaf.back().get(), &burst] { c->Send(burst); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 5; ++i) {
    ExpectServed("127.0.0.2", "sip:reader" + std::to_string(i) + "@example.org");
  }
  for (auto& c : deaf) c->Shutdown();  // unblocks a sender the agent still reads from
  for (auto& t : senders) t.join();
}

TEST_F(AgentHostileTest, PeersThatPipelineMintsAnsweredOnTheIoThreadDoNotLockOthersOut) {
  // Shared-secret mode: a mint waits on nothing, so the agent answers it on
  // its I/O thread (docs/pcscf-plugin.md, "The agent"). 40 connections
  // each pipeline 2,000 of them and never read the answers.
  AgentProcess minting(dir_, broker_->address(), {"--mode", "shared-secret"});
  testing::BrokerView view(broker_->address());
  ASSERT_TRUE(view.AddSecret("example.org", "s1", std::string(43, 'k')).ok());
  ASSERT_TRUE(view.ActivateSecret("example.org", "s1").ok());
  int64_t deadline = MonotonicMicros() + 10'000'000;
  while (true) {  // until the agent holds the active secret
    Connection probe(minting.port());
    ASSERT_TRUE(probe.Send(Post(R"({"impu":"sip:probe@example.org"})")));
    auto r = probe.Read(std::chrono::seconds(2));
    if (r && r->status == 201) break;
    ASSERT_LT(MonotonicMicros(), deadline) << "the agent never got the active secret";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string burst;
  for (int i = 0; i < 2000; ++i) {
    burst += Post(json({{"impu", "sip:deaf" + std::to_string(i) + "@example.org"}}).dump());
  }
  std::vector<std::unique_ptr<Connection>> deaf;
  std::vector<std::thread> senders;
  for (int i = 0; i < 40; ++i) {
    deaf.push_back(std::make_unique<Connection>(minting.port()));
    ASSERT_TRUE(deaf.back()->connected());
    senders.emplace_back([c = deaf.back().get(), &burst] { c->Send(burst); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 5; ++i) {
    ExpectServed("127.0.0.2", "sip:reader" + std::to_string(i) + "@example.org", minting.port());
  }
  for (auto& c : deaf) c->Shutdown();
  for (auto& t : senders) t.join();
}

TEST_F(AgentHostileTest, PerPeerCapRefusesTheNextConnectionWithJson) {
  AgentProcess capped(dir_, broker_->address(), {"--http-max-connections-per-peer", "8"});
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<Connection>(capped.port()));
    ASSERT_TRUE(held.back()->connected());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Connection over(capped.port());
  auto r = over.Read(std::chrono::seconds(2));
  ASSERT_TRUE(r) << "the 9th connection from one peer must be refused with an answer";
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(json::parse(r->body)["field"], "connections");
  EXPECT_TRUE(over.ClosedByPeer(std::chrono::seconds(1)));
  // Another peer is not affected; a freed slot serves the first again.
  ExpectServed("127.0.0.2", "sip:other@example.org", capped.port());
  held.pop_back();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ExpectServed("127.0.0.1", "sip:again@example.org", capped.port());
}

TEST_F(AgentHostileTest, TheDefaultPerPeerCapIs128) {
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < 128; ++i) {
    held.push_back(std::make_unique<Connection>(agent_->port()));
    ASSERT_TRUE(held.back()->connected());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Connection over(agent_->port());
  auto r = over.Read(std::chrono::seconds(2));
  ASSERT_TRUE(r) << "the 129th connection from one peer must be refused with an answer";
  EXPECT_EQ(r->status, 503) << r->body;
}

}  // namespace
}  // namespace turnbroker::pcscf
