#include "turnbroker/common/redis.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

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

RedisArgs::RedisArgs(std::initializer_list<std::string_view> args) {
  for (std::string_view a : args) Push(a);
}

RedisArgs& RedisArgs::Push(std::string_view arg) {
  StrAppend(&body_, "$", arg.size(), "\r\n");
  body_.append(arg);
  body_.append("\r\n");
  ++count_;
  return *this;
}

void RedisBatch::Add(const RedisArgs& args) {
  offsets_.push_back(resp_.size());
  StrAppend(&resp_, "*", args.size(), "\r\n");
  resp_.append(args.encoded());
}

std::string RedisBatch::name(size_t i) const {
  // The first two arguments, decoded from the encoding.
  std::string_view in = std::string_view(resp_).substr(offsets_[i]);
  auto line = [&in] {
    size_t eol = in.find("\r\n");
    size_t n = std::strtoul(std::string(in.substr(1, eol - 1)).c_str(), nullptr, 10);
    in.remove_prefix(eol + 2);
    return n;
  };
  size_t args = line();
  std::string name;
  for (size_t k = 0; k < std::min<size_t>(2, args); ++k) {
    size_t len = line();
    if (k > 0) name.push_back(' ');
    name.append(in.substr(0, len));
    in.remove_prefix(len + 2);
  }
  return name;
}

std::vector<RedisCommand> RedisBatch::Decode() const {
  std::vector<RedisCommand> out;
  std::string_view in = resp_;
  auto line = [&in] {
    size_t eol = in.find("\r\n");
    std::string_view l = in.substr(1, eol - 1);
    in.remove_prefix(eol + 2);
    return std::strtoul(std::string(l).c_str(), nullptr, 10);
  };
  while (!in.empty()) {
    size_t n = line();
    RedisCommand c;
    for (size_t i = 0; i < n; ++i) {
      size_t len = line();
      c.emplace_back(in.substr(0, len));
      in.remove_prefix(len + 2);
    }
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Execute(const RedisBatch& batch) {
  return Pipeline(batch.Decode());
}

absl::Status RedisClient::Send(const RedisBatch& batch) {
  sent_.push_back(Execute(batch));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Receive() {
  if (sent_.empty()) return absl::FailedPreconditionError("redis: nothing in flight");
  auto replies = std::move(sent_.front());
  sent_.pop_front();
  return replies;
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
  // Replies of batches in flight are lost with the connection: their
  // Receive() fails.
  for (size_t& count : in_flight_) count = kLost;
}

absl::Status HiredisClient::Fail(std::string_view what) {
  std::string message = StrCat("redis ", options_.url.host, ":", options_.url.port, ": ", what);
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
  RedisBatch setup;
  if (!options_.url.password.empty()) {
    if (options_.url.user.empty()) {
      setup.Add({"AUTH", options_.url.password});
    } else {
      setup.Add({"AUTH", options_.url.user, options_.url.password});
    }
  }
  if (options_.url.db != 0) setup.Add({"SELECT", StrCat(options_.url.db)});
  if (setup.empty()) return absl::OkStatus();
  if (auto s = Write(setup.encoded()); !s.ok()) return s;
  auto replies = ReadReplies(setup.size());
  if (!replies.ok()) return replies.status();
  for (size_t i = 0; i < replies->size(); ++i) {
    if ((*replies)[i].is_error()) {
      std::string message = StrCat("redis ", options_.url.host, ":", options_.url.port, ": ",
                                   i == 0 && !options_.url.password.empty() ? "AUTH" : "SELECT",
                                   ": ", (*replies)[i].str);
      Disconnect();
      // A wrong password or database is a configuration error, not an outage.
      return absl::FailedPreconditionError(message);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisReply>> HiredisClient::Pipeline(
    const std::vector<RedisCommand>& commands) {
  RedisBatch batch;
  for (const RedisCommand& c : commands) {
    RedisArgs args;
    for (const std::string& a : c) args.Push(a);
    batch.Add(args);
  }
  return Execute(batch);
}

absl::Status HiredisClient::Write(const std::string& data) {
  // The batch is already encoded: write it to the socket as it is. Handing
  // it to hiredis would copy it into its output buffer and move the rest of
  // that buffer after every partial write (quadratic for large batches).
  // hiredis' output buffer is empty here: every command it queued was
  // written when its replies were read.
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(context_->fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      // EAGAIN here is the send timeout of the blocking socket.
      std::string why = n < 0 ? std::strerror(errno) : "connection closed";
      Disconnect();
      return absl::UnavailableError(
          StrCat("redis ", options_.url.host, ":", options_.url.port, ": write: ", why));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisReply>> HiredisClient::Execute(const RedisBatch& batch) {
  if (!in_flight_.empty()) return absl::FailedPreconditionError("redis: batches in flight");
  if (auto s = Connect(); !s.ok()) return s;
  if (batch.empty()) return std::vector<RedisReply>();
  if (auto s = Write(batch.encoded()); !s.ok()) return s;
  return ReadReplies(batch.size());
}

absl::Status HiredisClient::Send(const RedisBatch& batch) {
  if (auto s = Connect(); !s.ok()) return s;
  if (auto s = Write(batch.encoded()); !s.ok()) return s;
  in_flight_.push_back(batch.size());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisReply>> HiredisClient::Receive() {
  if (in_flight_.empty()) return absl::FailedPreconditionError("redis: nothing in flight");
  size_t count = in_flight_.front();
  in_flight_.pop_front();
  return ReadReplies(count);
}

absl::StatusOr<std::vector<RedisReply>> HiredisClient::ReadReplies(size_t count) {
  if (count == kLost || context_ == nullptr) {
    return absl::UnavailableError(
        StrCat("redis ", options_.url.host, ":", options_.url.port, ": connection lost"));
  }
  std::vector<RedisReply> replies;
  replies.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return Fail("read");
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(Convert(reply));
    freeReplyObject(reply);
  }
  return replies;
}

}  // namespace turnbroker
