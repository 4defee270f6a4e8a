// The logging flags every turnbroker daemon takes, parsed one way.
#ifndef TURNBROKER_COMMON_LOG_FLAGS_H_
#define TURNBROKER_COMMON_LOG_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "absl/status/status.h"
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

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_LOG_FLAGS_H_
