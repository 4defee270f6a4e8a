// A real redis-server for tests: a child process on a free loopback port,
// without persistence, stopped with the test.
#ifndef TURNBROKER_TESTS_SUPPORT_REDIS_SERVER_H_
#define TURNBROKER_TESTS_SUPPORT_REDIS_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.h"
#include "turnbroker/common/redis.h"

namespace turnbroker::testing {

class RedisServer {
 public:
  // Starts redis-server on a free port (or `port`) with `args` added (e.g.
  // {"--replicaof", "127.0.0.1", "6379"}); waits until it accepts
  // connections. ADD_FAILURE if it does not start within 10 s.
  explicit RedisServer(const TempDir& dir, std::vector<std::string> args = {}, int port = 0);
  ~RedisServer();

  int port() const { return port_; }
  // redis://127.0.0.1:PORT/0
  std::string url() const;
  turnbroker::RedisUrl redis_url() const;

  // SIGKILL (a crash: nothing survives, there is no persistence).
  void Kill();
  // Starts again on the same port, empty.
  void Start();
  bool running() { return process_ && process_->running(); }
  pid_t pid() const { return process_ ? process_->pid() : 0; }

  // A connection for assertions (reconnects after a restart).
  turnbroker::RedisClient& client() { return *client_; }
  // Shortcuts that fail the test on a Redis error.
  std::optional<std::string> Get(const std::string& key);
  // PEXPIRETIME: the absolute expiry in Unix ms (-1 none, -2 no key).
  int64_t ExpiryMs(const std::string& key);
  void Set(const std::string& key, const std::string& value);
  std::vector<std::string> Keys(const std::string& pattern = "*");
  // Sends one command; a failed call fails the test.
  turnbroker::RedisReply Command(std::vector<std::string> command);

 private:
  const TempDir& dir_;
  std::vector<std::string> args_;
  int port_;
  int generation_ = 0;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<turnbroker::HiredisClient> client_;
};

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_REDIS_SERVER_H_
