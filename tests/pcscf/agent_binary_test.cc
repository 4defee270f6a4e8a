// pcscf-turn-agent's command line: documented flags, environment variables,
// refusals of a broken configuration, clean exit.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "broker_process.h"
#include "process.h"

namespace turnbroker::pcscf {
namespace {

using ::turnbroker::testing::BrokerProcess;
using ::turnbroker::testing::BuiltBinary;
using ::turnbroker::testing::FreePort;
using ::turnbroker::testing::Subprocess;
using ::turnbroker::testing::TempDir;

std::string Agent() { return BuiltBinary("pcscf-turn-agent"); }

TEST(AgentBinaryTest, HelpDocumentsEveryFlagWithItsEnvironmentVariable) {
  auto r = ::turnbroker::testing::Run({Agent(), "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* flag : {"--broker",
                           "--tls-cert",
                           "--tls-key",
                           "--tls-ca",
                           "--tls-server-name",
                           "--listen",
                           "--allow-remote",
                           "--realm",
                           "--turn-uri",
                           "--scope",
                           "--issuer",
                           "--ttl",
                           "--min-ttl",
                           "--max-ttl",
                           "--no-reuse",
                           "--reuse-min-remaining",
                           "--overlap",
                           "--publish-timeout",
                           "--revoke-timeout",
                           "--status-interval",
                           "--max-batch",
                           "--max-in-flight",
                           "--http-threads",
                           "--http-idle-timeout",
                           "--http-request-timeout",
                           "--http-max-connections",
                           "--http-max-connections-per-peer",
                           "--log-level",
                           "--log-format",
                           "--version"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
  for (const char* env :
       {"PCSCF_TURN_AGENT_BROKER", "PCSCF_TURN_AGENT_LISTEN", "PCSCF_TURN_AGENT_REALM",
        "PCSCF_TURN_AGENT_TURN_URI", "PCSCF_TURN_AGENT_TTL", "PCSCF_TURN_AGENT_NO_REUSE"}) {
    EXPECT_NE(r.output.find(env), std::string::npos) << env;
  }
}

TEST(AgentBinaryTest, RefusesABrokenConfigurationNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--turn-uri", "turn:a"}, "--realm is required"},
      {{"--realm", "example.org"}, "--turn-uri is required"},
      {{"--realm", "bad realm", "--turn-uri", "turn:a"}, "--realm: "},
      {{"--realm", "example.org", "--turn-uri", "http://a"}, "--turn-uri[0]: "},
      {{"--realm", "example.org", "--turn-uri", "turn:a", "--ttl", "10"}, "--ttl: "},
      {{"--realm", "example.org", "--turn-uri", "turn:a", "--listen", "0.0.0.0:8480"},
       "not a loopback address"},
      {{"--realm", "example.org", "--turn-uri", "turn:a", "--listen", "nonsense"}, "--listen"},
      {{"--realm", "example.org", "--turn-uri", "turn:a", "--log-level", "loud"}, "--log-level"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {Agent()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = ::turnbroker::testing::Run(argv, std::chrono::seconds(10));
    EXPECT_NE(r.exit_code, 0) << c.says;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << "want '" << c.says << "' in:\n"
                                                        << r.output;
  }
}

TEST(AgentBinaryTest, TakesItsSettingsFromTheEnvironmentAndExitsCleanlyOnSigterm) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  int port = FreePort();
  Subprocess agent(
      {Agent()}, dir.File("agent.log"),
      {"PCSCF_TURN_AGENT_BROKER=" + broker.address(),
       "PCSCF_TURN_AGENT_LISTEN=127.0.0.1:" + std::to_string(port),
       "PCSCF_TURN_AGENT_REALM=env.example.org",
       "PCSCF_TURN_AGENT_TURN_URI=turn:a:3478,turns:b:5349", "PCSCF_TURN_AGENT_TTL=120"});
  ASSERT_TRUE(agent.WaitForOutput("pcscf-turn-agent listening on", std::chrono::seconds(10)))
      << agent.Output();
  httplib::Client cli("127.0.0.1", port);
  auto r = cli.Post("/v1/credentials", R"({"impu":"sip:env@example.org"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["realm"], "env.example.org");
  EXPECT_LE(j["ttl"].get<int>(), 120);
  EXPECT_EQ(j["uris"].size(), 2u);
  agent.Signal(SIGTERM);
  auto st = agent.Wait(std::chrono::seconds(5));
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
  EXPECT_EQ(agent.Output().find(j["password"].get<std::string>()), std::string::npos)
      << "a password in the log";
}

}  // namespace
}  // namespace turnbroker::pcscf
