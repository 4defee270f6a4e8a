// End to end on the eP-CSCF side in shared-secret mode (approach 1,
// docs/approach1.md): sipp -> Kamailio (the reference configuration,
// unchanged) -> pcscf-turn-agent --mode=shared-secret, which watches the
// realm's secrets from a real turn-broker. The TURN-Credential header has the
// same shape as in approach 2; its username is "<expiry>:<opaque id>" and its
// password base64(HMAC-SHA1(secret, username)).
#include <gtest/gtest.h>
#include <httplib.h>

#include <regex>

#include "pcscf_stack.h"
#include "promtool.h"
#include "turnbroker/pcscf/secret_book.h"

namespace turnbroker::pcscf::testing {
namespace {

using ::turnbroker::testing::SippResult;
using ::turnbroker::testing::TempDir;

const std::string kSecret1 = "kamailio-e2e-secret-one-0123456789abcdefgh";
const std::string kSecret2 = "kamailio-e2e-secret-two-0123456789abcdefgh";
PcscfStackOptions SharedSecret(std::vector<std::string> extra_args = {},
                               std::vector<std::pair<std::string, std::string>> defines = {}) {
  PcscfStackOptions o;
  o.agent_args = {"--mode", "shared-secret"};
  o.agent_args.insert(o.agent_args.end(), extra_args.begin(), extra_args.end());
  o.kamailio_defines = std::move(defines);
  return o;
}

bool AgentReady(PcscfStack& stack) {
  httplib::Client cli("127.0.0.1", stack.agent_port());
  auto r = cli.Get("/healthz");
  return r && r->status == 200;
}

// Stages and activates `id` and waits until the agent has it.
void Activate(PcscfStack& stack, const std::string& id, const std::string& bytes) {
  grpc::Status added = stack.view().AddSecret("example.org", id, bytes);
  ASSERT_TRUE(added.ok()) << added.error_message();
  grpc::Status activated = stack.view().ActivateSecret("example.org", id);
  ASSERT_TRUE(activated.ok()) << activated.error_message();
  ASSERT_TRUE(WaitFor([&] { return AgentReady(stack); }));
}

void ExpectApproachOne(const TurnCredentialHeader& h, const std::string& secret,
                       const std::string& user) {
  static const std::regex kForm("([0-9]+):[A-Za-z0-9_-]{22}");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(h.username, m, kForm)) << h.username;
  EXPECT_EQ(std::stoll(m[1].str()), h.expires_at_s);
  EXPECT_EQ(h.username.find(user), std::string::npos) << "never the IMPU";
  EXPECT_EQ(h.password, TurnRestPassword(secret, h.username));
}

class PcscfKamailioSharedSecretTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(PcscfKamailioSharedSecretTest, The200OkCarriesAnApproachOneCredential) {
  PcscfStack stack(dir_, SharedSecret());
  Activate(stack, "s1", kSecret1);
  SippResult r = stack.Sipp("register.xml", "alice", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 1u) << Dump(r);
  auto h = HeaderIn(r.log[0]);
  ASSERT_TRUE(h) << Dump(r) << stack.kamailio().Log();
  ExpectApproachOne(*h, kSecret1, "alice");
  EXPECT_EQ(h->urls, std::vector<std::string>{"turn:127.0.0.1:3478?transport=udp"});
  EXPECT_GE(h->ttl_s, 3590);  // TURN_TTL of the reference config
  EXPECT_FALSE(stack.view().IsLive(h->username)) << "nothing published per REGISTER";
  EXPECT_EQ(stack.view().Status()->live_credentials(), 0u);
  httplib::Client cli("127.0.0.1", stack.agent_port());
  auto m = cli.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(turnbroker::testing::PromtoolProblems(m->body), "") << m->body;
  EXPECT_NE(m->body.find("pcscf_turn_shared_secret_mints_total{secret=\"s1\"} 1\n"),
            std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("pcscf_turn_credential_mode{mode=\"shared-secret\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(m->body.find(kSecret1), std::string::npos);
}

TEST_F(PcscfKamailioSharedSecretTest, ReRegisterReusesAndDeRegisterRevokesAtTheBroker) {
  PcscfStack stack(dir_, SharedSecret({"--reuse-min-remaining", "60"}));
  Activate(stack, "s1", kSecret1);
  const uint64_t revision_before = stack.view().Status()->revision();
  SippResult r = stack.Sipp("register_lifecycle.xml", "bob", 600, {"-d", "100"});
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 3u) << Dump(r);
  auto first = HeaderIn(r.log[0]);
  auto second = HeaderIn(r.log[1]);
  ASSERT_TRUE(first && second) << Dump(r);
  ExpectApproachOne(*first, kSecret1, "bob");
  EXPECT_EQ(second->username, first->username) << "policy: reuse while a minute is left";
  EXPECT_FALSE(HeaderIn(r.log[2]));
  // The de-REGISTER revoked the username: the broker recorded a revocation
  // event (TURN syncs end its live allocations). The minter's own path, with
  // its tombstone, is in shared_secret_broker_test (mTLS).
  EXPECT_GT(stack.view().Status()->revision(), revision_before);
}

TEST_F(PcscfKamailioSharedSecretTest, RegistrationExpiryRevokesAtTheBroker) {
  PcscfStack stack(dir_, SharedSecret({}, {{"REG_MIN_EXPIRES", "1"}, {"UL_TIMER_INTERVAL", "1"}}));
  Activate(stack, "s1", kSecret1);
  SippResult r = stack.Sipp("register.xml", "frank", 2);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_TRUE(HeaderIn(r.log.at(0))) << Dump(r);
  const uint64_t revision = stack.view().Status()->revision();
  EXPECT_TRUE(WaitFor([&] { return stack.view().Status()->revision() > revision; }))
      << "the expired registration's username was not revoked\n"
      << stack.kamailio().Log();
}

TEST_F(PcscfKamailioSharedSecretTest, AfterAnActivationTheNextRegisterUsesTheNewSecret) {
  PcscfStack stack(dir_, SharedSecret());
  Activate(stack, "s1", kSecret1);
  SippResult r = stack.Sipp("register.xml", "carol", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  auto before = HeaderIn(r.log.at(0));
  ASSERT_TRUE(before) << Dump(r);
  ExpectApproachOne(*before, kSecret1, "carol");

  ASSERT_TRUE(stack.view().AddSecret("example.org", "s2", kSecret2).ok());
  ASSERT_TRUE(stack.view().ActivateSecret("example.org", "s2").ok());
  std::optional<TurnCredentialHeader> after;
  ASSERT_TRUE(WaitFor([&] {
    SippResult again = stack.Sipp("register.xml", "carol", 600);
    if (again.exit_code != 0 || again.log.empty()) return false;
    after = HeaderIn(again.log[0]);
    return after && after->password == TurnRestPassword(kSecret2, after->username);
  })) << "the agent never minted with the activated secret";
  EXPECT_NE(after->username, before->username) << "re-REGISTER rotated to the new secret";
}

TEST_F(PcscfKamailioSharedSecretTest, BrokerDownAfterTheSecretArrivedStillGivesCredentials) {
  PcscfStack stack(dir_, SharedSecret());
  Activate(stack, "s1", kSecret1);
  stack.broker().process().Kill();
  SippResult r = stack.Sipp("register.xml", "dave", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  auto h = HeaderIn(r.log.at(0));
  ASSERT_TRUE(h) << "an agent with the active secret keeps minting\n"
                 << Dump(r) << stack.kamailio().Log();
  ExpectApproachOne(*h, kSecret1, "dave");
}

TEST_F(PcscfKamailioSharedSecretTest, NoActiveSecretUnderRefusePolicyRefusesTheRegister) {
  PcscfStack stack(dir_, SharedSecret({}, {kRefuse}));
  // A staged secret is not minted with.
  ASSERT_TRUE(stack.view().AddSecret("example.org", "s1", kSecret1).ok());
  SippResult r = stack.Sipp("register_refused.xml", "erin", 600);
  ASSERT_EQ(r.exit_code, 0) << Dump(r);
  ASSERT_EQ(r.log.size(), 2u) << Dump(r);
  EXPECT_FALSE(HeaderIn(r.log[1]));
  EXPECT_NE(stack.kamailio().Log().find("agent answered 503"), std::string::npos)
      << stack.kamailio().Log();
}

}  // namespace
}  // namespace turnbroker::pcscf::testing
