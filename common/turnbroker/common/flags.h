// Flags the turnbroker binaries share, declared and parsed one way.
#ifndef TURNBROKER_COMMON_FLAGS_H_
#define TURNBROKER_COMMON_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker {

// The log configuration a command line chose.
struct LogOptions {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
};

class LogFlags {
 public:
  // Adds --log-level and --log-format, with environment variables
  // <env_prefix>LOG_LEVEL and <env_prefix>LOG_FORMAT.
  void Add(CLI::App& app, const std::string& env_prefix) {
    app.add_option("--log-level", level_, "debug, info, warn or error")
        ->envname(env_prefix + "LOG_LEVEL")
        ->capture_default_str();
    app.add_option("--log-format", format_, "text (logfmt) or json")
        ->envname(env_prefix + "LOG_FORMAT")
        ->capture_default_str()
        ->check(CLI::IsMember({"text", "json"}));
  }

  // After parsing: the options, or INVALID_ARGUMENT naming the flag.
  absl::StatusOr<LogOptions> Options() const {
    LogOptions options;
    if (!ParseLogLevel(level_, &options.level)) {
      return absl::InvalidArgumentError(
          StrCat("--log-level: '", level_, "' is not debug, info, warn or error"));
    }
    options.format = format_ == "json" ? LogFormat::kJson : LogFormat::kText;
    return options;
  }

 private:
  std::string level_ = "info";
  std::string format_ = "text";
};

// Prints "<program>: <message>" on stderr and returns 2, the exit code of a
// usage error (a flag or its value is wrong).
int UsageError(std::string_view program, const absl::Status& status);

// A client of the broker: --broker (environment `broker_env`) and
// --tls-cert/--tls-key/--tls-ca/--tls-server-name (<env_prefix>TLS_*).
// `role` names the role its certificate needs, for --help.
inline void AddBrokerClientFlags(CLI::App& app, ChannelOptions* channel,
                                 const std::string& broker_env, const std::string& env_prefix,
                                 const std::string& role) {
  app.add_option("--broker", channel->target,
                 "turn-broker address HOST:PORT; several replicas as HOST:PORT,HOST:PORT (or "
                 "a DNS name with several records): a failed one is left for the next")
      ->envname(broker_env)
      ->capture_default_str();
  app.add_option("--tls-cert", channel->tls.cert,
                 "PEM client certificate (enables mTLS; needs role " + role + ")")
      ->envname(env_prefix + "TLS_CERT");
  app.add_option("--tls-key", channel->tls.key, "PEM key of --tls-cert")
      ->envname(env_prefix + "TLS_KEY");
  app.add_option("--tls-ca", channel->tls.ca, "PEM CA bundle that signs the broker's certificate")
      ->envname(env_prefix + "TLS_CA");
  app.add_option("--tls-server-name", channel->tls_server_name,
                 "Name the broker's certificate must carry (default: the --broker host)")
      ->envname(env_prefix + "TLS_SERVER_NAME");
}

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_FLAGS_H_
