#include "redis_sentinel.h"

#include <gtest/gtest.h>

#include <fstream>

namespace turnbroker::testing {

RedisSentinel::RedisSentinel(const TempDir& dir, const std::string& master, int primary_port,
                             int quorum, int down_after_ms)
    : master_(master), port_(FreePort()) {
  // Sentinel rewrites its configuration file: one file per sentinel.
  std::string config = dir.File("sentinel-" + std::to_string(port_) + ".conf");
  {
    std::ofstream out(config);
    out << "port " << port_ << "\nbind 127.0.0.1\ndaemonize no\n"
        << "dir " << dir.path() << "\n"
        << "sentinel monitor " << master << " 127.0.0.1 " << primary_port << " " << quorum << "\n"
        << "sentinel down-after-milliseconds " << master << " " << down_after_ms << "\n"
        << "sentinel failover-timeout " << master << " 10000\n"
        << "sentinel parallel-syncs " << master << " 2\n";
  }
  process_ =
      std::make_unique<Subprocess>(std::vector<std::string>{"redis-server", config, "--sentinel"},
                                   dir.File("sentinel-" + std::to_string(port_) + ".log"));
  if (!process_->WaitForOutput("+monitor master", std::chrono::seconds(10))) {
    ADD_FAILURE() << "redis sentinel did not start:\n" << process_->Output();
  }
  turnbroker::RedisOptions options;
  options.url.host = "127.0.0.1";
  options.url.port = static_cast<uint16_t>(port_);
  options.connect_timeout_ms = 1'000;
  options.io_timeout_ms = 2'000;
  client_ = std::make_unique<turnbroker::HiredisClient>(options);
}

RedisSentinel::~RedisSentinel() = default;

int RedisSentinel::PrimaryPort() {
  auto r = client_->Command({"SENTINEL", "get-master-addr-by-name", master_});
  if (!r.ok() || r->elements.size() != 2) return 0;
  return std::atoi(r->elements[1].str.c_str());
}

}  // namespace turnbroker::testing
