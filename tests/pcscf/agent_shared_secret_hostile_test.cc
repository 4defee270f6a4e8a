// pcscf-turn-agent --mode=shared-secret as built, against a real
// turn-broker, under hostile and careless use: the shared secret's bytes
// never appear in the agent's log (at debug level), its /metrics, /healthz or
// any HTTP answer, whatever is asked; crafted approach-1 usernames in revoke
// and refresh requests get JSON errors and take nothing down.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "agent_process.h"
#include "broker_process.h"
#include "broker_view.h"
#include "wait_for.h"

namespace turnbroker::pcscf {
namespace {

using json = nlohmann::json;
using testing::AgentProcess;
using testing::BrokerView;
using testing::WaitFor;
using ::turnbroker::testing::BrokerProcess;
using ::turnbroker::testing::TempDir;

const std::string kSecret = "hostile-test-secret-DO-NOT-LOG-0123456789ab";
const std::string kSecret2 = "hostile-test-secret-TWO-NOT-LOGGED-987654321";

TEST(AgentSharedSecretHostileTest, SecretBytesNeverLeaveTheAgent) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  BrokerView view(broker.address());
  AgentProcess agent(dir, broker.address(), {"--mode", "shared-secret", "--overlap", "0"});
  ASSERT_TRUE(view.AddSecret("example.org", "h1", kSecret).ok());
  ASSERT_TRUE(view.ActivateSecret("example.org", "h1").ok());
  httplib::Client cli("127.0.0.1", agent.port());
  cli.set_read_timeout(5, 0);
  ASSERT_TRUE(WaitFor([&] {
    auto h = cli.Get("/healthz");
    return h && h->status == 200;
  }));

  std::string answers;
  std::vector<std::string> passwords;
  auto keep = [&](const httplib::Result& r) {
    if (r) answers += r->body + "\n";
  };
  for (int i = 0; i < 5; ++i) {
    auto r = cli.Post("/v1/credentials",
                      json({{"impu", "sip:u" + std::to_string(i) + "@example.org"}}).dump(),
                      "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    keep(r);
    json j = json::parse(r->body);
    passwords.push_back(j["password"]);
    auto refreshed =
        cli.Post(("/v1/credentials/" + j["username"].get<std::string>() + "/refresh").c_str(), "",
                 "application/json");
    ASSERT_TRUE(refreshed);
    EXPECT_EQ(refreshed->status, 201) << refreshed->body;
    keep(refreshed);
    passwords.push_back(json::parse(refreshed->body)["password"]);
  }
  // A rotation, so the log has both secrets' ids and states to mention.
  ASSERT_TRUE(view.AddSecret("example.org", "h2", kSecret2).ok());
  ASSERT_TRUE(view.ActivateSecret("example.org", "h2").ok());
  ASSERT_TRUE(WaitFor([&] {
    auto m = cli.Get("/metrics");
    return m &&
           m->body.find("pcscf_turn_shared_secrets{state=\"superseded\"} 1") != std::string::npos;
  }));
  keep(cli.Post("/v1/credentials", R"({"impu":"sip:u0@example.org"})", "application/json"));
  keep(cli.Post("/v1/credentials/revoke", R"({"impu":"sip:u1@example.org"})", "application/json"));
  keep(cli.Get("/metrics"));
  keep(cli.Get("/healthz"));
  // The broker away and back: reconnects are logged.
  broker.Restart();
  ASSERT_TRUE(WaitFor([&] {
    auto h = cli.Get("/healthz");
    return h && h->status == 200 && h->body.find("\"reachable\"") != std::string::npos;
  }));
  keep(cli.Get("/healthz"));

  agent.Stop();
  const std::string log = agent.process().Output();
  ASSERT_NE(log.find("minting with shared secret"), std::string::npos) << log;
  EXPECT_EQ(log.find(kSecret), std::string::npos) << "the secret is in the log";
  EXPECT_EQ(log.find(kSecret2), std::string::npos) << "the second secret is in the log";
  EXPECT_EQ(answers.find(kSecret), std::string::npos) << answers;
  EXPECT_EQ(answers.find(kSecret2), std::string::npos) << answers;
  for (const auto& p : passwords) {
    EXPECT_EQ(log.find(p), std::string::npos) << "a password is in the log: " << p;
  }
}

TEST(AgentSharedSecretHostileTest, CraftedUsernamesGetJsonErrorsAndTakeNothingDown) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  BrokerView view(broker.address());
  AgentProcess agent(dir, broker.address(), {"--mode", "shared-secret"});
  ASSERT_TRUE(view.AddSecret("example.org", "h1", kSecret).ok());
  ASSERT_TRUE(view.ActivateSecret("example.org", "h1").ok());
  httplib::Client cli("127.0.0.1", agent.port());
  cli.set_read_timeout(5, 0);
  ASSERT_TRUE(WaitFor([&] {
    auto h = cli.Get("/healthz");
    return h && h->status == 200;
  }));
  const std::string big(600, '9');
  for (const std::string& username :
       {std::string("99999999999999999999:x"), std::string(":"), std::string("1:"), big + ":abc",
        std::string("1700000000:a;b"), std::string("1700000000:a,b")}) {
    auto refresh =
        cli.Post(("/v1/credentials/" + username + "/refresh").c_str(), "", "application/json");
    ASSERT_TRUE(refresh) << username;
    EXPECT_TRUE(refresh->status == 400 || refresh->status == 404)
        << username << " " << refresh->status << " " << refresh->body;
    EXPECT_TRUE(json::parse(refresh->body, nullptr, false).contains("error")) << refresh->body;
    auto revoke = cli.Post("/v1/credentials/revoke", json({{"username", username}}).dump(),
                           "application/json");
    ASSERT_TRUE(revoke) << username;
    EXPECT_NE(revoke->status, 500) << username << " " << revoke->body;
    if (revoke->status != 204) {
      EXPECT_TRUE(json::parse(revoke->body, nullptr, false).contains("error")) << revoke->body;
    }
  }
  auto ok = cli.Post("/v1/credentials", R"({"impu":"sip:alice@example.org"})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 201) << ok->body;
  EXPECT_TRUE(agent.process().running());
}

}  // namespace
}  // namespace turnbroker::pcscf
