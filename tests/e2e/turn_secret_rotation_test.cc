// Rotation under load (issue 17, docs/approach1.md "Rotation"): 20 TURN
// clients allocate continuously, each allocation with a fresh credential
// from pcscf-turn-agent --mode=shared-secret (as a re-REGISTER would get),
// while a new secret is staged, activated (the broker allows it once the
// sync acknowledged) and the old one retired (after the credentials' longest
// lifetime, a short --max-ttl here). No Allocate may be refused, and every
// credential asked for after the activation must be made with the new
// secret. All parts are real: redis-server, coturn --use-auth-secret,
// turn-broker, turn-credential-sync, pcscf-turn-agent, turnutils_uclient.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent_process.h"
#include "turn_secret_farm.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;
using namespace turnbroker::testing;
using namespace std::chrono_literals;
using turnbroker::pcscf::testing::AgentProcess;

// The credentials' longest lifetime (the broker's --max-ttl, the agent's
// --ttl): the old secret can be retired this long after the new one is
// active.
constexpr int kMaxTtlS = 6;
constexpr int kClients = 20;

int64_t NowMs() { return Clock::System()->NowMs(); }

// One credential asked of the agent and the Allocate made with it.
struct Attempt {
  int64_t asked_at_ms = 0;
  int64_t answered_at_ms = 0;
  std::string username;
  std::string password;
  TurnClient::Outcome outcome = TurnClient::Outcome::kNoAnswer;
};

class TurnSecretRotationE2eTest : public ::testing::Test {
 protected:
  TurnSecretRotationE2eTest() : farm_({"--max-ttl", std::to_string(kMaxTtlS), "--min-ttl", "1"}) {}

  // Runs `verb` until the broker accepts it (it refuses activation before
  // every sync acknowledged, and retirement before the credentials'
  // lifetime); the time it was accepted, or 0.
  int64_t Until(std::vector<std::string> verb, std::chrono::seconds timeout) {
    int64_t at = 0;
    std::string last;
    WaitUntil(
        [&] {
          RunResult r = farm_.Ctl(verb);
          last = r.output;
          if (r.exit_code == 0) at = NowMs();
          return at != 0;
        },
        timeout);
    EXPECT_NE(at, 0) << verb[1] << " never accepted: " << last;
    return at;
  }

  // A credential from the agent's HTTP API, as Kamailio asks for one at
  // REGISTER; empty on failure.
  static std::pair<std::string, std::string> Mint(httplib::Client* http, const std::string& impu) {
    nlohmann::json body = {{"impu", impu}};
    auto res = http->Post("/v1/credentials", body.dump(), "application/json");
    if (!res || (res->status != 200 && res->status != 201)) return {};
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (!j.is_object() || !j.contains("username") || !j.contains("password")) return {};
    return {j["username"].get<std::string>(), j["password"].get<std::string>()};
  }

  SecretFarm farm_;
};

