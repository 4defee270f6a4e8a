#include "turnbroker/common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>

namespace turnbroker {
namespace {

struct Config {
  std::string app = "turnbroker";
  std::atomic<int> level{static_cast<int>(LogLevel::kInfo)};
  std::atomic<bool> json{false};
};

Config& GlobalConfig() {
  static Config* config = new Config;  // never destroyed: logs may outlive main
  return *config;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendTimestamp(std::string* out) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  out->append(buf);
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      return true;
  }
  return false;
}

// Escapes for both a logfmt quoted value and a JSON string.
void AppendQuoted(std::string* out, std::string_view v) {
  out->push_back('"');
  for (char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

void InitLogging(std::string_view app, LogLevel level, LogFormat format) {
  Config& c = GlobalConfig();
  c.app = std::string(app);
  c.level = static_cast<int>(level);
  c.json = format == LogFormat::kJson;
}

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  std::string n = AsciiLower(name);
  if (n == "debug")
    *level = LogLevel::kDebug;
  else if (n == "info")
    *level = LogLevel::kInfo;
  else if (n == "warn" || n == "warning")
    *level = LogLevel::kWarn;
  else if (n == "error")
    *level = LogLevel::kError;
  else
    return false;
  return true;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= GlobalConfig().level.load(); }

LogLine::LogLine(LogLevel level, std::string_view msg) : enabled_(LogEnabled(level)) {
  if (!enabled_) return;
  const Config& c = GlobalConfig();
  line_.reserve(160);
  if (c.json) {
    line_.append("{\"ts\":\"");
    AppendTimestamp(&line_);
    StrAppend(&line_, "\",\"level\":\"", LevelName(level), "\",\"app\":");
    AppendQuoted(&line_, c.app);
    line_.append(",\"msg\":");
    AppendQuoted(&line_, msg);
  } else {
    line_.append("ts=");
    AppendTimestamp(&line_);
    StrAppend(&line_, " level=", LevelName(level), " app=", c.app, " msg=");
    AppendQuoted(&line_, msg);
  }
}

LogLine::~LogLine() {
  if (!enabled_) return;
  line_.append(GlobalConfig().json ? "}\n" : "\n");
  // One write: lines from several threads never interleave.
  ssize_t ignored = write(STDERR_FILENO, line_.data(), line_.size());
  (void)ignored;
}

void LogLine::AppendRaw(std::string_view key, std::string_view value) {
  if (GlobalConfig().json) {
    line_.push_back(',');
    AppendQuoted(&line_, key);
    line_.push_back(':');
    AppendQuoted(&line_, value);
  } else {
    StrAppend(&line_, " ", key, "=");
    if (NeedsQuotes(value))
      AppendQuoted(&line_, value);
    else
      line_.append(value);
  }
}

LogLine& LogLine::Kv(std::string_view key, std::string_view value) {
  if (enabled_) AppendRaw(key, value);
  return *this;
}

LogLine& LogLine::Kv(std::string_view key, const absl::Status& status) {
  if (enabled_) AppendRaw(key, status.ToString());
  return *this;
}

LogLine& LogLine::Kv(std::string_view key, bool value) {
  if (enabled_) AppendRaw(key, value ? "true" : "false");
  return *this;
}

}  // namespace turnbroker
