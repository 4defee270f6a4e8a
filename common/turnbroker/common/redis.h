// A Redis connection, as every part that talks to Redis uses it: the URL
// syntax of the command lines, a reply value type, an interface at the seam
// (tests inject a fake) and its hiredis implementation.
//
// Scope: RESP2 over TCP, no TLS (hiredis 0.14 has neither RESP3 nor TLS; see
// docs/toolchain.md). Keep Redis on loopback or a private network.
#ifndef TURNBROKER_COMMON_REDIS_H_
#define TURNBROKER_COMMON_REDIS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct redisContext;

namespace turnbroker {

// redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
struct RedisUrl {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string user;      // empty: AUTH with the password only
  std::string password;  // empty: no AUTH
  int db = 0;

  // The URL without the password, for logs.
  std::string Redacted() const;
};

// INVALID_ARGUMENT naming `field` on error.
absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view text,
                                       std::string_view field);

// One reply. Error replies are values (type kError), not failed calls: in a
// pipeline or a MULTI one command may fail while the others succeed.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kError, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  // "ERR ..." for errors, "(nil)", the value otherwise; for messages.
  std::string ToString() const;
};

using RedisCommand = std::vector<std::string>;

// A client of one Redis database. Not thread-safe: one owner thread.
class RedisClient {
 public:
  virtual ~RedisClient() = default;

  // Sends `commands` in one pipeline (one write, one round trip) and returns
  // their replies in order. UNAVAILABLE when the connection failed or timed
  // out: nothing is known about which commands ran. The next call
  // reconnects.
  virtual absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisCommand>& commands) = 0;

  // One command; an error reply becomes an INTERNAL status with its text.
  absl::StatusOr<RedisReply> Command(RedisCommand command);
};

struct RedisOptions {
  RedisUrl url;
  int connect_timeout_ms = 2'000;
  // A reply slower than this fails the call (UNAVAILABLE).
  int io_timeout_ms = 5'000;
};

// RedisClient over hiredis' blocking API. Connects on first use and after a
// failure; AUTH and SELECT are sent on every connect.
class HiredisClient : public RedisClient {
 public:
  explicit HiredisClient(RedisOptions options);
  ~HiredisClient() override;
  HiredisClient(const HiredisClient&) = delete;
  HiredisClient& operator=(const HiredisClient&) = delete;

  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisCommand>& commands) override;

  const RedisOptions& options() const { return options_; }

 private:
  absl::Status Connect();
  void Disconnect();
  absl::Status Fail(std::string_view what);

  const RedisOptions options_;
  redisContext* context_ = nullptr;
};

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_REDIS_H_
