// The embedded store's --min-commit-interval-us: under load, requests that
// arrive within the interval after a group started wait and commit together
// as one group; after a quiet spell a request commits at once; shutdown does
// not wait. On a manual clock, so the interval passes only when told to.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "store_fixture.h"

namespace turnbroker::broker::testing {
namespace {

constexpr int64_t kIntervalUs = 10'000'000;  // 10 s of the manual clock

class CommitIntervalTest : public StoreTest {
 protected:
  void SetUp() override {
    options_.min_commit_interval_us = kIntervalUs;
    Open();
    store_->SetCommitListener([this] { groups_.fetch_add(1); });
  }

  // Publishes one credential without waiting for its answer.
  std::future<absl::StatusOr<v1::PublishResponse>> PublishAsync(const std::string& username) {
    auto request = std::make_unique<v1::PublishRequest>();
    *request->add_credentials() = MakeCredential(username, kStart + 3'600'000);
    auto done = std::make_shared<std::promise<absl::StatusOr<v1::PublishResponse>>>();
    auto future = done->get_future();
    const v1::PublishRequest* r = request.get();
    requests_.push_back(std::move(request));
    store_->Publish(r, [done](absl::StatusOr<v1::PublishResponse> a) { done->set_value(a); });
    return future;
  }

  static bool Answered(std::future<absl::StatusOr<v1::PublishResponse>>& f,
                       std::chrono::milliseconds within) {
    return f.wait_for(within) == std::future_status::ready;
  }

  std::atomic<int> groups_{0};
  std::vector<std::unique_ptr<v1::PublishRequest>> requests_;
};

TEST_F(CommitIntervalTest, RequestsWithinTheIntervalWaitAndCommitAsOneGroup) {
  auto first = PublishAsync("first");
  ASSERT_TRUE(Answered(first, std::chrono::seconds(10))) << "the first commit must not wait";
  ASSERT_TRUE(first.get().ok());
  EXPECT_EQ(groups_.load(), 1);

  auto a = PublishAsync("a");
  auto b = PublishAsync("b");
  auto c = PublishAsync("c");
  // The clock has not moved: the interval since the first group has not
  // passed, so nothing more is committed or answered.
  EXPECT_FALSE(Answered(a, std::chrono::milliseconds(200)));
  EXPECT_EQ(state().head(), 1u);

  clock_.Advance(kIntervalUs / 1000);
  ASSERT_TRUE(Answered(a, std::chrono::seconds(10)));
  ASSERT_TRUE(Answered(b, std::chrono::seconds(10)));
  ASSERT_TRUE(Answered(c, std::chrono::seconds(10)));
  auto ra = a.get(), rb = b.get(), rc = c.get();
  ASSERT_TRUE(ra.ok() && rb.ok() && rc.ok());
  // One group, in arrival order.
  EXPECT_EQ(groups_.load(), 2);
  EXPECT_EQ(ra->revision(), 2u);
  EXPECT_EQ(rb->revision(), 3u);
  EXPECT_EQ(rc->revision(), 4u);
}

TEST_F(CommitIntervalTest, ARequestAfterAQuietSpellCommitsAtOnce) {
  auto first = PublishAsync("first");
  ASSERT_TRUE(Answered(first, std::chrono::seconds(10)));
  clock_.Advance(kIntervalUs / 1000 + 1);
  // The interval has passed since the last group: no wait, whatever real
  // time does (the manual clock stands still from here).
  auto later = PublishAsync("later");
  ASSERT_TRUE(Answered(later, std::chrono::seconds(10)));
  EXPECT_TRUE(later.get().ok());
  EXPECT_EQ(groups_.load(), 2);
}

TEST_F(CommitIntervalTest, ShutdownCommitsAHeldGroupWithoutWaiting) {
  auto first = PublishAsync("first");
  ASSERT_TRUE(Answered(first, std::chrono::seconds(10)));
  auto held = PublishAsync("held");
  EXPECT_FALSE(Answered(held, std::chrono::milliseconds(100)));
  store_->Shutdown();  // answers everything queued before it
  ASSERT_TRUE(Answered(held, std::chrono::seconds(1)));
  auto r = held.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revision(), 2u);
}

TEST_F(CommitIntervalTest, ZeroCommitsEachGroupAsSoonAsThePreviousIsDone) {
  options_.min_commit_interval_us = 0;
  Open();
  for (int i = 0; i < 3; ++i) {
    auto f = PublishAsync("u" + std::to_string(i));
    ASSERT_TRUE(Answered(f, std::chrono::seconds(10))) << i;
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_EQ(state().head(), 3u);
}

}  // namespace
}  // namespace turnbroker::broker::testing
