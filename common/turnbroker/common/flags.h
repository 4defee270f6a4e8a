// Flags the turnbroker binaries share, declared and parsed one way.
#ifndef TURNBROKER_COMMON_FLAGS_H_
#define TURNBROKER_COMMON_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker {

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

  // After parsing: sets up logging for `app_name`, or INVALID_ARGUMENT
  // naming the flag (a usage error: exit 2).
  absl::Status Init(std::string_view app_name) const {
    LogLevel level;
    if (!ParseLogLevel(level_, &level)) {
      return absl::InvalidArgumentError(
          StrCat("--log-level: '", level_, "' is not debug, info, warn or error"));
    }
    InitLogging(app_name, level, format_ == "json" ? LogFormat::kJson : LogFormat::kText);
    return absl::OkStatus();
  }

 private:
  std::string level_ = "info";
  std::string format_ = "text";
};

// A client of the broker: --broker (environment `broker_env`) and
// --tls-cert/--tls-key/--tls-ca/--tls-server-name (<env_prefix>TLS_*).
// `role` names the role its certificate needs, for --help.
inline void AddBrokerClientFlags(CLI::App& app, ChannelOptions* channel,
                                 const std::string& broker_env, const std::string& env_prefix,
                                 const std::string& role) {
  app.add_option("--broker", channel->target, "turn-broker address HOST:PORT")
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
