// A Redis connection, as both parts that talk to Redis use it: the TURN side
// (turn-credential-sync writes coturn's user database) and the broker's Redis
// store (broker/redis_store.h). The URL syntax of the command lines, a reply
// value type, an interface at the seam (tests inject a fake) and its hiredis
// implementation.
//
// Scope: RESP2 over TCP, no TLS (hiredis 0.14 has neither RESP3 nor TLS; see
// docs/toolchain.md). Keep Redis on loopback or a private network.
#ifndef TURNBROKER_COMMON_REDIS_H_
#define TURNBROKER_COMMON_REDIS_H_

#include <cstdint>
#include <deque>
#include <initializer_list>
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
absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view text, std::string_view field);

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

// Arguments of one command, encoded as RESP bulk strings as they are added:
// for variadic commands (ZADD, HSET) built up argument by argument.
class RedisArgs {
 public:
  RedisArgs() = default;
  RedisArgs(std::initializer_list<std::string_view> args);
  RedisArgs& Push(std::string_view arg);
  void Reserve(size_t bytes) { body_.reserve(bytes); }
  size_t size() const { return count_; }
  const std::string& encoded() const { return body_; }

 private:
  std::string body_;
  size_t count_ = 0;
};

// Commands encoded in RESP as they are added, sent in one write. Building a
// batch copies each argument once, where a vector of commands would copy it
// three times (string, vector, client buffer).
class RedisBatch {
 public:
  void Add(std::initializer_list<std::string_view> args) { Add(RedisArgs(args)); }
  void Add(const RedisArgs& args);
  // Room for about `bytes` of encoding and `commands` commands.
  void Reserve(size_t bytes, size_t commands) {
    resp_.reserve(bytes);
    offsets_.reserve(commands);
  }
  size_t size() const { return offsets_.size(); }
  bool empty() const { return offsets_.empty(); }
  const std::string& encoded() const { return resp_; }
  // "COMMAND key" of command i, for messages.
  std::string name(size_t i) const;
  // Back to commands (for clients without a raw path, and tests).
  std::vector<RedisCommand> Decode() const;

 private:
  std::string resp_;
  std::vector<size_t> offsets_;  // where each command starts
};

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

  // The same for an encoded batch. The default decodes it for Pipeline.
  virtual absl::StatusOr<std::vector<RedisReply>> Execute(const RedisBatch& batch);

  // Execute in two halves, so that Redis runs one batch while the caller
  // prepares the next: Send() writes a batch without waiting; Receive()
  // returns the replies of the oldest batch sent and not yet received.
  // Nothing else may be called while batches are in flight. The defaults
  // run the batch at Send() and keep its replies for Receive().
  virtual absl::Status Send(const RedisBatch& batch);
  virtual absl::StatusOr<std::vector<RedisReply>> Receive();
  virtual size_t in_flight() const { return sent_.size(); }

  // One command; an error reply becomes an INTERNAL status with its text.
  absl::StatusOr<RedisReply> Command(RedisCommand command);

 private:
  std::deque<absl::StatusOr<std::vector<RedisReply>>> sent_;
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
  absl::StatusOr<std::vector<RedisReply>> Execute(const RedisBatch& batch) override;
  absl::Status Send(const RedisBatch& batch) override;
  absl::StatusOr<std::vector<RedisReply>> Receive() override;
  size_t in_flight() const override { return in_flight_.size(); }

  const RedisOptions& options() const { return options_; }

 private:
  absl::Status Connect();
  absl::Status Write(const std::string& data);
  absl::StatusOr<std::vector<RedisReply>> ReadReplies(size_t count);
  void Disconnect();
  absl::Status Fail(std::string_view what);

  const RedisOptions options_;
  redisContext* context_ = nullptr;
  // Reply counts of batches sent; kLost once the connection is gone.
  static constexpr size_t kLost = static_cast<size_t>(-1);
  std::deque<size_t> in_flight_;
};

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_REDIS_H_
