// The seed's whole flow with real parts: sipp REGISTER -> Kamailio ->
// pcscf-turn-agent -> turn-broker -> turn-credential-sync -> coturn's Redis
// -> coturn (turnutils_uclient allocates with the credential from the 200
// OK); de-REGISTER -> a new allocation is refused and the live one ended.
//
// Needs the TURN side (issue 3): turn-credential-sync and the test peers of
// tests/support (RedisServer, CoturnServer, TurnPeer, TurnClient) and the
// turn-plugin library's CoturnCli. tests/e2e/CMakeLists.txt builds this only
// when those targets exist; at run time it skips if the sync binary is
// missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>

#include "coturn.h"
#include "pcscf_stack.h"
#include "redis_server.h"
#include "sync_process.h"
#include "turnbroker/turn/coturn_admin.h"

namespace turnbroker::pcscf::testing {
namespace {

using ::turnbroker::testing::BuiltBinary;
using ::turnbroker::testing::CoturnOptions;
using ::turnbroker::testing::CoturnServer;
using ::turnbroker::testing::RedisServer;
using ::turnbroker::testing::Subprocess;
using ::turnbroker::testing::SyncProcess;
using ::turnbroker::testing::SyncProcessOptions;
using ::turnbroker::testing::TempDir;
using ::turnbroker::testing::TryAllocate;
using ::turnbroker::testing::TurnClient;
using ::turnbroker::testing::TurnPeer;

const char kRealm[] = "example.org";
const char kCliPassword[] = "pcscf-e2e-cli";

std::unique_ptr<SyncProcess> StartSync(const TempDir& dir, const std::string& broker,
                                       const RedisServer& redis, int cli_port) {
  return std::make_unique<SyncProcess>(dir, redis,
                                       SyncProcessOptions{.broker = broker,
                                                          .realm = kRealm,
                                                          .name = "pcscf-e2e",
                                                          .coturn_cli_port = cli_port,
                                                          .coturn_cli_password = kCliPassword,
                                                          .extra_args = {}});
}

class PcscfTurnFlowTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(PcscfTurnFlowTest, RegisterAllocateDeRegisterRefusedAndLiveAllocationEnded) {
  RedisServer redis(dir_);
  CoturnServer coturn(dir_, CoturnOptions{kRealm, redis.port(), kCliPassword});
  TurnPeer peer(dir_);
  PcscfStackOptions o;
  o.agent_args = {"--turn-uri",
                  "turn:127.0.0.1:" + std::to_string(coturn.port()) + "?transport=udp"};
  PcscfStack stack(dir_, o);
  auto sync = StartSync(dir_, stack.broker().address(), redis, coturn.cli_port());

  // REGISTER: the 200 OK carries the credential...
  auto reg = stack.Sipp("register.xml", "alice", 600);
  ASSERT_EQ(reg.exit_code, 0) << reg.output;
  auto cred = HeaderIn(reg.log.at(0));
  ASSERT_TRUE(cred);
  EXPECT_EQ(cred->urls.at(0), o.agent_args[1]);
  // ...and coturn accepts it (the sync applies it within moments).
  ASSERT_TRUE(WaitFor([&] {
    return TryAllocate(dir_, coturn, peer, cred->username, cred->password);
  })) << sync->process().Output();
  EXPECT_FALSE(TryAllocate(dir_, coturn, peer, cred->username, "not-the-password"));

  // A call in progress: a live allocation with that credential.
  TurnClient live(dir_, coturn, peer, cred->username, cred->password);
  ASSERT_TRUE(live.Allocated());
  ::turnbroker::turn::CoturnCli cli(::turnbroker::turn::CoturnCliOptions{
      {"127.0.0.1", static_cast<uint16_t>(coturn.cli_port())}, kCliPassword});
  // The number of coturn sessions of the credential; nullopt when the CLI
  // call failed (never counted as "no session": that would make the check
  // below pass without coturn having said anything).
  absl::Status cli_error;
  auto sessions = [&]() -> std::optional<size_t> {
    auto ids = cli.Sessions(kRealm, cred->username);
    if (!ids.ok()) {
      cli_error = ids.status();
      return std::nullopt;
    }
    return ids->size();
  };
  ASSERT_TRUE(WaitFor([&] {
    auto n = sessions();
    return n && *n > 0;
  })) << "coturn CLI: "
      << cli_error;

  // de-REGISTER: new allocations are refused and the live one is ended.
  auto dereg = stack.Sipp("deregister.xml", "alice", 0);
  ASSERT_EQ(dereg.exit_code, 0) << dereg.output;
  EXPECT_FALSE(HeaderIn(dereg.log.at(0)));
  EXPECT_TRUE(WaitFor([&] {
    return !TryAllocate(dir_, coturn, peer, cred->username, cred->password);
  })) << sync->process().Output();
  EXPECT_TRUE(WaitFor([&] {
    auto n = sessions();
    return n && *n == 0;
  })) << "coturn CLI: "
      << cli_error << "\n"
      << sync->process().Output();
  // Once more, and the CLI call itself must succeed.
  auto after = cli.Sessions(kRealm, cred->username);
  ASSERT_TRUE(after.ok()) << "coturn CLI: " << after.status();
  EXPECT_TRUE(after->empty()) << "live allocation not ended";
}

TEST_F(PcscfTurnFlowTest, BrokerDownNoCredentialReachesTheWicThatCoturnWouldRefuse) {
  RedisServer redis(dir_);
  CoturnServer coturn(dir_, CoturnOptions{kRealm, redis.port(), kCliPassword});
  TurnPeer peer(dir_);
  PcscfStack stack(dir_);
  auto sync = StartSync(dir_, stack.broker().address(), redis, coturn.cli_port());
  // Every credential a WIC ever got is accepted by coturn; with the broker
  // down the 200 OK carries none.
  auto ok = stack.Sipp("register.xml", "bob", 600);
  auto cred = HeaderIn(ok.log.at(0));
  ASSERT_TRUE(cred);
  EXPECT_TRUE(
      WaitFor([&] { return TryAllocate(dir_, coturn, peer, cred->username, cred->password); }));
  stack.broker().process().Kill();
  auto down = stack.Sipp("register.xml", "carol", 600);
  ASSERT_EQ(down.exit_code, 0) << down.output;
  EXPECT_FALSE(HeaderIn(down.log.at(0)));
}

}  // namespace
}  // namespace turnbroker::pcscf::testing
