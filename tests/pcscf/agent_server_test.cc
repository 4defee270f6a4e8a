// pcscf-turn-agent as built, over real HTTP, against a real turn-broker:
// acknowledgement before 201, keep-alive, limits, a UNIX socket, a broker
// that is down, frozen (ack lost) or restarted with a new epoch.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent_process.h"
#include "broker_process.h"
#include "broker_view.h"
#include "fake_broker_client.h"
#include "process.h"
#include "turnbroker/common/clock.h"

namespace turnbroker::pcscf {
namespace {

using json = nlohmann::json;
using testing::AgentProcess;
using testing::BrokerView;
using testing::WaitFor;
using ::turnbroker::testing::BrokerProcess;
using ::turnbroker::testing::TempDir;

class AgentServerTest : public ::testing::Test {
 protected:
  httplib::Result Post(AgentProcess& agent, const std::string& path, const std::string& body) {
    httplib::Client cli("127.0.0.1", agent.port());
    cli.set_read_timeout(5, 0);
    return cli.Post(path.c_str(), body, "application/json");
  }
  TempDir dir_;
};

TEST_F(AgentServerTest, Answers201OnlyWithACredentialTheBrokerHolds) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  AgentProcess agent(dir_, broker.address(), {"--issuer", "pcscf-test"});
  auto r = Post(agent, "/v1/credentials", R"({"impu":"sip:alice@example.org","ttl":600})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  json j = json::parse(r->body);
  BrokerView view(broker.address());
  auto stored = view.Get(j["username"]);
  ASSERT_TRUE(stored) << "201 came before the broker committed";
  EXPECT_EQ(stored->subscriber(), "sip:alice@example.org");
  EXPECT_EQ(stored->issuer(), "pcscf-test");
  EXPECT_EQ(stored->realm(), "example.org");
  EXPECT_EQ(stored->expires_at_ms() / 1000, j["expires_at"].get<int64_t>());
}

// Sends `n` requests on one TCP connection; returns the status codes read.
std::vector<int> OnOneConnection(int port, int n, const std::string& body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> codes;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return codes;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string pending;
  for (int i = 0; i < n; ++i) {
    std::string req =
        "POST /v1/credentials HTTP/1.1\r\nHost: agent\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) break;
    // Read one response: headers, then Content-Length bytes.
    while (true) {
      size_t end = pending.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = pending.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(pending.substr(cl + 16));
        if (pending.size() >= end + 4 + len) {
          codes.push_back(std::stoi(pending.substr(9, 3)));
          pending.erase(0, end + 4 + len);
          break;
        }
      }
      char buf[4096];
      ssize_t got = read(fd, buf, sizeof buf);
      if (got <= 0) {
        close(fd);
        return codes;
      }
      pending.append(buf, static_cast<size_t>(got));
    }
  }
  close(fd);
  return codes;
}

TEST_F(AgentServerTest, KeepsTheConnectionAliveAcrossRequests) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  AgentProcess agent(dir_, broker.address());
  std::vector<int> codes = OnOneConnection(agent.port(), 20, R"({"impu":"sip:ka@example.org"})");
  ASSERT_EQ(codes.size(), 20u);
  EXPECT_EQ(codes[0], 201);
  for (size_t i = 1; i < codes.size(); ++i) EXPECT_EQ(codes[i], 200) << "reused at " << i;
}

TEST_F(AgentServerTest, ReRegisterAfterAnOperatorRevocationGetsANewCredentialTheBrokerHolds) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  AgentProcess agent(dir_, broker.address(), {"--issuer", "pcscf-op"});
  BrokerView view(broker.address());
  const std::string body = R"({"impu":"sip:alice@example.org"})";
  auto first = Post(agent, "/v1/credentials", body);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 201) << first->body;
  std::string u1 = json::parse(first->body)["username"];
  ASSERT_EQ(view.RevokeUsername(u1),
            1);  // out of band, behind the agent's back
  auto second = Post(agent, "/v1/credentials", body);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 201) << "a new credential, not the revoked one: " << second->body;
  std::string u2 = json::parse(second->body)["username"];
  EXPECT_NE(u2, u1);
  EXPECT_EQ(json::parse(second->body)["reused"], false);
  EXPECT_TRUE(view.IsLive(u2)) << "the broker holds the new one";
  EXPECT_FALSE(view.IsLive(u1));
  // Revoked by issuer this time (an operator's clean slate): the same.
  ASSERT_EQ(view.RevokeIssuer("pcscf-op"), 1);
  auto third = Post(agent, "/v1/credentials", body);
  ASSERT_TRUE(third);
  ASSERT_EQ(third->status, 201) << third->body;
  std::string u3 = json::parse(third->body)["username"];
  EXPECT_NE(u3, u2);
  EXPECT_TRUE(view.IsLive(u3));
  // Not revoked: reused (200), and still held by the broker.
  auto fourth = Post(agent, "/v1/credentials", body);
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->status, 200) << fourth->body;
  EXPECT_EQ(json::parse(fourth->body)["username"], u3);
  EXPECT_EQ(view.CountLive("sip:alice@example.org"), 1);
}

