#include "coturn.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>

namespace turnbroker::testing {
namespace {

std::atomic<int> g_serial{0};

std::string LogName(const TempDir& dir, const std::string& what) {
  return dir.File(what + "-" + std::to_string(g_serial++) + ".log");
}

bool TcpAccepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

const std::vector<std::string>& ChartCoturnFlags() {
  static const auto* flags = new std::vector<std::string>{
      "--no-auth-pings",
      "--no-dynamic-ip-list",
      "--no-dynamic-realms",
      "--no-multicast-peers",
      "--denied-peer-ip=0.0.0.0-0.255.255.255",
      "--denied-peer-ip=127.0.0.0-127.255.255.255",
      "--denied-peer-ip=::1",
      "--denied-peer-ip=169.254.0.0-169.254.255.255",
      "--denied-peer-ip=fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
      "--denied-peer-ip=::ffff:0.0.0.0-::ffff:255.255.255.255",
      "--denied-peer-ip=10.0.0.0-10.255.255.255",
      "--denied-peer-ip=172.16.0.0-172.31.255.255",
      "--denied-peer-ip=192.168.0.0-192.168.255.255",
      "--denied-peer-ip=100.64.0.0-100.127.255.255",
      "--denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"};
  return *flags;
}

const std::string& PeerAddress() {
  static const std::string* address = [] {
    auto* found = new std::string;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return found;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
      if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
      char text[INET_ADDRSTRLEN];
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) {
        *found = text;
        break;
      }
    }
    freeifaddrs(list);
    return found;
  }();
  return *address;
}

CoturnServer::CoturnServer(const TempDir& dir, CoturnOptions options)
    : options_(std::move(options)), port_(FreePort()) {
  std::string config = dir.File("turnserver-" + std::to_string(port_) + ".conf");
  std::vector<std::string> argv = {
      "turnserver",
      "-c",
      config,
      "--listening-ip",
      "127.0.0.1",
      "--relay-ip",
      "127.0.0.1",
      "--listening-port",
      std::to_string(port_),
      "--redis-userdb",
      "ip=127.0.0.1 port=" + std::to_string(options_.redis_port) + " dbname=0",
      options_.use_auth_secret ? "--use-auth-secret" : "--lt-cred-mech",
      "--realm",
      options_.realm,
      "--no-tls",
      "--no-dtls",
      "--pidfile",
      dir.File("turn-" + std::to_string(port_) + ".pid"),
      "--log-file",
      "stdout",
      "--simple-log"};
  if (options_.ipv6_relay) {
    for (const char* a : {"--relay-ip", "::1"}) argv.push_back(a);
  }
  const auto& peer_flags = options_.peer_flags.empty() ? ChartCoturnFlags() : options_.peer_flags;
  argv.insert(argv.end(), peer_flags.begin(), peer_flags.end());
  if (options_.allow_echo_peer) {
    // The allowed range wins over the denied ones (coturn checks it first).
    argv.push_back(PeerAddress().empty() ? "--allow-loopback-peers"
                                         : "--allowed-peer-ip=" + PeerAddress());
  }
  // The CLI password in the config file, as the chart and the stack do.
  std::ofstream(config) << (options_.cli_password.empty()
                                ? std::string("no-cli\n")
                                : "cli-password=" + options_.cli_password + "\n");
  if (!options_.cli_password.empty()) {
    cli_port_ = FreePort();
    for (const char* a : {"--cli-ip", "127.0.0.1"}) argv.push_back(a);
    argv.push_back("--cli-port");
    argv.push_back(std::to_string(cli_port_));
  }
  process_ = std::make_unique<Subprocess>(argv, LogName(dir, "turnserver"));
  bool up = process_->WaitForOutput("Total General servers", std::chrono::seconds(10)).has_value();
  if (up && cli_port_) {
    up = WaitUntil([&] { return TcpAccepts(cli_port_); }, std::chrono::seconds(5));
  }
  if (!up) ADD_FAILURE() << "turnserver did not start:\n" << process_->Output();
}

CoturnServer::~CoturnServer() = default;

TurnPeer::TurnPeer(const TempDir& dir)
    : port_(FreePort()), address_(PeerAddress().empty() ? "127.0.0.1" : PeerAddress()) {
  process_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"turnutils_peer", "-L", address_, "-p", std::to_string(port_)},
      LogName(dir, "turn-peer"));
}

TurnClient::TurnClient(const TempDir& dir, const CoturnServer& server, const TurnPeer& peer,
                       const std::string& username, const std::string& password) {
  // -v prints "Received relay addr" on success; -c: no RTCP allocation;
  // -n/-z keep the allocation busy (and refreshed) for the test's life.
  process_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"turnutils_uclient", "-v", "-c", "-n", "100000", "-z", "100", "-u",
                               username, "-w", password, "-e", peer.address(), "-r",
                               std::to_string(peer.port()), "-p", std::to_string(server.port()),
                               "127.0.0.1"},
      LogName(dir, "turn-client"));
}

TurnClient::~TurnClient() = default;

bool TurnClient::Allocated(std::chrono::milliseconds timeout) {
  return Wait(timeout) == Outcome::kAllocated;
}

TurnClient::Outcome TurnClient::Wait(std::chrono::milliseconds timeout) {
  Outcome outcome = Outcome::kNoAnswer;
  WaitUntil(
      [&] {
        const std::string output = process_->Output();
        if (output.find("Received relay addr") != std::string::npos) {
          outcome = Outcome::kAllocated;
        } else if (output.find("Cannot complete Allocation") != std::string::npos) {
          outcome = Outcome::kRefused;
        }
        return outcome != Outcome::kNoAnswer || !process_->running();
      },
      timeout);
  return outcome;
}

bool TryAllocate(const TempDir& dir, const CoturnServer& server, const TurnPeer& peer,
                 const std::string& username, const std::string& password) {
  TurnClient client(dir, server, peer, username, password);
  return client.Allocated();
}

}  // namespace turnbroker::testing
