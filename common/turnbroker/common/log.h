// Structured logs: one line per event, logfmt or JSON, to stderr.
//
//   LogInfo("watch started").Kv("watcher", name).Kv("resume", revision);
//
// prints (logfmt)
//   ts=2026-11-28T02:51:34.123Z level=info app=turn-broker msg="watch started" watcher=tc-1
//   resume=42
//
// The line is written, with one write(2), when the builder goes out of scope.
// Thread-safe. Never pass a password or a key: there is no redaction.
#ifndef TURNBROKER_COMMON_LOG_H_
#define TURNBROKER_COMMON_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "turnbroker/common/strings.h"

namespace turnbroker {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kText, kJson };

// Sets the process's log configuration; call once at start.
void InitLogging(std::string_view app, LogLevel level, LogFormat format = LogFormat::kText);
// Parses "debug", "info", "warn", "error".
bool ParseLogLevel(std::string_view name, LogLevel* level);
bool LogEnabled(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view msg);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Kv(std::string_view key, std::string_view value);
  LogLine& Kv(std::string_view key, const char* value) { return Kv(key, std::string_view(value)); }
  LogLine& Kv(std::string_view key, const std::string& value) {
    return Kv(key, std::string_view(value));
  }
  LogLine& Kv(std::string_view key, const absl::Status& status);
  LogLine& Kv(std::string_view key, bool value);
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  LogLine& Kv(std::string_view key, T value) {
    if (enabled_) AppendRaw(key, StrCat(value));
    return *this;
  }

 private:
  void AppendRaw(std::string_view key, std::string_view value);
  bool enabled_;
  std::string line_;
};

inline LogLine LogDebug(std::string_view msg) { return LogLine(LogLevel::kDebug, msg); }
inline LogLine LogInfo(std::string_view msg) { return LogLine(LogLevel::kInfo, msg); }
inline LogLine LogWarn(std::string_view msg) { return LogLine(LogLevel::kWarn, msg); }
inline LogLine LogError(std::string_view msg) { return LogLine(LogLevel::kError, msg); }

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_LOG_H_
