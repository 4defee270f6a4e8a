#include "kamailio.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

namespace turnbroker::testing {

KamailioProcess::KamailioProcess(const TempDir& dir, KamailioOptions options)
    : dir_(dir), port_(options.port ? options.port : FreePort()) {
  std::string run_dir = dir.File("kamailio-" + std::to_string(port_));
  std::filesystem::create_directories(run_dir);
  std::string p = std::to_string(port_);
  std::vector<std::string> argv = {
      "kamailio", "-DD", "-E", "-f", options.config, "-Y", run_dir,
      "-P", run_dir + "/kamailio.pid", "-w", run_dir, "-m", "64", "-M", "8",
      "-A", "SIP_LISTEN_UDP=udp:127.0.0.1:" + p,
      "-A", "SIP_LISTEN_TCP=tcp:127.0.0.1:" + p};
  for (const auto& [name, value] : options.defines) {
    argv.push_back("-A");
    argv.push_back(value.empty() ? name : name + "=" + value);
  }
  process_ = std::make_unique<Subprocess>(argv, run_dir + ".log");
  if (!WaitReady(std::chrono::seconds(15))) {
    ADD_FAILURE() << "kamailio did not answer OPTIONS on " << address() << ":\n" << Log();
  }
}

KamailioProcess::~KamailioProcess() = default;

bool KamailioProcess::WaitReady(std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
  socklen_t len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  int local_port = ntohs(local.sin_port);
  timeval tv{0, 100'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port_));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ready = WaitUntil(
      [&] {
        if (!process_->running()) return true;  // reported below
        static int seq = 0;
        std::string branch = "z9hG4bK-ready-" + std::to_string(++seq);
        std::string msg =
            "OPTIONS sip:" + address() + " SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(local_port) +
            ";branch=" + branch + "\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=probe\r\n"
            "To: <sip:" + address() + ">\r\nCall-ID: " + branch + "@probe\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        char buf[2048];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        return n > 12 && std::string(buf, static_cast<size_t>(n)).rfind("SIP/2.0 200", 0) == 0;
      },
      timeout);
  close(fd);
  return ready && process_->running();
}

}  // namespace turnbroker::testing
