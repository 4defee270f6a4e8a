#include "coturn.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

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

CoturnServer::CoturnServer(const TempDir& dir, CoturnOptions options)
    : options_(std::move(options)), port_(FreePort()) {
  std::vector<std::string> argv = {
      "turnserver", "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
      "--listening-port", std::to_string(port_),
      "--redis-userdb",
      "ip=127.0.0.1 port=" + std::to_string(options_.redis_port) + " dbname=0",
      "--lt-cred-mech", "--realm", options_.realm, "--allow-loopback-peers",
      "--no-tls", "--no-dtls", "--pidfile", dir.File("turn-" + std::to_string(port_) + ".pid"),
      "--log-file", "stdout", "--simple-log"};
  if (options_.cli_password.empty()) {
    argv.push_back("--no-cli");
  } else {
    cli_port_ = FreePort();
    for (const char* a : {"--cli-ip", "127.0.0.1"}) argv.push_back(a);
    argv.push_back("--cli-port");
    argv.push_back(std::to_string(cli_port_));
    argv.push_back("--cli-password");
    argv.push_back(options_.cli_password);
  }
  process_ = std::make_unique<Subprocess>(argv, LogName(dir, "turnserver"));
  bool up = process_->WaitForOutput("Total General servers", std::chrono::seconds(10)).has_value();
  if (up && cli_port_) {
    up = WaitUntil([&] { return TcpAccepts(cli_port_); }, std::chrono::seconds(5));
  }
  if (!up) ADD_FAILURE() << "turnserver did not start:\n" << process_->Output();
}

CoturnServer::~CoturnServer() = default;

TurnPeer::TurnPeer(const TempDir& dir) : port_(FreePort()) {
  process_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"turnutils_peer", "-L", "127.0.0.1", "-p", std::to_string(port_)},
      LogName(dir, "turn-peer"));
}

TurnClient::TurnClient(const TempDir& dir, const CoturnServer& server, const TurnPeer& peer,
                       const std::string& username, const std::string& password) {
  // -v prints "Received relay addr" on success; -c: no RTCP allocation;
  // -n/-z keep the allocation busy (and refreshed) for the test's life.
  process_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"turnutils_uclient", "-v", "-c", "-n", "100000", "-z", "100",
                               "-u", username, "-w", password, "-e", "127.0.0.1", "-r",
                               std::to_string(peer.port()), "-p", std::to_string(server.port()),
                               "127.0.0.1"},
      LogName(dir, "turn-client"));
}

TurnClient::~TurnClient() = default;

bool TurnClient::Allocated(std::chrono::milliseconds timeout) {
  bool allocated = false;
  WaitUntil(
      [&] {
        allocated = process_->Output().find("Received relay addr") != std::string::npos;
        return allocated || !process_->running();
      },
      timeout);
  return allocated;
}

bool TryAllocate(const TempDir& dir, const CoturnServer& server, const TurnPeer& peer,
                 const std::string& username, const std::string& password) {
  TurnClient client(dir, server, peer, username, password);
  return client.Allocated();
}

}  // namespace turnbroker::testing
