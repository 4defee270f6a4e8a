// The reference Kamailio configuration against REGISTERs that are not who
// they say (issue 14, docs/security.md): the credential step runs only after
// digest authentication as the AOR's own user, so an unauthenticated
// REGISTER, a wrong password or another user's credentials get no TURN
// credential and revoke nothing. Real sipp, Kamailio, agent and broker.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "pcscf_stack.h"

namespace turnbroker::pcscf::testing {
namespace {

using ::turnbroker::testing::RegisterRequest;
using ::turnbroker::testing::SippResult;
using ::turnbroker::testing::SipUdpSocket;
using ::turnbroker::testing::TempDir;

class PcscfKamailioHostileTest : public ::testing::Test {
 protected:
  // alice registers properly; returns her credential's username.
  std::string RegisterAlice(PcscfStack& stack) {
    SippResult r = stack.Sipp("register.xml", "alice", 600);
    EXPECT_EQ(r.exit_code, 0) << Dump(r);
    auto h = r.log.empty() ? std::nullopt : HeaderIn(r.log[0]);
    EXPECT_TRUE(h) << Dump(r);
    return h ? h->username : "";
  }
  TempDir dir_;
};

TEST_F(PcscfKamailioHostileTest, UnauthenticatedRegisterGetsNoCredentialAndRevokesNothing) {
  PcscfStack stack(dir_);
  std::string username = RegisterAlice(stack);
  ASSERT_FALSE(username.empty());

  SipUdpSocket sip;
  std::string contact = "sip:alice@127.0.0.1:" + std::to_string(sip.local_port());
  // A REGISTER as alice without credentials: challenged, nothing handed out
  // (the reuse policy would otherwise return alice's live credential).
  sip.SendTo(stack.kamailio().port(),
             RegisterRequest(sip, "alice", "example.org", contact, 600, "mallory-1"));
  std::string reply = sip.Receive(std::chrono::seconds(3));
  EXPECT_EQ(reply.rfind("SIP/2.0 401", 0), 0u) << reply;
  EXPECT_NE(reply.find("WWW-Authenticate: Digest"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("TURN-Credential"), std::string::npos) << reply;

  // "Contact: *" with Expires: 0 without credentials: challenged, and
  // alice's credential stays live.
  sip.SendTo(stack.kamailio().port(),
             RegisterRequest(sip, "alice", "example.org", "*", 0, "mallory-2"));
  reply = sip.Receive(std::chrono::seconds(3));
  EXPECT_EQ(reply.rfind("SIP/2.0 401", 0), 0u) << reply;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(stack.view().IsLive(username)) << "an unauthenticated de-REGISTER revoked it";
  EXPECT_EQ(stack.view().CountLive("sip:alice@example.org"), 1);

  // Still registered: her own query (authenticated) lists the binding.
  SippResult q = stack.Sipp("register_query.xml", "alice", 0);
  ASSERT_EQ(q.exit_code, 0) << Dump(q);
  EXPECT_NE(::turnbroker::testing::SippLogValue(q.log.at(0), "Contact"), "");
}

TEST_F(PcscfKamailioHostileTest, WrongPasswordGetsNoCredentialAndRevokesNothing) {
  PcscfStack stack(dir_);
  std::string username = RegisterAlice(stack);
  ASSERT_FALSE(username.empty());

  const std::vector<std::string> wrong = {"-au", "alice", "-ap", "not-her-password"};
  SippResult r = stack.Sipp("register.xml", "alice", 600, wrong);
  EXPECT_NE(r.exit_code, 0) << "a wrong password was accepted:\n" << Dump(r);
  EXPECT_TRUE(r.log.empty()) << "a 200 OK came back:\n" << Dump(r);

  SippResult d = stack.Sipp("deregister.xml", "alice", 0, wrong);
  EXPECT_NE(d.exit_code, 0) << Dump(d);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(stack.view().IsLive(username)) << "a wrong password revoked the credential";
  EXPECT_NE(stack.kamailio().Log().find("authentication failed"), std::string::npos)
      << stack.kamailio().Log();

  // Her own password still works, and her de-REGISTER does revoke.
  SippResult own = stack.Sipp("deregister.xml", "alice", 0);
  ASSERT_EQ(own.exit_code, 0) << Dump(own);
  EXPECT_TRUE(WaitFor([&] { return !stack.view().IsLive(username); }));
}

TEST_F(PcscfKamailioHostileTest, AnotherUsersCredentialsCannotRegisterOrRevokeTheAor) {
  PcscfStack stack(dir_);
  std::string username = RegisterAlice(stack);
  ASSERT_FALSE(username.empty());
  // bob with his own valid password, for alice's AOR: 403.
  const std::vector<std::string> as_bob = {"-au", "bob", "-ap", SipPassword("bob")};
  SippResult r = stack.Sipp("register.xml", "alice", 600, as_bob);
  EXPECT_NE(r.exit_code, 0) << Dump(r);
  EXPECT_TRUE(r.log.empty()) << Dump(r);
  SippResult d = stack.Sipp("deregister.xml", "alice", 0, as_bob);
  EXPECT_NE(d.exit_code, 0) << Dump(d);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(stack.view().IsLive(username));
  EXPECT_EQ(stack.view().CountLive("sip:alice@example.org"), 1);
  EXPECT_NE(stack.kamailio().Log().find("not the AOR's user"), std::string::npos)
      << stack.kamailio().Log();
}

}  // namespace
}  // namespace turnbroker::pcscf::testing