TEST_F(AgentServerTest, HttpErrorsAreJson) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  AgentProcess agent(dir_, broker.address());
  httplib::Client cli("127.0.0.1", agent.port());
  auto big = cli.Post("/v1/credentials", std::string(20'000, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(json::parse(big->body)["field"], "body");
  auto missing = cli.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["field"], "path");
  auto bad = cli.Post("/v1/credentials", R"({"impu":"sip:a@x","ttl":"x"})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["field"], "ttl");
  auto wrong = cli.Put("/v1/credentials", "{}", "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "POST, DELETE");
  auto del = cli.Delete("/v1/credentials?impu=sip%3Anobody%40example.org");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 204);
}

TEST_F(AgentServerTest, ServesOnAUnixSocket) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  std::string path = dir_.File("agent.sock");
  // A stale socket file from an earlier run does not stop it.
  {
    FILE* f = fopen(path.c_str(), "w");
    if (f) fclose(f);
  }
  ::turnbroker::testing::Subprocess agent(
      {::turnbroker::testing::BuiltBinary("pcscf-turn-agent"), "--broker", broker.address(),
       "--listen", "unix:" + path, "--realm", "example.org", "--turn-uri", "turn:127.0.0.1:3478"},
      dir_.File("agent-unix.log"));
  ASSERT_TRUE(agent.WaitForOutput("listening on unix:" + path, std::chrono::seconds(10)))
      << agent.Output();
  httplib::Client cli(path);
  cli.set_address_family(AF_UNIX);
  auto r = cli.Post("/v1/credentials", R"({"impu":"sip:unix@example.org"})", "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 201) << r->body;
  agent.Signal(SIGTERM);
  auto st = agent.Wait(std::chrono::seconds(5));
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "socket file removed at exit";
}

TEST_F(AgentServerTest, BrokerDownIs503FastAndHealthSaysSo) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  AgentProcess agent(dir_, broker.address());
  httplib::Client cli("127.0.0.1", agent.port());
  ASSERT_EQ(cli.Get("/healthz")->status, 200);
  broker.process().Kill();
  int64_t start = MonotonicMicros();
  auto r = cli.Post("/v1/credentials", R"({"impu":"sip:alice@example.org"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(r->body.find("password"), std::string::npos);
  EXPECT_LT(MonotonicMicros() - start, 1'000'000) << "within Kamailio's 1 s HTTP timeout";
  auto h = cli.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  EXPECT_EQ(json::parse(h->body)["broker"], "unreachable");
}

TEST_F(AgentServerTest, ACredentialWhoseAckWasLostIsRevokedNotLeftBehind) {
  // A durable broker frozen mid-request: it commits after the agent gave up.
  BrokerProcess broker(dir_, {"--data-dir", dir_.File("broker-data"), "--no-fsync"});
  AgentProcess agent(dir_, broker.address(), {"--publish-timeout", "0.3"});
  ASSERT_EQ(Post(agent, "/v1/credentials", R"({"impu":"sip:warm@example.org"})")->status, 201);
  broker.process().Signal(SIGSTOP);
  auto r = Post(agent, "/v1/credentials", R"({"impu":"sip:frozen@example.org"})");
  broker.process().Signal(SIGCONT);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  BrokerView view(broker.address());
  auto revoked = [&] {
    auto s = view.Status();
    return s && view.CountLive("sip:frozen@example.org") == 0 && s->revoked_usernames() >= 1;
  };
  ASSERT_TRUE(WaitFor(revoked)) << "the unacknowledged username must end revoked";
}

TEST_F(AgentServerTest, ReassertsLiveCredentialsAfterTheBrokerLostItsStore) {
  BrokerProcess broker(dir_, {"--ephemeral"});
  AgentProcess agent(dir_, broker.address(), {"--status-interval", "0.1"});
  auto r = Post(agent, "/v1/credentials", R"({"impu":"sip:alice@example.org"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201);
  std::string username = json::parse(r->body)["username"];
  BrokerView view(broker.address());
  std::string epoch = view.Status()->epoch();
  broker.Restart();  // ephemeral: a new, empty store with a new epoch
  ASSERT_TRUE(WaitFor([&] { return view.IsLive(username); }))
      << "the agent re-asserts what it issued";
  EXPECT_NE(view.Status()->epoch(), epoch);
}

}  // namespace
}  // namespace turnbroker::pcscf
