#include "turnbroker/pcscf/publisher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "fake_broker_client.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"

namespace turnbroker::pcscf {
namespace {

using testing::FakeBrokerClient;
using testing::WaitFor;

v1::Credential Cred(const std::string& username) {
  v1::Credential c;
  c.set_realm("example.org");
  c.set_username(username);
  c.set_key(std::string(16, 'k'));
  c.set_expires_at_ms(Clock::System()->NowMs() + 600'000);
  c.set_subscriber("sip:" + username + "@example.org");
  return c;
}

class PublisherTest : public ::testing::Test {
 protected:
  FakeBrokerClient broker_;
};

TEST_F(PublisherTest, AcknowledgesOnceTheBrokerCommitted) {
  Publisher p(&broker_, PublisherOptions());
  EXPECT_TRUE(p.Publish(Cred("u1"), 1000).ok());
  EXPECT_TRUE(broker_.IsLive("u1"));
  EXPECT_TRUE(p.broker_reachable());
  EXPECT_EQ(p.epoch(), broker_.epoch());
}

TEST_F(PublisherTest, ConcurrentPublishesShareCallsWhileOneIsInFlight) {
  PublisherOptions o;
  o.max_in_flight = 1;
  Publisher p(&broker_, o);
  broker_.Hold();
  std::atomic<int> acked{0};
  constexpr int kCount = 200;
  for (int i = 0; i < kCount; ++i) {
    p.PublishAsync(Cred("u" + std::to_string(i)), 5000, [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      ++acked;
    });
  }
  // The first call is held; everything after it queues for the next one.
  ASSERT_TRUE(WaitFor([&] { return broker_.publish_calls() == 1; }));
  broker_.Release();
  ASSERT_TRUE(WaitFor([&] { return acked == kCount; }));
  EXPECT_EQ(broker_.live_count(), size_t{kCount});
  EXPECT_LE(broker_.publish_calls(), 3) << "200 publishes should share a few calls";
}

TEST_F(PublisherTest, BatchesAreCappedAtMaxBatch) {
  PublisherOptions o;
  o.max_in_flight = 1;
  o.max_batch = 10;
  Publisher p(&broker_, o);
  broker_.Hold();
  std::atomic<int> acked{0};
  for (int i = 0; i < 51; ++i) {
    p.PublishAsync(Cred("u" + std::to_string(i)), 5000, [&](absl::Status) { ++acked; });
  }
  ASSERT_TRUE(WaitFor([&] { return broker_.publish_calls() == 1; }));
  broker_.Release();
  ASSERT_TRUE(WaitFor([&] { return acked == 51; }));
  for (size_t n : broker_.batch_sizes()) EXPECT_LE(n, 10u);
}

TEST_F(PublisherTest, RetriesATransientFailureWithinTheDeadline) {
  Publisher p(&broker_, PublisherOptions());
  ASSERT_TRUE(p.Publish(Cred("warm"), 1000).ok());  // the broker is reachable
  broker_.FailNextPublishes(2, absl::UnavailableError("restarting"));
  EXPECT_TRUE(p.Publish(Cred("u1"), 2000).ok());
  EXPECT_TRUE(broker_.IsLive("u1"));
  EXPECT_EQ(broker_.publish_calls(), 4);
}

// Deadlines and backoffs are kept in the publisher's clock: these run on a
// ManualClock, so nothing depends on how fast this machine is.
TEST_F(PublisherTest, AQueuedCredentialExpiresInTheClocksTimeNotBefore) {
  ManualClock clock(1'800'000'000'000);
  PublisherOptions o;
  o.max_in_flight = 1;
  Publisher p(&broker_, o, nullptr, &clock);
  broker_.Hold();
  std::promise<absl::Status> held, queued;
  p.PublishAsync(Cred("held"), 60'000, [&](absl::Status s) { held.set_value(s); });
  ASSERT_TRUE(WaitFor([&] { return broker_.publish_calls() == 1; }));
  p.PublishAsync(Cred("queued"), 10'000, [&](absl::Status s) { queued.set_value(s); });
  auto result = queued.get_future();
  EXPECT_EQ(result.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  clock.Advance(9'999);
  EXPECT_EQ(result.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  clock.Advance(1);
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(result.get().code(), absl::StatusCode::kDeadlineExceeded);
  broker_.Release();
  EXPECT_TRUE(held.get_future().get().ok());
}

TEST_F(PublisherTest, RetriesOnlyOnceTheBackoffPassedInTheClocksTime) {
  ManualClock clock(1'800'000'000'000);
  PublisherOptions o;
  o.initial_backoff_ms = 40;
  Publisher p(&broker_, o, nullptr, &clock);
  ASSERT_TRUE(p.Publish(Cred("warm"), 1000).ok());
  broker_.FailNextPublishes(1, absl::AbortedError("conflict"));
  std::promise<absl::Status> done;
  p.PublishAsync(Cred("u1"), 10'000, [&](absl::Status s) { done.set_value(s); });
  ASSERT_TRUE(WaitFor([&] { return broker_.publish_calls() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(broker_.publish_calls(), 2) << "the backoff (20-40 ms) has not passed";
  clock.Advance(40);
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(result.get().ok());
  EXPECT_EQ(broker_.publish_calls(), 3);
  EXPECT_TRUE(broker_.IsLive("u1"));
}

TEST_F(PublisherTest, FailsAtOnceWhenTheBrokerIsKnownDown) {
  Publisher p(&broker_, PublisherOptions());
  broker_.SetUnavailable(true);
  int64_t start = MonotonicMicros();
  absl::Status s = p.Publish(Cred("u1"), 5000);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(MonotonicMicros() - start, 1'000'000) << "must not hold a SIP worker 5 s";
  EXPECT_FALSE(p.broker_reachable());
  // Never reachable so far: a single attempt.
  EXPECT_EQ(broker_.publish_calls(), 1);
}

TEST_F(PublisherTest, GivesUpAtTheCredentialsDeadline) {
  Publisher p(&broker_, PublisherOptions());
  broker_.FailNextPublishes(1000, absl::ResourceExhaustedError("rate limit"));
  int64_t start = MonotonicMicros();
  absl::Status s = p.Publish(Cred("u1"), 300);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  int64_t took_ms = (MonotonicMicros() - start) / 1000;
  EXPECT_GE(took_ms, 100);
  EXPECT_LT(took_ms, 1000);
}

TEST_F(PublisherTest, ARefusedBatchIsSplitSoOnlyTheBadCredentialFails) {
  PublisherOptions o;
  o.max_in_flight = 1;
  Publisher p(&broker_, o);
  broker_.RefuseUsername(
      "bad", absl::AlreadyExistsError("credentials[3].username: live with another key"));
  broker_.Hold();
  std::mutex mu;
  std::map<std::string, absl::Status> results;
  for (const char* u : {"first", "a", "b", "bad", "c"}) {
    p.PublishAsync(Cred(u), 5000, [&, u = std::string(u)](absl::Status s) {
      std::lock_guard lock(mu);
      results[u] = s;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return broker_.publish_calls() >= 1; }));
  broker_.Release();
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return results.size() == 5;
  }));
  EXPECT_EQ(results["bad"].code(), absl::StatusCode::kAlreadyExists);
  for (const char* u : {"first", "a", "b", "c"}) {
    EXPECT_TRUE(results[u].ok()) << u << ": " << results[u];
    EXPECT_TRUE(broker_.IsLive(u));
  }
}

TEST_F(PublisherTest, ReportsAnEpochChangeButNotTheFirstEpoch) {
  Publisher p(&broker_, PublisherOptions());
  std::atomic<int> changes{0};
  std::string previous, current;
  p.SetEpochListener([&](const std::string& a, const std::string& b) {
    previous = a;
    current = b;
    ++changes;
  });
  ASSERT_TRUE(p.GetStatus(1000).ok());
  std::string first = broker_.epoch();
  EXPECT_EQ(changes, 0);
  broker_.LoseState();
  ASSERT_TRUE(p.Publish(Cred("u1"), 1000).ok());
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(previous, first);
  EXPECT_EQ(current, broker_.epoch());
}

TEST_F(PublisherTest, DestructionFailsWhatIsQueuedAndWaitsForCallsInFlight) {
  std::promise<absl::Status> queued, held;
  std::thread release;
  {
    PublisherOptions o;
    o.max_in_flight = 1;
    Publisher p(&broker_, o);
    broker_.Hold();
    p.PublishAsync(Cred("held"), 60'000, [&](absl::Status s) { held.set_value(s); });
    ASSERT_TRUE(WaitFor([&] { return broker_.publish_calls() == 1; }));
    p.PublishAsync(Cred("queued"), 60'000, [&](absl::Status s) { queued.set_value(s); });
    release = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      broker_.Release();
    });
  }  // ~Publisher returns only after the held call was answered
  release.join();
  EXPECT_EQ(queued.get_future().get().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(held.get_future().get().ok());
}

TEST_F(PublisherTest, RevokeAndStatusAreSingleAttempts) {
  Publisher p(&broker_, PublisherOptions());
  ASSERT_TRUE(p.Publish(Cred("u1"), 1000).ok());
  v1::RevokeRequest r;
  r.mutable_selector()->set_subscriber("sip:u1@example.org");
  auto revoked = p.Revoke(r, 1000);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked(), 1u);
  broker_.SetUnavailable(true);
  EXPECT_EQ(p.Revoke(r, 1000).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(p.GetStatus(1000).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(broker_.revoked_subscribers().size(), 1u);
}

}  // namespace
}  // namespace turnbroker::pcscf
