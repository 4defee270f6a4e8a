// End to end on the eP-CSCF side's asynchronous path: sipp -> Kamailio
// (reference config with WITH_ASYNC_AGENT: tm suspends the REGISTER, evapi
// carries the question) -> pcscf-turn-agent (--kamailio-evapi) ->
// turn-broker, all real (docs/pcscf-plugin.md, "The asynchronous path").
// The synchronous path is pcscf_kamailio_test.cc.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <thread>

#include "pcscf_stack.h"

namespace turnbroker::pcscf::testing {
namespace {

using ::turnbroker::testing::RegisterRequest;
using ::turnbroker::testing::SippResult;
using ::turnbroker::testing::SipUdpSocket;
using ::turnbroker::testing::TempDir;

PcscfStackOptions Async(std::vector<std::pair<std::string, std::string>> defines = {},
                        std::vector<std::string> agent_args = {}, bool start_agent = true) {
  PcscfStackOptions o;
  o.async = true;
  o.kamailio_defines = std::move(defines);
  o.agent_args = std::move(agent_args);
  o.start_agent = start_agent;
  return o;
}

// The agent's counter of evapi messages with this result, from /metrics.
int EvapiMessages(PcscfStack& stack, const std::string& result) {
  httplib::Client http("127.0.0.1", stack.agent_port());
  auto r = http.Get("/metrics");
  if (!r) return -1;
  const std::string key = "pcscf_turn_evapi_messages_total{result=\"" + result + "\"} ";
  size_t at = r->body.find(key);
  return at == std::string::npos ? -1 : std::stoi(r->body.substr(at + key.size()));
}

class PcscfKamailioAsyncTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(PcscfKamailioAsyncTest, The200OkCarriesACredentialTheBrokerHolds) {
  PcscfStack stack(dir_, Async());
  SippResult r = stack.Sipp("register.xml", "alice", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r) << stack.kamailio().Log();
  auto h = HeaderIn(r.log.at(0));
  ASSERT_TRUE(h) << Dump(r) << stack.kamailio().Log();
  auto stored = stack.view().Get(h->username);
  ASSERT_TRUE(stored) << "the 200 OK left before the broker had it";
  EXPECT_EQ(stored->subscriber(), "sip:alice@example.org");
  EXPECT_EQ(EvapiMessages(stack, "answered"), 1) << "asked over evapi, not HTTP";
  // The resumed transaction's 200 OK lists the binding, as registrar's does.
  SippResult q = stack.Sipp("register_query.xml", "alice", 0);
  ASSERT_EQ(q.exit_code, 0) << Dump(q);
  EXPECT_NE(::turnbroker::testing::SippLogValue(q.log.at(0), "Contact"), "");
}

TEST_F(PcscfKamailioAsyncTest, ReRegisterReusesAndDeRegisterRevokes) {
  PcscfStack stack(dir_, Async({}, {"--reuse-min-remaining", "60"}));
  SippResult r = stack.Sipp("register_lifecycle.xml", "bob", 600, {"-d", "100"});
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 3u) << Dump(r);
  auto first = HeaderIn(r.log[0]);
  auto second = HeaderIn(r.log[1]);
  ASSERT_TRUE(first && second) << Dump(r);
  EXPECT_EQ(second->username, first->username);
  EXPECT_FALSE(HeaderIn(r.log[2])) << "a de-REGISTER's 200 carries no credential";
  // Handed to the agent without waiting: revoked soon after the 200 OK.
  EXPECT_TRUE(WaitFor([&] { return !stack.view().IsLive(first->username); }));
  EXPECT_EQ(EvapiMessages(stack, "revoke"), 1);
}

TEST_F(PcscfKamailioAsyncTest, AWaitForTheBrokerHoldsNoSipWorker) {
  // One SIP worker. The broker is frozen, so the agent waits up to its
  // --publish-timeout for it; meanwhile that worker answers other requests.
  PcscfStack stack(
      dir_, Async({{"INSECURE_NO_AUTH", ""}, {"WORKERS", "1"}, {"AGENT_ASYNC_TIMEOUT", "5000"}},
                  {"--publish-timeout", "4", "--status-interval", "0"}));
  {
    // The agent's first REGISTER opens its connection to the broker.
    SipUdpSocket warm;
    warm.SendTo(
        stack.kamailio().port(),
        RegisterRequest(warm, "warm", "example.org",
                        "sip:warm@127.0.0.1:" + std::to_string(warm.local_port()), 600, "async-0"));
    std::string reply = warm.Receive(std::chrono::seconds(5));
    ASSERT_NE(reply.find("TURN-Credential: "), std::string::npos) << reply;
  }
  stack.broker().process().Signal(SIGSTOP);
  SipUdpSocket registering;
  registering.SendTo(
      stack.kamailio().port(),
      RegisterRequest(registering, "ivan", "example.org",
                      "sip:ivan@127.0.0.1:" + std::to_string(registering.local_port()), 600,
                      "async-1"));
  // The REGISTER reaches the agent, which now waits for the broker.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(stack.kamailio().WaitReady(std::chrono::milliseconds(1'000)))
      << "the only SIP worker is held while the REGISTER waits";
  EXPECT_EQ(registering.Receive(std::chrono::milliseconds(1)), "")
      << "answered before the broker: " << stack.agent()->process().Output();
  stack.broker().process().Signal(SIGCONT);
  std::string reply = registering.Receive(std::chrono::seconds(6));
  EXPECT_EQ(reply.rfind("SIP/2.0 200", 0), 0u) << reply << stack.kamailio().Log();
  EXPECT_NE(reply.find("TURN-Credential: "), std::string::npos) << reply;
}

TEST_F(PcscfKamailioAsyncTest, NoAgentConnectedIsAnsweredAtOnceByThePolicy) {
  PcscfStack stack(dir_, Async({kRefuse}, {}, /*start_agent=*/false));
  SippResult r = stack.Sipp("register_refused.xml", "frank", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  EXPECT_EQ(::turnbroker::testing::SippLogValue(r.log.at(0), "Retry-After"), "5");
  EXPECT_NE(stack.kamailio().Log().find("no agent on the evapi socket"), std::string::npos);
  SippResult q = stack.Sipp("register_query.xml", "frank", 0);
  ASSERT_EQ(q.exit_code, 0) << Dump(q);
  EXPECT_EQ(::turnbroker::testing::SippLogValue(q.log.at(0), "Contact"), "")
      << "the refused REGISTER left a binding";
  // The agent comes and connects: the next REGISTER gets its credential.
  stack.StartAgent();
  ASSERT_TRUE(stack.WaitForAgentConnected()) << stack.kamailio().Log();
  SippResult again = stack.Sipp("register.xml", "frank", 600);
  ASSERT_EQ(again.exit_code, 0) << Dump(again);
  EXPECT_TRUE(HeaderIn(again.log.at(0))) << Dump(again);
}

TEST_F(PcscfKamailioAsyncTest, AnAgentThatNeverAnswersEndsByThePolicyNotAHang) {
  PcscfStack stack(dir_, Async({{"AGENT_ASYNC_TIMEOUT", "700"}}));
  stack.agent()->process().Signal(SIGSTOP);
  SippResult r = stack.Sipp("register.xml", "grace", 600);
  stack.agent()->process().Signal(SIGCONT);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  EXPECT_FALSE(HeaderIn(r.log.at(0))) << "register policy: 200 without a credential";
  EXPECT_NE(stack.kamailio().Log().find("the agent did not answer in time"), std::string::npos)
      << stack.kamailio().Log();
}

TEST_F(PcscfKamailioAsyncTest, AnAgentRestartIsSeenAndServedAgain) {
  PcscfStack stack(dir_, Async());
  ASSERT_EQ(stack.Sipp("register.xml", "heidi", 600).exit_code, 0);
  stack.agent()->process().Kill();
  ASSERT_TRUE(WaitFor(
      [&] { return stack.kamailio().Log().find("TURN agent disconnected") != std::string::npos; }));
  SippResult none = stack.Sipp("register.xml", "heidi", 600);
  ASSERT_EQ(none.exit_code, 0) << Dump(none);
  EXPECT_NE(stack.kamailio().Log().find("no agent on the evapi socket"), std::string::npos);
  stack.StartAgent();
  ASSERT_TRUE(stack.WaitForAgentConnected(2)) << stack.kamailio().Log();
  SippResult r = stack.Sipp("register.xml", "heidi", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  EXPECT_TRUE(HeaderIn(r.log.at(0))) << Dump(r);
}

}  // namespace
}  // namespace turnbroker::pcscf::testing
