// End to end on the eP-CSCF side: sipp -> Kamailio (reference config) ->
// pcscf-turn-agent -> turn-broker, all real. The TURN half (sync, Redis,
// coturn) is in pcscf_turn_flow_test.cc.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "pcscf_stack.h"
#include "promtool.h"

namespace turnbroker::pcscf::testing {
namespace {

using ::turnbroker::testing::SippResult;
using ::turnbroker::testing::TempDir;

PcscfStackOptions WithAgentArgs(std::vector<std::string> args) {
  PcscfStackOptions o;
  o.agent_args = std::move(args);
  return o;
}

PcscfStackOptions WithDefines(std::vector<std::pair<std::string, std::string>> defines,
                              bool start_agent = true) {
  PcscfStackOptions o;
  o.kamailio_defines = std::move(defines);
  o.start_agent = start_agent;
  return o;
}

class PcscfKamailioTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(PcscfKamailioTest, The200OkOfRegisterCarriesACredentialTheBrokerHolds) {
  PcscfStack stack(dir_);
  SippResult r = stack.Sipp("register.xml", "alice", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 1u) << Dump(r);
  auto h = HeaderIn(r.log[0]);
  ASSERT_TRUE(h) << Dump(r);
  EXPECT_EQ(h->username.size(), 16u);
  EXPECT_EQ(h->password.size(), 24u);
  EXPECT_EQ(h->urls, std::vector<std::string>{"turn:127.0.0.1:3478?transport=udp"});
  EXPECT_GE(h->ttl_s, 3590);  // TURN_TTL of the reference config
  auto stored = stack.view().Get(h->username);
  ASSERT_TRUE(stored) << "the 200 OK left before the broker had it";
  EXPECT_EQ(stored->subscriber(), "sip:alice@example.org");
  EXPECT_EQ(stored->expires_at_ms() / 1000, h->expires_at_s);
  // The broker never returns keys: the TURN side checks them (pcscf_turn_*).
}

TEST_F(PcscfKamailioTest, ReRegisterReusesAndDeRegisterRevokes) {
  PcscfStack stack(dir_, WithAgentArgs({"--reuse-min-remaining", "60"}));
  SippResult r = stack.Sipp("register_lifecycle.xml", "bob", 600, {"-d", "100"});
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 3u) << Dump(r);
  auto first = HeaderIn(r.log[0]);
  auto second = HeaderIn(r.log[1]);
  ASSERT_TRUE(first && second) << Dump(r);
  EXPECT_EQ(second->username, first->username) << "policy: reuse while a minute is left";
  EXPECT_EQ(second->password, first->password);
  EXPECT_FALSE(HeaderIn(r.log[2])) << "a de-REGISTER's 200 carries no credential";
  EXPECT_FALSE(stack.view().IsLive(first->username)) << "revoked before the 200 OK";
  EXPECT_EQ(stack.view().CountLive("sip:bob@example.org"), 0);
}

TEST_F(PcscfKamailioTest, ReRegisterRotatesUnderTheRotatePolicy) {
  PcscfStack stack(dir_, WithAgentArgs({"--no-reuse", "--overlap", "0.2"}));
  SippResult r = stack.Sipp("register_lifecycle.xml", "carol", 600, {"-d", "50"});
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 3u) << Dump(r);
  auto first = HeaderIn(r.log[0]);
  auto second = HeaderIn(r.log[1]);
  ASSERT_TRUE(first && second) << Dump(r);
  EXPECT_NE(second->username, first->username);
  EXPECT_TRUE(WaitFor([&] { return stack.view().CountLive("sip:carol@example.org") == 0; }));
}

TEST_F(PcscfKamailioTest, RegistrationExpiryRevokes) {
  PcscfStack stack(dir_, WithDefines({{"REG_MIN_EXPIRES", "1"}, {"UL_TIMER_INTERVAL", "1"}}));
  SippResult r = stack.Sipp("register.xml", "dave", 2);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  auto h = HeaderIn(r.log.at(0));
  ASSERT_TRUE(h) << Dump(r);
  EXPECT_TRUE(stack.view().IsLive(h->username));
  EXPECT_TRUE(WaitFor([&] { return !stack.view().IsLive(h->username); })) << stack.kamailio().Log();
}

