#include "turnbroker/common/redis.h"

#include <hiredis/hiredis.h>

#include <charconv>

#include "turnbroker/common/strings.h"

namespace turnbroker {
namespace {

timeval Timeval(int ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

bool ParseUint(std::string_view s, uint64_t max, uint64_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size() && *out <= max;
}

}  // namespace

std::string RedisUrl::Redacted() const {
  std::string auth;
  if (!password.empty()) auth = StrCat(user, ":***@");
  std::string h = host.find(':') != std::string::npos ? StrCat("[", host, "]") : host;
  return StrCat("redis://", auth, h, ":", port, "/", db);
}

absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view text, std::string_view field) {
  auto bad = [&](std::string_view why) {
    // Never echo the URL: it may hold a password.
    return absl::InvalidArgumentError(
        StrCat(field, ": ", why, " (want redis://[:PASSWORD@]HOST[:PORT][/DB])"));
  };
  constexpr std::string_view kScheme = "redis://";
  if (text.substr(0, kScheme.size()) != kScheme) return bad("scheme is not redis://");
  std::string_view rest = text.substr(kScheme.size());
  RedisUrl url;
  if (size_t at = rest.rfind('@'); at != rest.npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == userinfo.npos) return bad("user info without ':PASSWORD'");
    url.user = std::string(userinfo.substr(0, colon));
    url.password = std::string(userinfo.substr(colon + 1));
    if (url.password.empty()) return bad("empty password");
  }
  std::string_view hostport = rest;
  if (size_t slash = rest.find('/'); slash != rest.npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    uint64_t n = 0;
    if (!db.empty()) {
      if (!ParseUint(db, 1'000'000, &n)) return bad("database is not a number");
      url.db = static_cast<int>(n);
    }
  }
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == hostport.npos) return bad("unterminated [IPV6] host");
    url.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after [IPV6] host");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    size_t colon = hostport.find(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != hostport.npos) {
      port = hostport.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (url.host.empty()) return bad("no host");
  if (!port.empty()) {
    uint64_t p = 0;
    if (!ParseUint(port, 65535, &p) || p == 0) return bad("bad port");
    url.port = static_cast<uint16_t>(p);
  }
  return url;
}

std::string RedisReply::ToString() const {
  switch (type) {
    case Type::kNil:
      return "(nil)";
    case Type::kInteger:
      return StrCat(integer);
    case Type::kArray:
      return StrCat("(array of ", elements.size(), ")");
    default:
      return str;
  }
}

absl::StatusOr<RedisReply> RedisClient::Command(RedisCommand command) {
  std::vector<RedisCommand> one;
  one.push_back(std::move(command));
  auto replies = Pipeline(one);
  if (!replies.ok()) return replies.status();
  RedisReply& r = replies->front();
  if (r.is_error()) {
    return absl::InternalError(StrCat("redis ", one.front().front(), ": ", r.str));
  }
  return std::move(r);
}

HiredisClient::HiredisClient(RedisOptions options) : options_(std::move(options)) {}

HiredisClient::~HiredisClient() { Disconnect(); }

void HiredisClient::Disconnect() {
  if (context_) redisFree(context_);
  context_ = nullptr;
}

absl::Status HiredisClient::Fail(std::string_view what) {
  std::string message =
      StrCat("redis ", options_.url.host, ":", options_.url.port, ": ", what);
  if (context_ && context_->err) StrAppend(&message, ": ", context_->errstr);
  Disconnect();
  return absl::UnavailableError(message);
}

absl::Status HiredisClient::Connect() {
  if (context_) return absl::OkStatus();
  context_ = redisConnectWithTimeout(options_.url.host.c_str(), options_.url.port,
                                     Timeval(options_.connect_timeout_ms));
  if (!context_) return absl::UnavailableError("redis: out of memory");
  if (context_->err) return Fail("connect");
  redisSetTimeout(context_, Timeval(options_.io_timeout_ms));
  redisEnableKeepAlive(context_);
  std::vector<RedisCommand> setup;
  if (!options_.url.password.empty()) {
    if (options_.url.user.empty()) {
      setup.push_back({"AUTH", options_.url.password});
    } else {
      setup.push_back({"AUTH", options_.url.user, options_.url.password});
    }
  }
  if (options_.url.db != 0) setup.push_back({"SELECT", StrCat(options_.url.db)});
  if (setup.empty()) return absl::OkStatus();
  auto replies = Pipeline(setup);
  if (!replies.ok()) return replies.status();
  for (size_t i = 0; i < replies->size(); ++i) {
    if ((*replies)[i].is_error()) {
      std::string message = StrCat("redis ", options_.url.host, ":", options_.url.port, ": ",
                                   setup[i].front(), ": ", (*replies)[i].str);
      Disconnect();
      // A wrong password or database is a configuration error, not an outage.
      return absl::FailedPreconditionError(message);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisReply>> HiredisClient::Pipeline(
    const std::vector<RedisCommand>& commands) {
  if (auto s = Connect(); !s.ok()) return s;
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  for (const RedisCommand& c : commands) {
    argv.clear();
    argvlen.clear();
    for (const std::string& a : c) {
      argv.push_back(a.data());
      argvlen.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               argvlen.data()) != REDIS_OK) {
      return Fail("append");
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return Fail("read");
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(Convert(reply));
    freeReplyObject(reply);
  }
  return replies;
}

}  // namespace turnbroker