TEST_F(TurnSecretRotationE2eTest, TwentyClientsAreNeverRefusedWhileTheSecretRotates) {
  const std::string realm = SecretFarm::kRealm;
  const std::string old_secret = farm_.AddSecret("old");
  ASSERT_FALSE(old_secret.empty());
  ASSERT_NE(Until({"secret", "activate", "--realm", realm, "--id", "old"}, 10s), 0);

  AgentProcess agent(
      farm_.dir(), farm_.broker().address(),
      {"--mode", "shared-secret", "--realm", realm, "--turn-uri",
       "turn:127.0.0.1:" + std::to_string(farm_.coturn().port()) + "?transport=udp", "--ttl",
       std::to_string(kMaxTtlS), "--min-ttl", "1", "--max-ttl", std::to_string(kMaxTtlS)});
  {
    httplib::Client http("127.0.0.1", agent.port());
    ASSERT_TRUE(WaitUntil([&] { return !Mint(&http, "sip:probe@example.org").first.empty(); }, 10s))
        << agent.process().Output();
  }

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Attempt> attempts;  // guarded by mu
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client http("127.0.0.1", agent.port());
      http.set_keep_alive(true);
      for (int n = 0; !stop; ++n) {
        Attempt a;
        a.asked_at_ms = NowMs();
        std::tie(a.username, a.password) = Mint(
            &http, "sip:client" + std::to_string(c) + "-" + std::to_string(n) + "@example.org");
        a.answered_at_ms = NowMs();
        if (!a.username.empty()) {
          TurnClient client(farm_.dir(), farm_.coturn(), farm_.peer(), a.username, a.password);
          a.outcome = client.Wait(10s);
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          attempts.push_back(a);
        }
        std::this_thread::sleep_for(200ms);
      }
    });
  }
  auto asked_after = [&](int64_t at_ms) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(attempts.begin(), attempts.end(),
                         [&](const Attempt& a) { return a.asked_at_ms > at_ms; });
  };

  std::this_thread::sleep_for(2s);
  // Stage: every TURN node accepts both secrets.
  const int64_t staged_at = NowMs();
  const std::string new_secret = farm_.AddSecret("new");
  // Activate: the broker refuses until the sync has acknowledged the
  // staged revision (its grace, 60 s by default, is far longer than this).
  const int64_t activated_at = Until({"secret", "activate", "--realm", realm, "--id", "new"}, 20s);
  EXPECT_LT(activated_at - staged_at, 10'000) << "activated by the grace, not by acknowledgements";
  // Retire the old one once no credential minted with it can be live: the
  // broker refuses before kMaxTtlS after the activation.
  const int64_t retired_at = Until({"secret", "retire", "--realm", realm, "--id", "old"}, 30s);
  EXPECT_GE(retired_at - activated_at, kMaxTtlS * 1000 - 1000);
  ASSERT_TRUE(
      WaitUntil([&] { return farm_.SecretSet() == std::vector<std::string>{new_secret}; }, 5s));
  // Every client allocates again with the new secret alone.
  WaitUntil([&] { return asked_after(retired_at) >= 2 * kClients; }, 15s);
  stop = true;
  for (std::thread& t : clients) t.join();

  size_t allocated = 0, refused = 0, no_answer = 0, not_minted = 0, after_activation = 0,
         after_retirement = 0;
  for (const Attempt& a : attempts) {
    if (a.username.empty()) {
      ++not_minted;
      continue;
    }
    switch (a.outcome) {
      case TurnClient::Outcome::kAllocated:
        ++allocated;
        break;
      case TurnClient::Outcome::kRefused:
        ++refused;
        ADD_FAILURE() << "refused: " << a.username << " asked at " << a.asked_at_ms;
        break;
      case TurnClient::Outcome::kNoAnswer:
        ++no_answer;
        break;
    }
    // The agent learns of the activation through its Watch: a request sent
    // once that had time to arrive (500 ms) gets the new secret.
    if (a.asked_at_ms > activated_at + 500) {
      ++after_activation;
      EXPECT_EQ(a.password, RestPassword(new_secret, a.username))
          << a.username << " asked " << a.asked_at_ms - activated_at << " ms after activation";
    } else if (a.answered_at_ms < staged_at) {
      EXPECT_EQ(a.password, RestPassword(old_secret, a.username)) << a.username;
    }
    if (a.asked_at_ms > retired_at) ++after_retirement;
  }
  EXPECT_EQ(refused, 0u);
  EXPECT_EQ(no_answer, 0u) << "allocations without an answer in 10 s (a loaded machine?)";
  EXPECT_EQ(not_minted, 0u) << agent.process().Output().substr(0, 2000);
  EXPECT_GE(after_activation, static_cast<size_t>(kClients));
  EXPECT_GE(after_retirement, static_cast<size_t>(kClients));
  EXPECT_GT(allocated, 0u);
  RecordProperty("allocations", static_cast<int>(allocated));
  std::printf(
      "rotation under load: %zu allocations, %zu refused, %zu after activation, %zu after "
      "retirement; activated %lld ms after staging, retired %lld ms after activation\n",
      allocated, refused, after_activation, after_retirement,
      static_cast<long long>(activated_at - staged_at),
      static_cast<long long>(retired_at - activated_at));
}

}  // namespace
}  // namespace turnbroker::turn
