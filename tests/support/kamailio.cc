#include "kamailio.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

namespace turnbroker::testing {

KamailioProcess::KamailioProcess(const TempDir& dir, KamailioOptions options)
    : dir_(dir), port_(options.port ? options.port : FreePort()) {
  std::string run_dir = dir.File("kamailio-" + std::to_string(port_));
  std::filesystem::create_directories(run_dir);
  std::string p = std::to_string(port_);
  std::vector<std::string> argv = {"kamailio",
                                   "-DD",
                                   "-E",
                                   "-f",
                                   options.config,
                                   "-Y",
                                   run_dir,
                                   "-P",
                                   run_dir + "/kamailio.pid",
                                   "-w",
                                   run_dir,
                                   "-m",
                                   "64",
                                   "-M",
                                   "8",
                                   "-x",
                                   "tlsf",
                                   "-X",
                                   "tlsf",
                                   "-A",
                                   "SIP_LISTEN_UDP=udp:127.0.0.1:" + p,
                                   "-A",
                                   "SIP_LISTEN_TCP=tcp:127.0.0.1:" + p};
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
  SipUdpSocket sip;
  int seq = 0;
  bool ready = WaitUntil(
      [&] {
        if (!process_->running()) return true;  // reported below
        std::string branch = "z9hG4bK-ready-" + std::to_string(++seq);
        sip.SendTo(port_, "OPTIONS sip:" + address() +
                              " SIP/2.0\r\n"
                              "Via: SIP/2.0/UDP 127.0.0.1:" +
                              std::to_string(sip.local_port()) + ";branch=" + branch +
                              "\r\n"
                              "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=probe\r\n"
                              "To: <sip:" +
                              address() + ">\r\nCall-ID: " + branch +
                              "@probe\r\n"
                              "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
        return sip.Receive(std::chrono::milliseconds(100)).rfind("SIP/2.0 200", 0) == 0;
      },
      timeout);
  return ready && process_->running();
}

std::string RegisterRequest(const SipUdpSocket& sip, const std::string& user,
                            const std::string& domain, const std::string& contact, int expires,
                            const std::string& call_id) {
  std::string lp = std::to_string(sip.local_port());
  return "REGISTER sip:" + domain +
         " SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:" +
         lp + ";branch=z9hG4bK-" + call_id +
         "\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:" +
         user + "@" + domain + ">;tag=" + call_id +
         "\r\n"
         "To: <sip:" +
         user + "@" + domain + ">\r\nCall-ID: " + call_id +
         "@test\r\n"
         "CSeq: 1 REGISTER\r\n"
         "Contact: " +
         (contact == "*" ? contact : "<" + contact + ">") +
         "\r\n"
         "Expires: " +
         std::to_string(expires) + "\r\nContent-Length: 0\r\n\r\n";
}

SipUdpSocket::SipUdpSocket() : fd_(socket(AF_INET, SOCK_DGRAM, 0)) {
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
  socklen_t len = sizeof local;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
  local_port_ = ntohs(local.sin_port);
}

SipUdpSocket::~SipUdpSocket() { close(fd_); }

void SipUdpSocket::SendTo(int port, const std::string& message) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sendto(fd_, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

std::string SipUdpSocket::Receive(std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[8192];
  ssize_t n = recv(fd_, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace turnbroker::testing
