// The agent's evapi client (pcscf-plugin/turnbroker/pcscf/evapi_client.h)
// against a fake Kamailio: a listening loopback socket that accepts the
// client, sends netstring events and reads the answers. The real Kamailio
// path is tests/e2e/pcscf_kamailio_async_test.cc.
#include "turnbroker/pcscf/evapi_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "wait_for.h"

namespace turnbroker::pcscf {
namespace {

using nlohmann::json;
using testing::WaitFor;

TEST(NetstringTest, SplitsMessagesWhateverTheReadsCarry) {
  NetstringReader r(100);
  std::string m;
  r.Feed("5:he");
  EXPECT_FALSE(*r.Next(&m));
  r.Feed("llo,3:abc,0:,1");
  ASSERT_TRUE(*r.Next(&m));
  EXPECT_EQ(m, "hello");
  ASSERT_TRUE(*r.Next(&m));
  EXPECT_EQ(m, "abc");
  ASSERT_TRUE(*r.Next(&m));
  EXPECT_EQ(m, "");
  EXPECT_FALSE(*r.Next(&m));
  r.Feed(":x,");
  ASSERT_TRUE(*r.Next(&m));
  EXPECT_EQ(m, "x");
  EXPECT_EQ(Netstring("hello"), "5:hello,");
}

TEST(NetstringTest, RefusesWhatIsNotNetstringsOrTooLong) {
  for (const char* bad : {"x:", "5:hello;", "101:", "-1:", ":abc,", "1234", "12a"}) {
    NetstringReader r(100);
    std::string m;
    r.Feed(bad);
    EXPECT_FALSE(r.Next(&m).ok()) << bad;
  }
}

// A fake Kamailio evapi server: one client at a time.
class FakeKamailio {
 public:
  FakeKamailio() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(listen_fd_, 4);
  }
  ~FakeKamailio() {
    if (fd_ >= 0) close(fd_);
    close(listen_fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Waits for the agent to connect.
  void Accept() {
    if (fd_ >= 0) close(fd_);
    fd_ = accept(listen_fd_, nullptr, nullptr);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void SendRaw(std::string_view bytes) { send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  void Send(const json& event) { SendRaw(Netstring(event.dump())); }
  // The next answer, or null after 5 s.
  json Receive() {
    std::string m;
    for (;;) {
      auto got = reader_.Next(&m);
      if (!got.ok()) return nullptr;
      if (*got) return json::parse(m);
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        ADD_FAILURE() << "recv: " << n << " " << std::strerror(errno);
        return nullptr;
      }
      reader_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }
  // True when the client closed this connection (within 5 s).
  bool ClosedByClient() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int listen_fd_ = -1, fd_ = -1, port_ = 0;
  NetstringReader reader_{1 << 20};
};

class EvapiClientTest : public ::testing::Test {
 protected:
  // The handler stands in for AgentApi::Handle: it records what it got and
  // answers as the HTTP API would.
  // It runs on the client's worker threads (two at once): what it records
  // is guarded, and read through Paths() and Bodies().
  EvapiClient::Handler Handler() {
    return [this](const HttpRequest& r) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_paths_.push_back(r.path);
        seen_bodies_.push_back(json::parse(r.body));
      }
      HttpResponse out;
      if (r.path == "/v1/credentials/revoke") {
        out.status = 204;
        return out;
      }
      if (json::parse(r.body).value("impu", "") == "sip:down@x") {
        out.status = 503;
        out.body = R"({"error":"broker did not acknowledge","code":"UNAVAILABLE"})";
        return out;
      }
      out.status = 201;
      out.body = R"({"username":"u1","password":"p1","header":"username=u1;password=p1"})";
      return out;
    };
  }
  std::vector<std::string> Paths() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_paths_;
  }
  std::vector<json> Bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_bodies_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_paths_;  // guarded by mu_
  std::vector<json> seen_bodies_;        // guarded by mu_
};

TEST_F(EvapiClientTest, AnswersEachSuspendedRegisterWithItsTransaction) {
  FakeKamailio kamailio;
  EvapiClientOptions options;
  options.address = kamailio.address();
  options.threads = 2;
  EvapiClient client(options, Handler());
  ASSERT_TRUE(client.Start().ok());
  kamailio.Accept();
  ASSERT_TRUE(WaitFor([&] { return client.connected(); }));

  kamailio.Send({{"tindex", 7},
                 {"tlabel", 1234567},
                 {"request", {{"op", "issue"}, {"impu", "sip:a@x"}, {"ttl", 600}}}});
  json answer = kamailio.Receive();
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(answer["tindex"], 7);
  EXPECT_EQ(answer["tlabel"], 1234567);
  EXPECT_EQ(answer["status"], 201);
  EXPECT_EQ(answer["header"], "username=u1;password=p1");
  ASSERT_EQ(Paths().size(), 1u);
  EXPECT_EQ(Paths()[0], "/v1/credentials");
  EXPECT_EQ(Bodies()[0], (json{{"impu", "sip:a@x"}, {"ttl", 600}})) << "op is not passed on";

  // A refusal keeps its status and error text; a revoke gets no answer.
  kamailio.Send({{"request", {{"op", "revoke"}, {"impu", "sip:a@x"}, {"reason", "bye"}}}});
  kamailio.Send(
      {{"tindex", 8}, {"tlabel", 9}, {"request", {{"op", "issue"}, {"impu", "sip:down@x"}}}});
  answer = kamailio.Receive();
  EXPECT_EQ(answer["tindex"], 8);
  EXPECT_EQ(answer["status"], 503);
  EXPECT_EQ(answer["error"], "broker did not acknowledge");
  EXPECT_TRUE(WaitFor([&] { return Paths().size() == 3u; }));
  client.Stop();
  const std::vector<std::string> paths = Paths();
  EXPECT_EQ(std::count(paths.begin(), paths.end(), "/v1/credentials/revoke"), 1);
}

TEST_F(EvapiClientTest, BadEventsAreAnsweredOrIgnoredAndTheStreamGoesOn) {
  FakeKamailio kamailio;
  EvapiClientOptions options;
  options.address = kamailio.address();
  EvapiClient client(options, Handler());
  ASSERT_TRUE(client.Start().ok());
  kamailio.Accept();
  kamailio.SendRaw(Netstring("not json"));  // no transaction: nothing to answer
  kamailio.Send({{"tindex", 1}, {"tlabel", 2}, {"request", "issue"}});
  json answer = kamailio.Receive();
  EXPECT_EQ(answer["status"], 400);
  EXPECT_EQ(answer["error"], "request: must be a JSON object");
  kamailio.Send({{"tindex", 1}, {"tlabel", 3}, {"request", {{"op", "rm -rf"}}}});
  answer = kamailio.Receive();
  EXPECT_EQ(answer["status"], 400);
  EXPECT_EQ(answer["tlabel"], 3);
  kamailio.Send(
      {{"tindex", 4}, {"tlabel", 5}, {"request", {{"op", "issue"}, {"impu", "sip:b@x"}}}});
  answer = kamailio.Receive();
  EXPECT_EQ(answer["status"], 201) << "the stream goes on after bad events";
  EXPECT_TRUE(Paths().size() == 1u) << "bad events never reach the handler";
}

TEST_F(EvapiClientTest, ABrokenStreamIsDroppedAndTheClientReconnects) {
  FakeKamailio kamailio;
  EvapiClientOptions options;
  options.address = kamailio.address();
  options.max_message_bytes = 256;
  options.reconnect = {10, 50, 2.0};
  EvapiClient client(options, Handler());
  ASSERT_TRUE(client.Start().ok());
  kamailio.Accept();
  kamailio.SendRaw("100000:");  // longer than the client takes: framing lost
  EXPECT_TRUE(kamailio.ClosedByClient());
  kamailio.Accept();  // it comes back
  kamailio.Send(
      {{"tindex", 1}, {"tlabel", 1}, {"request", {{"op", "issue"}, {"impu", "sip:c@x"}}}});
  json answer = kamailio.Receive();
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(answer["status"], 201);
}

TEST(EvapiClientOptionsTest, ABadAddressNamesTheFlag) {
  EvapiClient client(EvapiClientOptions{.address = "nowhere"}, nullptr);
  absl::Status s = client.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--kamailio-evapi"), std::string_view::npos) << s;
}

}  // namespace
}  // namespace turnbroker::pcscf
