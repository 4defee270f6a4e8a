// The seed's flow with every real part, from a browser: the WIC page
// (examples/wic, JsSIP) in Debian's Chromium, driven by playwright-core,
// registers over SIP/WebSocket through Kamailio (the reference configuration
// with WITH_WEBSOCKET), which gets the credential from pcscf-turn-agent ->
// turn-broker -> turn-credential-sync -> coturn's Redis; Chromium gathers a
// relay candidate from an unmodified coturn with it. After de-REGISTER, and
// after expiry, coturn refuses the same credential (icecandidateerror 401).
// The same page against approach 1 (docs/approach1.md): the agent in
// --mode=shared-secret, coturn with --use-auth-secret, the sync in
// --auth-mode=shared-secret; the credential is "<expiry>:<opaque id>" /
// base64(HMAC-SHA1(secret, username)) and coturn relays with it.
//
// The C++ side starts the servers on free loopback ports; examples/wic/drive.js
// runs the page and prints what it did as JSON. The test installs what it
// needs: Chromium (scripts/setup.sh --with-browser) and the npm packages
// (examples/wic/install.sh: npm ci with the committed lockfile, into
// build/wic). It skips only where Chromium cannot be installed.
// Screenshots: build/test-artifacts/wic_*.png.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coturn.h"
#include "pcscf_stack.h"
#include "redis_server.h"
#include "sync_process.h"