TEST_F(PcscfKamailioTest, AgentDownUnderRegisterPolicyRegistersWithoutCredential) {
  PcscfStack stack(dir_, WithDefines({}, /*start_agent=*/false));
  SippResult r = stack.Sipp("register.xml", "erin", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  EXPECT_FALSE(HeaderIn(r.log.at(0))) << Dump(r);
  EXPECT_NE(stack.kamailio().Log().find("agent unreachable (curl error 7)"), std::string::npos)
      << stack.kamailio().Log();
  SippResult q = stack.Sipp("register_query.xml", "erin", 0);
  ASSERT_EQ(q.exit_code, 0) << Dump(q);
  EXPECT_NE(::turnbroker::testing::SippLogValue(q.log.at(0), "Contact"), "")
      << "registered, without TURN";
}

TEST_F(PcscfKamailioTest, AgentDownUnderRefusePolicyRefusesAndKeepsNoBinding) {
  PcscfStack stack(dir_, WithDefines({kRefuse}, /*start_agent=*/false));
  SippResult r = stack.Sipp("register_refused.xml", "frank", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 2u) << Dump(r);
  EXPECT_EQ(::turnbroker::testing::SippLogValue(r.log[0], "Retry-After"), "5");
  EXPECT_FALSE(HeaderIn(r.log[1]));
  SippResult q = stack.Sipp("register_query.xml", "frank", 0);
  ASSERT_EQ(q.exit_code, 0) << Dump(q);
  EXPECT_EQ(::turnbroker::testing::SippLogValue(q.log.at(0), "Contact"), "")
      << "the refused REGISTER left a binding";
  // The agent comes back: the next REGISTER gets its credential.
  stack.StartAgent();
  SippResult again = stack.Sipp("register.xml", "frank", 600);
  ASSERT_EQ(again.exit_code, 0) << Dump(again);
  EXPECT_TRUE(HeaderIn(again.log.at(0)));
}

TEST_F(PcscfKamailioTest, BrokerDownMeans503FromTheAgentAndNoCredentialForTheWic) {
  PcscfStack stack(dir_);
  stack.broker().process().Kill();
  SippResult r = stack.Sipp("register.xml", "grace", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  EXPECT_FALSE(HeaderIn(r.log.at(0))) << "a credential the TURN side never got";
  EXPECT_NE(stack.kamailio().Log().find("agent answered 503"), std::string::npos)
      << stack.kamailio().Log();
}

TEST_F(PcscfKamailioTest, BrokerDownUnderRefusePolicyRefusesTheRegister) {
  PcscfStack stack(dir_, WithDefines({kRefuse}));
  stack.broker().process().Kill();
  SippResult r = stack.Sipp("register_refused.xml", "heidi", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 2u) << Dump(r);
  EXPECT_FALSE(HeaderIn(r.log[1])) << "a credential the TURN side never got";
}

// Sends one REGISTER over UDP `times` times with the same branch (a UAC
// retransmitting); returns the number of answers read.
int SendRegister(int port, int times) {
  ::turnbroker::testing::SipUdpSocket sip;
  std::string msg = ::turnbroker::testing::RegisterRequest(
      sip, "ivan", "example.org", "sip:ivan@127.0.0.1:" + std::to_string(sip.local_port()), 600,
      "retrans-1");
  int answers = 0;
  for (int i = 0; i < times; ++i) {
    sip.SendTo(port, msg);
    if (!sip.Receive(std::chrono::seconds(2)).empty()) ++answers;
  }
  return answers;
}

TEST_F(PcscfKamailioTest, ARetransmittedRegisterDoesNotRepeatTheAgentCall) {
  // Hand-made REGISTERs carry no digest credentials: this test is about tm,
  // so the stack skips authentication (pcscf_kamailio_hostile_test checks it).
  PcscfStack stack(dir_, WithDefines({{"INSECURE_NO_AUTH", ""}}));
  EXPECT_EQ(SendRegister(stack.kamailio().port(), 3), 3) << "tm answers retransmissions";
  httplib::Client cli("127.0.0.1", stack.agent_port());
  auto m = cli.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(turnbroker::testing::PromtoolProblems(m->body), "") << m->body;
  EXPECT_NE(m->body.find("pcscf_turn_agent_requests_total{route=\"issue\",code=\"2xx\"} 1\n"),
            std::string::npos)
      << m->body;
}

// TCP sockets on 127.0.0.1 whose remote port is `port`, by state (from
// /proc/net/tcp: "01" established, "06" TIME_WAIT).
int SocketsTo(int port, const std::string& state) {
  std::ifstream in("/proc/net/tcp");
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  int n = 0;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, st;
    fields >> slot >> local >> remote >> st;
    if (remote.size() > 5 && remote.substr(remote.size() - 5) == want && st == state) ++n;
  }
  return n;
}

TEST_F(PcscfKamailioTest, KamailioReusesItsConnectionsToTheAgent) {
  // register_bench.xml registers a new user at every call, unauthenticated
  // (as bench/pcscf_register_bench does).
  PcscfStack stack(dir_, WithDefines({{"INSECURE_NO_AUTH", ""}}));
  ::turnbroker::testing::SippOptions s;
  s.scenario = SippScenario("register_bench.xml");
  s.target = stack.kamailio().address();
  s.keys = {{"user", "reuse"}, {"domain", "example.org"}, {"expires", "600"}};
  s.calls = 40;
  s.extra = {"-r", "100"};
  auto r = ::turnbroker::testing::RunSipp(dir_, s);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // keep_connections: one connection per SIP worker (WORKERS=2 here), not
  // one per REGISTER (an httpcon defined above keep_connections would not).
  EXPECT_LE(SocketsTo(stack.agent_port(), "01"), 2 + 1);  // + an OPTIONS-time one
  EXPECT_EQ(SocketsTo(stack.agent_port(), "06"), 0) << "connections were closed and reopened";
}

}  // namespace
}  // namespace turnbroker::pcscf::testing
