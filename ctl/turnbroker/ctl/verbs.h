// turnbrokerctl's verbs, each one call (or stream) to the broker, printed
// with a Printer. The command line (command_line.h) fills their arguments.
//
// Every verb returns the process's exit code: kOk; kFailed when the broker
// refused (the reason is printed on stderr as "turnbrokerctl: CODE: message");
// kUsage for bad arguments found here; kUnreachable when the broker is
// unreachable or did not answer in time.
#ifndef TURNBROKER_CTL_VERBS_H_
#define TURNBROKER_CTL_VERBS_H_

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/ctl/output.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::ctl {

enum ExitCode { kOk = 0, kFailed = 1, kUsage = 2, kUnreachable = 3 };

// The longest --ttl accepted (100 years): beyond it the expiry in Unix ms
// would overflow long before any broker's --max-ttl.
inline constexpr int64_t kMaxTtlSeconds = 100LL * 365 * 86'400;

// The broker as the verbs call it; the stubs are not owned.
struct Broker {
  v1::CredentialBroker::StubInterface* stub = nullptr;
  grpc::health::v1::Health::StubInterface* health = nullptr;
  int64_t timeout_ms = 5'000;  // each call's deadline
};

struct PublishArgs {
  v1::Credential credential;  // realm, username, subscriber, issuer
  std::string password;       // "-": a line from `input`
  std::string key_hex;        // instead of the password
  int64_t ttl_s = 0;
  std::vector<std::string> scopes;
};
// Derives the key here (the password is never sent) and publishes.
int Publish(const Broker& broker, const PublishArgs& args, const Clock* clock, std::istream* input,
            const Printer& out);

struct RevokeArgs {
  std::string username, realm, subscriber, issuer, reason;
};
int Revoke(const Broker& broker, const RevokeArgs& args, const Printer& out);

struct GetArgs {
  std::string username, realm;
};
int Get(const Broker& broker, const GetArgs& args, const Printer& out);

struct ListArgs {
  v1::ListRequest filter;  // realm, subscriber, issuer
  size_t limit = 0;        // 0: all
};
int List(const Broker& broker, ListArgs args, const Printer& out);

struct WatchArgs {
  v1::WatchRequest request;  // farm, all_scopes
  std::vector<std::string> realms;
  uint64_t from = 0;       // resume after this revision (0: snapshot)
  std::string from_epoch;  // of `from`; empty: the broker's current
  long count = -1;         // exit after this many events (-1: never)
  bool until_synced = false;
};
int Watch(const Broker& broker, WatchArgs args, const Printer& out);

int Status(const Broker& broker, const Printer& out);

// `secret add|activate|retire|list` (approach 1, docs/approach1.md). No verb
// prints secret bytes unless `show_secret`.
struct SecretArgs {
  std::string realm, id;
  // add: read the secret from this file (a final line ending is not part of
  // it); empty: 256 random bits, base64url (43 characters).
  std::string secret_file;
  bool show_secret = false;  // add, list
  // add: agents do not mint with it before this time: Unix seconds, or
  // RFC 3339 ("2026-12-06T12:00:00Z"); empty: at once.
  std::string not_before;
  int64_t expires_in_s = 0;  // add: it expires this long from now (0: never)
  bool force = false;        // retire
};
int SecretAdd(const Broker& broker, const SecretArgs& args, const Clock* clock, const Printer& out);
int SecretActivate(const Broker& broker, const SecretArgs& args, const Printer& out);
int SecretRetire(const Broker& broker, const SecretArgs& args, const Printer& out);
// One line per secret: its state, and how far its staging has reached (the
// syncs that acknowledged it and those pending, when the grace ends; for a
// superseded one, when it may be retired).
int SecretList(const Broker& broker, const SecretArgs& args, const Clock* clock,
               const Printer& out);

// --not-before's value in Unix ms; INVALID_ARGUMENT names the flag.
absl::StatusOr<int64_t> ParseNotBefore(const std::string& text);
// A secret read from a file, without a final line ending. Errors name
// --secret-file, never the content.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace turnbroker::ctl

#endif  // TURNBROKER_CTL_VERBS_H_
