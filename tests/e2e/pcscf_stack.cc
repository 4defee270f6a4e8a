#include "pcscf_stack.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "turnbroker/common/credential.h"

namespace turnbroker::pcscf::testing {

using ::turnbroker::testing::FreePort;

std::string ReferenceKamailioConfig() { return std::string(PCSCF_KAMAILIO_DIR) + "/kamailio.cfg"; }

std::string SippScenario(const std::string& name) {
  return std::string(PCSCF_KAMAILIO_DIR) + "/sipp/" + name;
}

std::string SipPassword(const std::string& user) { return "pw-" + user + "-7Qx"; }

const std::vector<std::string>& SipUsers() {
  static const std::vector<std::string> users = {"alice", "bob",   "carol", "dave", "erin", "frank",
                                                 "grace", "heidi", "ivan",  "judy", "wic"};
  return users;
}

namespace {

// The reference config's db_text subscriber table (pcscf-plugin/kamailio/
// dbtext, rows as add-subscriber.sh writes them); returns AUTH_DB_URL.
std::string WriteSubscriberTable(const ::turnbroker::testing::TempDir& dir) {
  std::string path = dir.File("subscribers");
  std::filesystem::create_directories(path);
  std::filesystem::copy_file(std::string(PCSCF_KAMAILIO_DIR) + "/dbtext/version", path + "/version",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream table(path + "/subscriber");
  table << "id(int,auto) username(string) domain(string) password(string,null) ha1(string) "
           "ha1b(string) \n";
  int id = 0;
  const std::string domain = "example.org";
  for (const auto& user : SipUsers()) {
    auto ha1 = [&](const std::string& name) {
      LongTermKey k = DeriveLongTermKey(name, domain, SipPassword(user));
      return HexLower(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
    };
    table << ++id << ":" << user << ":" << domain << "::" << ha1(user) << ":"
          << ha1(user + "@" + domain) << "\n";
  }
  return "\"text://" + path + "\"";
}

}  // namespace

PcscfStack::PcscfStack(const ::turnbroker::testing::TempDir& dir, PcscfStackOptions o)
    : dir_(dir), agent_port_(FreePort()) {
  broker_ = std::make_unique<::turnbroker::testing::BrokerProcess>(dir, o.broker_args);
  view_ = std::make_unique<BrokerView>(broker_->address());
  if (o.async) evapi_port_ = FreePort();
  if (o.start_agent) StartAgent(o.agent_args);
  ::turnbroker::testing::KamailioOptions k;
  k.config = ReferenceKamailioConfig();
  k.defines = {{"AGENT_HTTPCON",
                "\"turnagent=>http://127.0.0.1:" + std::to_string(agent_port_) + ";timeout=1\""},
               {"AUTH_DB_URL", WriteSubscriberTable(dir)}};
  if (std::none_of(o.kamailio_defines.begin(), o.kamailio_defines.end(),
                   [](const auto& d) { return d.first == "WORKERS"; }))
    k.defines.push_back({"WORKERS", "2"});
  if (o.async) {
    k.defines.push_back({"WITH_ASYNC_AGENT", ""});
    k.defines.push_back({"EVAPI_BIND", "\"127.0.0.1:" + std::to_string(evapi_port_) + "\""});
  }
  k.defines.insert(k.defines.end(), o.kamailio_defines.begin(), o.kamailio_defines.end());
  kamailio_ = std::make_unique<::turnbroker::testing::KamailioProcess>(dir, k);
  if (o.async && o.start_agent) {
    EXPECT_TRUE(WaitForAgentConnected()) << kamailio_->Log();
  }
}

void PcscfStack::StartAgent(std::vector<std::string> args) {
  if (evapi_port_) args.push_back("--kamailio-evapi=127.0.0.1:" + std::to_string(evapi_port_));
  agent_ = std::make_unique<AgentProcess>(dir_, broker_->address(), std::move(args), agent_port_);
}

bool PcscfStack::WaitForAgentConnected(int n) {
  const std::string line = "TURN agent connected on the evapi socket";
  return WaitFor([&] {
    const std::string log = kamailio_->Log();
    int seen = 0;
    for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++seen;
    return seen >= n;
  });
}

::turnbroker::testing::SippResult PcscfStack::Sipp(const std::string& scenario,
                                                   const std::string& user, int expires,
                                                   std::vector<std::string> extra) {
  ::turnbroker::testing::SippOptions s;
  s.scenario = SippScenario(scenario);
  s.target = kamailio_->address();
  s.keys = {{"user", user}, {"domain", "example.org"}, {"expires", std::to_string(expires)}};
  s.extra = std::move(extra);
  if (std::find(s.extra.begin(), s.extra.end(), "-ap") == s.extra.end()) {
    s.extra.insert(s.extra.end(), {"-au", user, "-ap", SipPassword(user)});
  }
  return ::turnbroker::testing::RunSipp(dir_, s);
}

std::string Dump(const ::turnbroker::testing::SippResult& r) {
  std::string s = "sipp exit " + std::to_string(r.exit_code) + "\n" + r.output + "\nlog:\n";
  for (const auto& l : r.log) s += l + "\n";
  return s;
}

std::optional<TurnCredentialHeader> HeaderIn(const std::string& log_line) {
  std::string value = ::turnbroker::testing::SippLogValue(log_line, "TURN-Credential");
  if (value.empty()) return std::nullopt;
  auto h = ParseTurnCredentialHeader(value);
  EXPECT_TRUE(h.ok()) << h.status() << " in: " << log_line;
  if (!h.ok()) return std::nullopt;
  return *h;
}

}  // namespace turnbroker::pcscf::testing
