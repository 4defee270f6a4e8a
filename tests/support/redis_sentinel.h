// A real Redis Sentinel for tests (`redis-server CONFIG --sentinel`, which is
// what Debian's redis-sentinel runs): on a free loopback port, monitoring one
// primary under a master name with a quorum, with short timeouts so a
// failover on loopback takes a few seconds.
#ifndef TURNBROKER_TESTS_SUPPORT_REDIS_SENTINEL_H_
#define TURNBROKER_TESTS_SUPPORT_REDIS_SENTINEL_H_

#include <memory>
#include <string>

#include "process.h"
#include "turnbroker/common/redis.h"

namespace turnbroker::testing {

class RedisSentinel {
 public:
  // Starts a sentinel watching 127.0.0.1:`primary_port` as `master`;
  // waits until it monitors it. ADD_FAILURE if it does not start in 10 s.
  RedisSentinel(const TempDir& dir, const std::string& master, int primary_port, int quorum = 2,
                int down_after_ms = 1'000);
  ~RedisSentinel();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The primary this sentinel names now (SENTINEL get-master-addr-by-name),
  // as a port; 0 if it gives none.
  int PrimaryPort();

 private:
  const std::string master_;
  const int port_;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<turnbroker::HiredisClient> client_;
};

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_REDIS_SENTINEL_H_
