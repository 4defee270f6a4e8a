// A real, unmodified coturn for tests: turnserver with --redis-userdb and
// long-term credentials on free loopback ports, an echo peer
// (turnutils_peer), and TURN allocations made by turnutils_uclient.
#ifndef TURNBROKER_TESTS_SUPPORT_COTURN_H_
#define TURNBROKER_TESTS_SUPPORT_COTURN_H_

#include <chrono>
#include <memory>
#include <string>

#include "process.h"

namespace turnbroker::testing {

struct CoturnOptions {
  std::string realm = "example.org";
  int redis_port = 0;
  // coturn's telnet CLI on a free loopback port, with this password; off
  // when empty.
  std::string cli_password;
};

class CoturnServer {
 public:
  // Starts turnserver (UDP and TCP on one free port, no TLS/DTLS, its pid
  // file in `dir`); waits until it serves. ADD_FAILURE if it does not.
  CoturnServer(const TempDir& dir, CoturnOptions options);
  ~CoturnServer();

  int port() const { return port_; }
  int cli_port() const { return cli_port_; }
  const CoturnOptions& options() const { return options_; }
  Subprocess& process() { return *process_; }

 private:
  CoturnOptions options_;
  int port_;
  int cli_port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

// turnutils_peer: echoes what the relay sends (uclient needs it).
class TurnPeer {
 public:
  explicit TurnPeer(const TempDir& dir);
  int port() const { return port_; }

 private:
  int port_;
  std::unique_ptr<Subprocess> process_;
};

// One TURN client (turnutils_uclient) allocating with a long-term
// credential. Allocated() waits for the relay address (success) or the
// client's exit (refused). The client keeps its allocation alive (sending to
// the peer) until destroyed.
class TurnClient {
 public:
  TurnClient(const TempDir& dir, const CoturnServer& server, const TurnPeer& peer,
             const std::string& username, const std::string& password);
  ~TurnClient();

  // True once an allocation succeeded; false if the client gave up (401,
  // wrong or unknown credential) or `timeout` passed.
  bool Allocated(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<Subprocess> process_;
};

// Allocates and returns at once whether coturn accepted the credential.
bool TryAllocate(const TempDir& dir, const CoturnServer& server, const TurnPeer& peer,
                 const std::string& username, const std::string& password);

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_COTURN_H_
