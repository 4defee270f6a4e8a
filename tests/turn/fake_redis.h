// An in-memory RedisClient for unit tests: the subset of commands the TURN
// side uses, with Redis' semantics for them, MULTI/EXEC, expiry against an
// injected clock, a log of the commands received, and outages on demand.
#ifndef TURNBROKER_TESTS_TURN_FAKE_REDIS_H_
#define TURNBROKER_TESTS_TURN_FAKE_REDIS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/redis.h"

namespace turnbroker::turn::testing {

class FakeRedis : public RedisClient {
 public:
  explicit FakeRedis(const Clock* clock) : clock_(clock) {}

  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisCommand>& commands) override;

  // While down, every call fails with UNAVAILABLE. `fail_after_apply`: the
  // next pipeline is applied, then reported failed (a lost EXEC reply).
  bool down = false;
  bool fail_after_apply = false;
  // Every command received, in order.
  std::vector<RedisCommand> log;

  // Direct access for assertions and set-up.
  std::optional<std::string> Get(const std::string& key);
  int64_t ExpiryMs(const std::string& key);  // -1 none, -2 no key
  void Set(const std::string& key, const std::string& value);
  // Drops every key (a restart without persistence, or FLUSHALL).
  void FlushAll() { data_.clear(); }
  std::map<std::string, double> ZSet(const std::string& key);
  std::map<std::string, std::string> Hash(const std::string& key);
  std::set<std::string> Members(const std::string& key);  // a set's
  std::vector<std::string> Keys();

 private:
  struct Value {
    std::string str;
    std::map<std::string, double> zset;
    std::map<std::string, std::string> hash;
    std::set<std::string> set;
    enum { kString, kZSet, kHash, kSet } type = kString;
    int64_t expires_at_ms = -1;
  };
  RedisReply Execute(const RedisCommand& c);
  Value* Find(const std::string& key);
  Value& Create(const std::string& key, decltype(Value::type) type);

  const Clock* clock_;
  std::map<std::string, Value> data_;
  bool in_multi_ = false;
  std::vector<RedisCommand> queued_;
};

}  // namespace turnbroker::turn::testing

#endif  // TURNBROKER_TESTS_TURN_FAKE_REDIS_H_