namespace turnbroker::wic {
namespace {

using ::turnbroker::pcscf::testing::PcscfStack;
using ::turnbroker::pcscf::testing::PcscfStackOptions;
using ::turnbroker::pcscf::testing::SipPassword;
using ::turnbroker::testing::BuiltBinary;
using ::turnbroker::testing::CoturnOptions;
using ::turnbroker::testing::CoturnServer;
using ::turnbroker::testing::FreePort;
using ::turnbroker::testing::RedisServer;
using ::turnbroker::testing::RunResult;
using ::turnbroker::testing::Subprocess;
using ::turnbroker::testing::SyncProcess;
using ::turnbroker::testing::SyncProcessOptions;
using ::turnbroker::testing::TempDir;
using json = nlohmann::json;
using namespace std::chrono_literals;

const char kRealm[] = "example.org";
const char kCliPassword[] = "wic-e2e-cli";
const char kChromium[] = "/usr/bin/chromium";

std::string Tail(const std::string& s, size_t n = 3000) {
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

std::string ArtifactPath(const std::string& name) {
  std::string dir = std::string(TURNBROKER_BINARY_DIR) + "/test-artifacts";
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

// The whole stack for one test, on free loopback ports.
class WicStack {
 public:
  // turn_ttl_s: the credential lifetime Kamailio asks the agent for.
  // start_agent false: the agent's port stays closed (Kamailio's policy
  // then registers without a credential). shared_secret: approach 1 in
  // every part (the secret itself is added by ActivateSecret).
  WicStack(const TempDir& dir, int turn_ttl_s, bool start_agent = true, bool shared_secret = false)
      : redis_(dir),
        coturn_(dir, CoturnOptions{.realm = kRealm,
                                   .redis_port = redis_.port(),
                                   .cli_password = kCliPassword,
                                   .use_auth_secret = shared_secret}),
        ws_port_(FreePort()) {
    PcscfStackOptions o;
    o.start_agent = start_agent;
    o.agent_args = {"--realm", kRealm, "--turn-uri", TurnUri(), "--min-ttl", "1"};
    if (shared_secret) {
      o.agent_args.insert(o.agent_args.end(), {"--mode", "shared-secret"});
    }
    o.kamailio_defines = {{"WITH_WEBSOCKET", ""},
                          {"WS_LISTEN", "tcp:127.0.0.1:" + std::to_string(ws_port_)},
                          {"TURN_TTL", std::to_string(turn_ttl_s)}};
    pcscf_ = std::make_unique<PcscfStack>(dir, o);
    sync_ = std::make_unique<SyncProcess>(
        dir, redis_,
        SyncProcessOptions{
            .broker = pcscf_->broker().address(),
            .realm = kRealm,
            .name = "wic-e2e",
            .coturn_cli_port = coturn_.cli_port(),
            .coturn_cli_password = kCliPassword,
            .extra_args = shared_secret ? std::vector<std::string>{"--auth-mode", "shared-secret"}
                                        : std::vector<std::string>{}});
  }

  // Approach 1: stages and activates `bytes` at the broker, then waits until
  // coturn's Redis set holds it and the agent mints with it.
  bool ActivateSecret(const std::string& id, const std::string& bytes) {
    auto& view = pcscf_->view();
    if (!view.AddSecret(kRealm, id, bytes).ok()) return false;
    // The sync acknowledges the staged secret; activation waits for that.
    if (!view.ActivateSecret(kRealm, id).ok()) return false;
    const std::string set = std::string("turn/realm/") + kRealm + "/secret";
    return turnbroker::pcscf::testing::WaitFor([&] {
      turnbroker::RedisReply members = redis_.Command({"SMEMBERS", set});
      bool in_set = false;
      for (const auto& m : members.elements) in_set |= m.str == bytes;
      if (!in_set) return false;
      auto health = turnbroker::testing::Run(
          {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
           "http://127.0.0.1:" + std::to_string(pcscf_->agent_port()) + "/healthz"},
          std::chrono::seconds(5));
      return health.output == "200";
    });
  }

  std::string TurnUri() const {
    return "turn:127.0.0.1:" + std::to_string(coturn_.port()) + "?transport=udp";
  }
  std::string WsUrl() const { return "ws://127.0.0.1:" + std::to_string(ws_port_); }
  bool KeyInRedis(const std::string& username) {
    return redis_.Get(std::string("turn/realm/") + kRealm + "/user/" + username + "/key")
        .has_value();
  }
  // What every part logged, for failure messages.
  std::string Logs() {
    return "--- kamailio:\n" + Tail(pcscf_->kamailio().Log()) + "\n--- sync:\n" +
           Tail(sync_->process().Output()) + "\n--- turnserver:\n" +
           Tail(coturn_.process().Output());
  }

 private:
  RedisServer redis_;
  CoturnServer coturn_;
  int ws_port_;
  std::unique_ptr<PcscfStack> pcscf_;
  std::unique_ptr<SyncProcess> sync_;
};

class WicBrowserTest : public ::testing::Test {
 protected:
  // Once per run: Chromium (or the reason to skip) and the npm packages.
  static void SetUpTestSuite() {
    std::string root = TURNBROKER_SOURCE_DIR;
    if (access(kChromium, X_OK) != 0 || !HasCommand("node") || !HasCommand("npm")) {
      RunResult setup =
          turnbroker::testing::Run({root + "/scripts/setup.sh", "--with-browser"}, 180s);
      if (access(kChromium, X_OK) != 0) {
        skip_reason_ = std::string("Chromium cannot be installed on this machine (") + kChromium +
                       " missing after scripts/setup.sh --with-browser):\n" +
                       Tail(setup.output, 1500);
        return;
      }
    }
    RunResult install = turnbroker::testing::Run(
        {root + "/examples/wic/install.sh", std::string(TURNBROKER_BINARY_DIR) + "/wic"}, 90s);
    if (install.exit_code != 0) {
      install_error_ = "examples/wic/install.sh (npm ci) failed:\n" + Tail(install.output);
      return;
    }
    modules_dir_ = std::string(TURNBROKER_BINARY_DIR) + "/wic/node_modules";
  }

  static bool HasCommand(const std::string& name) {
    return turnbroker::testing::Run({"sh", "-c", "command -v " + name}, 5s).exit_code == 0;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(install_error_.empty()) << install_error_;
  }

  // Runs the page once in Chromium; returns drive.js's JSON. The steps it
  // printed go to the test's output.
  json Drive(const WicStack& stack, const std::string& impu, const std::string& check,
             const std::string& screenshot) {
    std::string root = TURNBROKER_SOURCE_DIR;
    RunResult r = turnbroker::testing::Run(
        {"node", root + "/examples/wic/drive.js", "--modules", modules_dir_, "--param",
         "ws=" + stack.WsUrl(), "--param", "impu=" + impu,
         // The digest password Kamailio challenges for (the stack's table).
         "--param", "password=" + SipPassword(impu.substr(4, impu.find('@') - 4)), "--param",
         "check=" + check, "--param", "gather_timeout_ms=8000", "--screenshot",
         ArtifactPath(screenshot), "--timeout-ms", "45000"},
        60s);
    // The steps go to the test's output; the last line that is a JSON
    // object is the result.
    std::string line;
    std::istringstream lines(r.output);
    for (std::string l; std::getline(lines, l);) {
      if (l.rfind("{\"", 0) == 0) {
        line = l;
      } else {
        std::cout << l << "\n";
      }
    }
    json result = json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(result.is_object()) << "drive.js printed no result:\n" << r.output;
    return result.is_object() ? result : json::object();
  }

  // The step named `name`, or an empty object.
  static json Step(const json& result, const std::string& name) {
    for (const auto& s : result.value("steps", json::array())) {
      if (s.value("name", "") == name) return s;
    }
    return json::object();
  }

  static bool Has401(const json& step) {
    for (const auto& e : step.value("errors", json::array())) {
      if (e.value("code", 0) == 401) return true;
    }
    return false;
  }

  static void ExpectRelayGathered(const json& result) {
    json relay = Step(result, "relay");
    EXPECT_EQ(relay.value("status", ""), "ok") << relay.dump(2);
    ASSERT_FALSE(relay.value("relay", json::array()).empty()) << relay.dump(2);
    std::string candidate = relay["relay"][0].value("candidate", "");
    EXPECT_NE(candidate.find(" typ relay "), std::string::npos) << candidate;
    EXPECT_EQ(relay["relay"][0].value("address", ""), "127.0.0.1") << candidate;
    EXPECT_FALSE(Has401(relay)) << relay.dump(2);
  }

  static void ExpectRefusedWith401(const json& result, const std::string& name) {
    json refused = Step(result, name);
    EXPECT_EQ(refused.value("status", ""), "ok") << refused.dump(2);
    EXPECT_TRUE(refused.value("relay", json::array()).empty()) << refused.dump(2);
    EXPECT_TRUE(Has401(refused)) << refused.dump(2);
  }

  static inline std::string skip_reason_;
  static inline std::string install_error_;
  static inline std::string modules_dir_;
  TempDir dir_;
};

TEST_F(WicBrowserTest, RegisterGivesRelayCandidateAndDeRegisterRevokesTheCredential) {
  WicStack stack(dir_, 600);
  json r = Drive(stack, "sip:alice@example.org", "revoked", "wic_register_relay_revoked.png");

  EXPECT_EQ(Step(r, "registered").value("status", ""), "ok") << r.dump(2) << stack.Logs();
  json credential = Step(r, "credential");
  ASSERT_EQ(credential.value("status", ""), "ok") << r.dump(2) << stack.Logs();
  std::string username = credential["credential"].value("username", "");
  EXPECT_GE(username.size(), 16u);  // >= 96 random bits, base64url
  EXPECT_EQ(credential["credential"]["urls"], json::array({stack.TurnUri()}));
  EXPECT_NEAR(credential["credential"].value("ttl", 0), 600, 5);
  EXPECT_EQ(r.value("passwordShown", true), false) << "the page showed the TURN password";

  ExpectRelayGathered(r);
  EXPECT_EQ(Step(r, "unregistered").value("status", ""), "ok") << r.dump(2);
  ExpectRefusedWith401(r, "revoked");
  EXPECT_FALSE(stack.KeyInRedis(username)) << "de-REGISTER left the key in coturn's Redis";
  EXPECT_TRUE(r.value("ok", false)) << r.dump(2) << stack.Logs();
  EXPECT_GT(std::filesystem::file_size(ArtifactPath("wic_register_relay_revoked.png")), 1000u);
}

TEST_F(WicBrowserTest, ExpiredCredentialIsRefusedWith401) {
  // Kamailio asks for 3 s (the agent's --min-ttl is 1 s; the broker's
  // default --min-ttl is 1 s); the page gathers once while it is valid,
  // waits past expires_at and gathers again.
  WicStack stack(dir_, 3);
  json r = Drive(stack, "sip:bob@example.org", "expired", "wic_expired.png");

  json credential = Step(r, "credential");
  ASSERT_EQ(credential.value("status", ""), "ok") << r.dump(2) << stack.Logs();
  EXPECT_LE(credential["credential"].value("ttl", 0), 3);
  ExpectRelayGathered(r);
  ExpectRefusedWith401(r, "expired");
  EXPECT_FALSE(stack.KeyInRedis(credential["credential"].value("username", "")));
  EXPECT_EQ(Step(r, "unregistered").value("status", ""), "ok") << r.dump(2);
  EXPECT_TRUE(r.value("ok", false)) << r.dump(2) << stack.Logs();
}

TEST_F(WicBrowserTest, PageSaysSoWhenTheOkCarriesNoCredentialAndStillUnregisters) {
  WicStack stack(dir_, 600, /*start_agent=*/false);
  json r = Drive(stack, "sip:carol@example.org", "revoked", "wic_no_credential.png");

  EXPECT_EQ(Step(r, "registered").value("status", ""), "ok") << r.dump(2) << stack.Logs();
  json credential = Step(r, "credential");
  EXPECT_EQ(credential.value("status", ""), "fail") << r.dump(2);
  EXPECT_NE(credential.value("text", "").find("no TURN-Credential header"), std::string::npos)
      << credential.dump(2);
  EXPECT_TRUE(Step(r, "relay").empty()) << r.dump(2);
  EXPECT_EQ(Step(r, "unregistered").value("status", ""), "ok") << r.dump(2);
  EXPECT_FALSE(r.value("ok", true));
}

// Approach 1 (docs/approach1.md): the same page, the agent minting with the
// realm's active shared secret and coturn recomputing the password.
const char kWicSecret[] = "wic-e2e-shared-secret-0123456789abcdefghijk";

void ExpectApproachOneCredential(const json& credential, const std::string& user) {
  const std::string username = credential.value("username", "");
  const size_t colon = username.find(':');
  ASSERT_NE(colon, std::string::npos) << username;
  EXPECT_EQ(username.substr(0, colon), std::to_string(credential.value("expiresAt", 0)))
      << credential.dump(2);
  EXPECT_EQ(username.size() - colon - 1, 22u) << username;
  EXPECT_EQ(username.find(user), std::string::npos) << "never the IMPU";
}

TEST_F(WicBrowserTest, SharedSecretRegisterGivesRelayCandidate) {
  WicStack stack(dir_, 600, /*start_agent=*/true, /*shared_secret=*/true);
  ASSERT_TRUE(stack.ActivateSecret("wic-1", kWicSecret)) << stack.Logs();
  json r = Drive(stack, "sip:alice@example.org", "none", "wic_shared_secret_relay.png");

  EXPECT_EQ(Step(r, "registered").value("status", ""), "ok") << r.dump(2) << stack.Logs();
  json credential = Step(r, "credential");
  ASSERT_EQ(credential.value("status", ""), "ok") << r.dump(2) << stack.Logs();
  ExpectApproachOneCredential(credential["credential"], "alice");
  EXPECT_EQ(credential["credential"]["urls"], json::array({stack.TurnUri()}));
  EXPECT_NEAR(credential["credential"].value("ttl", 0), 600, 5);
  EXPECT_EQ(r.value("passwordShown", true), false) << "the page showed the TURN password";
  ExpectRelayGathered(r);
  EXPECT_FALSE(stack.KeyInRedis(credential["credential"].value("username", "")))
      << "approach 1 writes no per-credential key";
  EXPECT_EQ(Step(r, "unregistered").value("status", ""), "ok") << r.dump(2);
  EXPECT_TRUE(r.value("ok", false)) << r.dump(2) << stack.Logs();
}

TEST_F(WicBrowserTest, SharedSecretExpiredCredentialIsRefusedWith401) {
  // A 3 s credential (rounded down to the second in the username): coturn
  // checks the expiry in the username itself.
  WicStack stack(dir_, 3, /*start_agent=*/true, /*shared_secret=*/true);
  ASSERT_TRUE(stack.ActivateSecret("wic-1", kWicSecret)) << stack.Logs();
  json r = Drive(stack, "sip:bob@example.org", "expired", "wic_shared_secret_expired.png");

  json credential = Step(r, "credential");
  ASSERT_EQ(credential.value("status", ""), "ok") << r.dump(2) << stack.Logs();
  ExpectApproachOneCredential(credential["credential"], "bob");
  EXPECT_LE(credential["credential"].value("ttl", 0), 3);
  ExpectRelayGathered(r);
  ExpectRefusedWith401(r, "expired");
  EXPECT_TRUE(r.value("ok", false)) << r.dump(2) << stack.Logs();
}

}  // namespace
}  // namespace turnbroker::wic
