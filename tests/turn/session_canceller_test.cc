// Ending the coturn sessions of revoked users (session_canceller.h).
#include "turnbroker/turn/session_canceller.h"

#include <gtest/gtest.h>

#include <map>

#include "fake_redis.h"
#include "turnbroker/turn/coturn_admin.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;

class FakeCoturn : public CoturnAdmin {
 public:
  absl::StatusOr<std::vector<std::string>> Sessions(std::string_view realm,
                                                    std::string_view username) override {
    if (down) return absl::UnavailableError("cli down");
    listed.push_back(std::string(realm) + "/" + std::string(username));
    auto it = sessions.find(std::string(username));
    return it == sessions.end() ? std::vector<std::string>{} : it->second;
  }
  absl::Status Cancel(std::string_view id) override {
    if (down) return absl::UnavailableError("cli down");
    cancelled.push_back(std::string(id));
    for (auto& [user, ids] : sessions) std::erase(ids, std::string(id));
    return absl::OkStatus();
  }
  bool down = false;
  std::map<std::string, std::vector<std::string>> sessions;
  std::vector<std::string> listed, cancelled;
};

class SessionCancellerTest : public ::testing::Test {
 protected:
  static constexpr int64_t kNow = 1'800'000'000'000;
  void Queue(const std::string& member, int64_t expires) {
    redis_.Pipeline({{"ZADD", keys_.cancel, std::to_string(expires), member}}).IgnoreError();
  }
  ManualClock clock_{kNow};
  FakeRedis redis_{&clock_};
  MetricsRegistry registry_;
  SyncMetrics metrics_{&registry_, &clock_};
  SyncKeys keys_ = SyncKeys::For("n");
  FakeCoturn coturn_;
  SessionCancellerOptions options_{5'000, 0, 100, {}};
  SessionCanceller canceller_{options_, &redis_, keys_, &coturn_, &clock_, &metrics_};
};

TEST_F(SessionCancellerTest, EndsTheSessionsOfQueuedUsersAndDequeuesThem) {
  coturn_.sessions["alice"] = {"11", "12"};
  coturn_.sessions["bob"] = {"21"};
  Queue("example.org/alice", kNow + 60'000);
  ASSERT_TRUE(canceller_.RunOnce().ok());
  EXPECT_EQ(coturn_.cancelled, (std::vector<std::string>{"11", "12"}));
  EXPECT_TRUE(redis_.ZSet(keys_.cancel).empty());
  EXPECT_EQ(metrics_.sessions_cancelled->value(), 2u);
  EXPECT_EQ(coturn_.sessions["bob"].size(), 1u);
}

TEST_F(SessionCancellerTest, KeepsTheQueueWhileCoturnIsUnreachable) {
  coturn_.sessions["alice"] = {"11"};
  Queue("example.org/alice", kNow + 60'000);
  coturn_.down = true;
  EXPECT_FALSE(canceller_.RunOnce().ok());
  EXPECT_EQ(redis_.ZSet(keys_.cancel).size(), 1u);
  coturn_.down = false;
  ASSERT_TRUE(canceller_.RunOnce().ok());
  EXPECT_EQ(coturn_.cancelled, (std::vector<std::string>{"11"}));
}

TEST_F(SessionCancellerTest, DropsUsersWhoseCredentialExpired) {
  Queue("example.org/old", kNow - 1);
  ASSERT_TRUE(canceller_.RunOnce().ok());
  EXPECT_TRUE(coturn_.listed.empty());
  EXPECT_TRUE(redis_.ZSet(keys_.cancel).empty());
}

TEST_F(SessionCancellerTest, ChecksAHandledUserOnceMore) {
  Queue("example.org/alice", kNow + 60'000);
  ASSERT_TRUE(canceller_.RunOnce().ok());  // no session yet
  coturn_.sessions["alice"] = {"31"};      // authenticated as the key went
  ASSERT_TRUE(canceller_.RunOnce().ok());  // recheck_after_ms = 0
  EXPECT_EQ(coturn_.cancelled, (std::vector<std::string>{"31"}));
}

}  // namespace
}  // namespace turnbroker::turn
