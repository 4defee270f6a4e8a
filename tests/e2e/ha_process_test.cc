// turn-broker --store=redis as operators start it: the bad starts exit with
// a message naming the address or the flag.
#include <gtest/gtest.h>

#include <fstream>

#include "process.h"
#include "redis_server.h"

namespace turnbroker {
namespace {

using testing::BuiltBinary;
using testing::Run;
using testing::TempDir;

testing::RunResult Broker(std::vector<std::string> args) {
  args.insert(args.begin(), {BuiltBinary("turn-broker"), "--listen", "127.0.0.1:0"});
  return Run(args, std::chrono::seconds(20));
}

TEST(HaProcessTest, RedisWithoutAnAddressIsAUsageError) {
  auto r = Broker({"--store=redis"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--redis-url"), std::string::npos) << r.output;
}

TEST(HaProcessTest, AnUnreachableRedisExitsNamingTheAddress) {
  int port = testing::FreePort();
  auto r = Broker({"--store=redis", "--redis-url=redis://127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.output;
}

TEST(HaProcessTest, AWrongPasswordExitsNamingTheFlag) {
  TempDir dir;
  testing::RedisServer redis(dir, {"--requirepass", "right"});
  std::ofstream(dir.File("password")) << "wrong\n";
  auto r = Broker({"--store=redis", "--redis-url=" + redis.url(),
                   "--redis-password-file=" + dir.File("password")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--redis-password-file"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("wrong"), std::string::npos) << "the password leaked: " << r.output;
}

}  // namespace
}  // namespace turnbroker
