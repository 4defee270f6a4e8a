// A real, unmodified coturn for tests: turnserver with --redis-userdb and
// long-term credentials on free loopback ports, an echo peer
// (turnutils_peer), and TURN allocations made by turnutils_uclient.
#ifndef TURNBROKER_TESTS_SUPPORT_COTURN_H_
#define TURNBROKER_TESTS_SUPPORT_COTURN_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "process.h"

namespace turnbroker::testing {

// The peer restrictions of the chart (helm/turnbroker/templates/turn.yaml)
// and the stack (scripts/stack.d/20-turn.sh): no KEYS scans of the user
// database, no relay to loopback, link-local, private, IPv4-mapped IPv6
// (CVE-2026-27624, coturn < 4.9) or multicast peers.
const std::vector<std::string>& ChartCoturnFlags();

// A non-loopback IPv4 address of this machine, for echo peers coturn may
// relay to (the restrictions deny loopback); "" if there is none.
const std::string& PeerAddress();

struct CoturnOptions {
  std::string realm = "example.org";
  int redis_port = 0;
  // coturn's telnet CLI on a free loopback port, with this password; off
  // when empty. It goes in a config file, not on the command line.
  std::string cli_password;
  // The peer restrictions: ChartCoturnFlags() unless set.
  std::vector<std::string> peer_flags = {};
  // Also relay on ::1 (clients may ask for an IPv6 relay).
  bool ipv6_relay = false;
  // Let clients reach PeerAddress() (the echo peer) whatever peer_flags
  // deny; without such an address, loopback peers are allowed instead.
  bool allow_echo_peer = true;
  // Approach 1: --use-auth-secret (TURN REST API credentials, the secrets
  // read from turn/realm/<realm>/secret) instead of --lt-cred-mech.
  bool use_auth_secret = false;
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

// turnutils_peer on PeerAddress(): echoes what the relay sends (uclient
// needs it).
class TurnPeer {
 public:
  explicit TurnPeer(const TempDir& dir);
  int port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  int port_;
  std::string address_;
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
  // Like Allocated, telling a refusal (coturn answered with an error: the
  // client prints "Cannot complete Allocation") from no answer in time.
  enum class Outcome { kAllocated, kRefused, kNoAnswer };
  Outcome Wait(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<Subprocess> process_;
};

// Allocates and returns at once whether coturn accepted the credential.
bool TryAllocate(const TempDir& dir, const CoturnServer& server, const TurnPeer& peer,
                 const std::string& username, const std::string& password);

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_COTURN_H_
