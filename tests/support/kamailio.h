// A real Kamailio for tests: the reference configuration (or any), run in
// the foreground (-DD -E) on a free loopback port, with its settings given
// as -A defines, its runtime files in the test's folder.
#ifndef TURNBROKER_TESTS_SUPPORT_KAMAILIO_H_
#define TURNBROKER_TESTS_SUPPORT_KAMAILIO_H_

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "process.h"

namespace turnbroker::testing {

struct KamailioOptions {
  std::string config;  // path of the .cfg
  // -A NAME=VALUE (an empty value: -A NAME). String values carry their own
  // quotes: {"TURN_FAILURE_POLICY", "\"refuse\""}.
  std::vector<std::pair<std::string, std::string>> defines;
  // SIP port for UDP and TCP (defines SIP_LISTEN_UDP / SIP_LISTEN_TCP);
  // 0: a free one.
  int port = 0;
};

// A UDP socket on 127.0.0.1 (an ephemeral port) for hand-made SIP messages.
class SipUdpSocket {
 public:
  SipUdpSocket();
  ~SipUdpSocket();
  SipUdpSocket(const SipUdpSocket&) = delete;
  SipUdpSocket& operator=(const SipUdpSocket&) = delete;

  int local_port() const { return local_port_; }
  void SendTo(int port, const std::string& message);
  // The next datagram, or "" when none came within `timeout`.
  std::string Receive(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  int local_port_ = 0;
};

// A REGISTER of user@domain over UDP from `sip`, without credentials, as a
// UAC would send it first. contact "*" (with expires 0) is a de-REGISTER of
// every binding; `call_id` also makes the branch, so the same arguments
// are a retransmission.
std::string RegisterRequest(const SipUdpSocket& sip, const std::string& user,
                            const std::string& domain, const std::string& contact, int expires,
                            const std::string& call_id);

class KamailioProcess {
 public:
  // Starts Kamailio and waits until it answers an OPTIONS (ADD_FAILURE and
  // the log if it does not within 15 s).
  KamailioProcess(const TempDir& dir, KamailioOptions options);
  ~KamailioProcess();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Subprocess& process() { return *process_; }
  std::string Log() const { return process_->Output(); }

  // Sends OPTIONS over UDP until a 200 comes back.
  bool WaitReady(std::chrono::milliseconds timeout);

 private:
  const TempDir& dir_;
  int port_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_KAMAILIO_H_
