// coturn's admin interface, as far as revocation needs it: list the live
// sessions of a user, and end a session. The implementation speaks coturn's
// telnet CLI (turnserver --cli-ip/--cli-port/--cli-password): `ps <user>`
// prints the user's sessions as "N) id=<id>, user <name>:" blocks, `cs <id>`
// cancels one. The CLI takes one command per input chunk, so each command
// waits for the "> " prompt before the next is sent.
#ifndef TURNBROKER_TURN_COTURN_ADMIN_H_
#define TURNBROKER_TURN_COTURN_ADMIN_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/net.h"

namespace turnbroker::turn {

// Not thread-safe: one owner thread.
class CoturnAdmin {
 public:
  virtual ~CoturnAdmin() = default;
  // Ids of the live sessions of `username` in `realm`.
  virtual absl::StatusOr<std::vector<std::string>> Sessions(std::string_view realm,
                                                            std::string_view username) = 0;
  // Ends one session (coturn closes its allocation).
  virtual absl::Status Cancel(std::string_view session_id) = 0;
};

struct CoturnCliOptions {
  HostPort address;      // coturn's --cli-ip:--cli-port, normally loopback
  std::string password;  // coturn's --cli-password (empty: none asked)
  int timeout_ms = 3'000;
};

// The telnet CLI client. Connects on first use and after an error; keeps
// the connection (and its login) between calls. Errors: UNAVAILABLE
// (connect, I/O, timeout), PERMISSION_DENIED (password refused or missing).
class CoturnCli : public CoturnAdmin {
 public:
  explicit CoturnCli(CoturnCliOptions options);
  ~CoturnCli() override;
  CoturnCli(const CoturnCli&) = delete;
  CoturnCli& operator=(const CoturnCli&) = delete;

  absl::StatusOr<std::vector<std::string>> Sessions(std::string_view realm,
                                                    std::string_view username) override;
  absl::Status Cancel(std::string_view session_id) override;

 private:
  absl::Status Connect();
  void Close();
  // Sends one line and returns the output up to the next prompt.
  absl::StatusOr<std::string> Run(std::string_view line);
  absl::Status Send(std::string_view line);
  // Reads until `done(output)` holds, or the deadline passes.
  absl::StatusOr<std::string> ReadUntil(bool (*done)(const std::string&));

  const CoturnCliOptions options_;
  int fd_ = -1;
};

// Parses `ps` output: the ids of the sessions of exactly `username` whose
// realm (when printed) is `realm`.
std::vector<std::string> ParseSessionIds(std::string_view ps_output, std::string_view realm,
                                         std::string_view username);

// Removes telnet IAC sequences (negotiation) from received bytes.
std::string StripTelnet(std::string_view bytes);

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_COTURN_ADMIN_H_
