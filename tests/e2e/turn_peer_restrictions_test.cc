// The chart's coturn peer restrictions, with real coturn: the flags are
// taken from `helm template` of helm/turnbroker (real Helm, installed by
// tests/helm/install-tools.sh), and an authenticated TURN client
// (turnutils_uclient) asks for a channel to each peer; ChannelBind installs
// the permission, so a refusal (403 Forbidden IP) means neither a permission
// nor a relay. Loopback (the node-local Redis), the IPv4-mapped loopback of
// CVE-2026-27624 and the cloud metadata address are refused; the echo peer
// of the test, let in with --allowed-peer-ip, shows a grant is seen.
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstdio>
#include <regex>
#include <sstream>

#include "coturn.h"
#include "redis_server.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/turn/schema.h"

namespace turnbroker::testing {
namespace {

using namespace std::chrono_literals;

const std::string kRealm = "ims.example.org";

std::string Shell(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  *status = pclose(pipe);
  return out;
}

// The coturn arguments of the chart's DaemonSet that restrict peers and
// queries (helm template with default values).
std::vector<std::string> ChartPeerFlags(const TempDir& dir, std::string* error) {
  int status = 0;
  std::string log = dir.File("install-tools.log");
  std::string tools =
      Shell(std::string(TURNBROKER_SOURCE_DIR) + "/tests/helm/install-tools.sh 2>" + log, &status);
  while (!tools.empty() && tools.back() == '\n') tools.pop_back();
  if (status != 0 || tools.empty()) {
    *error = "tests/helm/install-tools.sh failed: " + Shell("cat " + log, &status);
    return {};
  }
  std::string manifest = Shell(tools + "/bin/helm template rel " TURNBROKER_SOURCE_DIR
                                       "/helm/turnbroker --show-only templates/turn.yaml 2>&1",
                               &status);
  if (status != 0) {
    *error = "helm template failed: " + manifest;
    return {};
  }
  std::vector<std::string> flags;
  std::istringstream lines(manifest);
  std::string line;
  bool in_coturn = false;
  static const std::regex kArg(R"(^\s+- (--\S+)\s*$)");
  while (std::getline(lines, line)) {
    if (line.find("command: [\"turnserver\"]") != std::string::npos) in_coturn = true;
    if (!in_coturn) continue;
    if (line.find("ports:") != std::string::npos) break;
    std::smatch m;
    if (!std::regex_match(line, m, kArg)) continue;
    std::string flag = m[1];
    for (const char* kept : {"--no-auth-pings", "--no-dynamic-", "--no-multicast-peers",
                             "--denied-peer-ip=", "--allowed-peer-ip=", "--no-tcp-relay"}) {
      if (flag.rfind(kept, 0) == 0) flags.push_back(flag);
    }
  }
  if (flags.empty()) *error = "no coturn flags in:\n" + manifest;
  return flags;
}

bool HasIpv6Loopback() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
      found = found || IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
  }
  freeifaddrs(list);
  return found;
}

enum class Verdict { kGranted, kRefused, kNoAnswer };

class TurnPeerRestrictionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    flags_ = ChartPeerFlags(dir_, &error);
    ASSERT_FALSE(flags_.empty()) << error;
    redis_.Set(turn::UserKeyName(kRealm, "alice"),
               HexLower(std::string_view(reinterpret_cast<const char*>(
                                             DeriveLongTermKey("alice", kRealm, "s3cret").data()),
                                         kKeyBytes)));
    coturn_ = std::make_unique<CoturnServer>(dir_, CoturnOptions{.realm = kRealm,
                                                                 .redis_port = redis_.port(),
                                                                 .cli_password = "",
                                                                 .peer_flags = flags_,
                                                                 .ipv6_relay = HasIpv6Loopback()});
  }

  // One allocation (IPv6 relay when `ipv6`) and a ChannelBind to `peer`.
  Verdict Bind(const std::string& peer, bool ipv6 = false) {
    std::vector<std::string> argv = {"turnutils_uclient", "-v", "-c", "-n", "1"};
    if (ipv6) argv.push_back("-x");
    for (const std::string& a :
         {std::string("-u"), std::string("alice"), std::string("-w"), std::string("s3cret"),
          std::string("-e"), peer, std::string("-r"), std::to_string(peer_.port()),
          std::string("-p"), std::to_string(coturn_->port()), std::string("127.0.0.1")}) {
      argv.push_back(a);
    }
    Subprocess client(argv, dir_.File("uclient-" + std::to_string(serial_++) + ".log"));
    Verdict verdict = Verdict::kNoAnswer;
    WaitUntil(
        [&] {
          std::string out = client.Output();
          if (out.find("error 403 (Forbidden IP)") != std::string::npos) {
            verdict = Verdict::kRefused;
          } else if (std::regex_search(out, std::regex("cb response received: \\n.*success"))) {
            verdict = Verdict::kGranted;
          }
          return verdict != Verdict::kNoAnswer || !client.running();
        },
        10s);
    last_output_ = client.Output();
    return verdict;
  }

  TempDir dir_;
  RedisServer redis_{dir_};
  TurnPeer peer_{dir_};
  std::vector<std::string> flags_;
  std::unique_ptr<CoturnServer> coturn_;
  std::string last_output_;
  int serial_ = 0;
};

TEST_F(TurnPeerRestrictionsTest, ChartFlagsAreTheSupportDefaults) {
  // The flags the other tests and the stack start coturn with are the
  // chart's (its private ranges are values.yaml defaults).
  EXPECT_EQ(flags_, ChartCoturnFlags());
}

TEST_F(TurnPeerRestrictionsTest, GrantsTheAllowedEchoPeer) {
  if (PeerAddress().empty()) GTEST_SKIP() << "no non-loopback IPv4 address on this machine";
  EXPECT_EQ(Bind(PeerAddress()), Verdict::kGranted) << last_output_;
}

TEST_F(TurnPeerRestrictionsTest, RefusesLoopbackPeers) {
  EXPECT_EQ(Bind("127.0.0.1"), Verdict::kRefused) << last_output_;
  EXPECT_EQ(Bind("127.0.0.2"), Verdict::kRefused) << last_output_;
}

TEST_F(TurnPeerRestrictionsTest, RefusesCloudMetadataPeer) {
  EXPECT_EQ(Bind("169.254.169.254"), Verdict::kRefused) << last_output_;
}

TEST_F(TurnPeerRestrictionsTest, RefusesIpv4MappedLoopbackPeer) {
  // CVE-2026-27624: coturn < 4.9 does not see ::ffff:127.0.0.1 as loopback;
  // the chart's ::ffff:0.0.0.0-::ffff:255.255.255.255 range refuses it.
  if (!HasIpv6Loopback()) GTEST_SKIP() << "no ::1 for an IPv6 relay on this machine";
  EXPECT_EQ(Bind("::ffff:127.0.0.1", /*ipv6=*/true), Verdict::kRefused) << last_output_;
  EXPECT_EQ(Bind("::ffff:169.254.169.254", /*ipv6=*/true), Verdict::kRefused) << last_output_;
}

TEST_F(TurnPeerRestrictionsTest, RefusesPrivatePeers) {
  EXPECT_EQ(Bind("10.1.2.3"), Verdict::kRefused) << last_output_;
  EXPECT_EQ(Bind("192.168.1.1"), Verdict::kRefused) << last_output_;
}

}  // namespace
}  // namespace turnbroker::testing
