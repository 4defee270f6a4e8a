// The turn-broker binary as operators run it: signals, crashes, slow
// watchers, memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>

#include "broker_client.h"
#include "broker_process.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "watch_client.h"

namespace turnbroker::testing {
namespace {

using Marker = v1::WatchResponse;
using ::testing::HasSubstr;

v1::Credential Cred(const std::string& username) { return TestCredential(username); }

class ProcessTest : public ::testing::Test {
 protected:
  void Connect(const BrokerProcess& b) {
    channel_ = *MakeChannel(ChannelOptions{b.address()});
    client_ = std::make_unique<BrokerClient>(channel_);
  }
  grpc::Status Publish(const std::vector<v1::Credential>& creds,
                       v1::PublishResponse* out = nullptr) {
    return client_->Publish(creds, out);
  }
  grpc::Status Revoke(const std::string& username) { return client_->RevokeUsername(username); }
  grpc::Status Get(const std::string& username) { return client_->Get(username); }

  TempDir dir_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BrokerClient> client_;
};

TEST_F(ProcessTest, SigtermWithOpenStreamsExitsCleanly) {
  BrokerProcess broker(dir_, {"--data-dir", dir_.File("data")});
  Connect(broker);
  ASSERT_TRUE(Publish({Cred("a")}).ok());
  WatchClient w1(channel_, v1::WatchRequest()), w2(channel_, v1::WatchRequest());
  for (auto* w : {&w1, &w2})
    ASSERT_TRUE(w->WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  broker.process().Signal(SIGTERM);
  auto status = broker.process().Wait(std::chrono::seconds(15));
  ASSERT_TRUE(status.has_value()) << "did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  for (auto* w : {&w1, &w2}) {
    ASSERT_TRUE(w->WaitForEnd());
    EXPECT_EQ(w->finished()->error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(w->finished()->error_message(), HasSubstr("shutting down"));
  }
  EXPECT_THAT(broker.process().Output(), HasSubstr("broker stopped"));
}

TEST_F(ProcessTest, SigkillAndRestartKeepsEverythingAcknowledgedAndWatchersResume) {
  BrokerProcess broker(dir_, {"--data-dir", dir_.File("data")});
  Connect(broker);
  WatchClient w(channel_, v1::WatchRequest());
  std::vector<v1::Credential> batch;
  for (int i = 0; i < 200; ++i) batch.push_back(Cred("c" + std::to_string(i)));
  v1::PublishResponse ack;
  ASSERT_TRUE(Publish(batch, &ack).ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Revoke("c" + std::to_string(i)).ok());
  ASSERT_TRUE(Revoke("never-published").ok());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return !rs.empty() && rs.back().revision() == 251; }));
  uint64_t seen = w.responses().back().revision();

  kill(broker.process().pid(), SIGKILL);
  broker.process().Wait(std::chrono::seconds(5));
  ASSERT_TRUE(w.WaitForEnd());
  broker.Restart();
  Connect(broker);

  for (int i = 0; i < 200; ++i) {
    grpc::Status s = Get("c" + std::to_string(i));
    EXPECT_EQ(s.error_code(), i < 50 ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::OK) << i;
  }
  // Revocations survived: no republish of a revoked username.
  EXPECT_EQ(Publish({Cred("c1")}).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Publish({Cred("never-published")}).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::WatchRequest resume;
  resume.set_resume_revision(seen);
  resume.set_resume_epoch(ack.epoch());
  WatchClient again(channel_, resume);
  ASSERT_TRUE(again.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  EXPECT_EQ(WatchClient::Count(again.responses(), Marker::SNAPSHOT_BEGIN), 0)
      << "resumed without a snapshot";
  ASSERT_TRUE(Publish({Cred("after")}).ok());
  ASSERT_TRUE(again.WaitFor([](auto& rs) {
    auto e = WatchClient::Events(rs);
    return e.size() == 1 && e[0].revision() == 252 && e[0].put().username() == "after";
  }));
}

TEST_F(ProcessTest, ASlowWatcherDelaysNoOneAndMemoryStaysBounded) {
  BrokerProcess broker(dir_, {"--ephemeral", "--history-max-events", "20000"});
  Connect(broker);
  // Warm up, then measure from here.
  ASSERT_TRUE(Publish({Cred("warm")}).ok());
  int64_t rss_before = ResidentKb(broker.process().pid());

  // The slow one opens its stream and does not read.
  WatchClient slow(channel_, v1::WatchRequest(), /*start_paused=*/true);
  auto fast_channel = *MakeChannel(ChannelOptions{broker.address()});
  WatchClient fast(fast_channel, v1::WatchRequest());
  ASSERT_TRUE(fast.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));

  constexpr int kBatches = 100, kBatch = 1000;
  int64_t worst_ack_us = 0;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<v1::Credential> batch;
    for (int i = 0; i < kBatch; ++i)
      batch.push_back(Cred("b" + std::to_string(b) + "-" + std::to_string(i)));
    int64_t start = MonotonicMicros();
    ASSERT_TRUE(Publish(batch).ok());
    worst_ack_us = std::max(worst_ack_us, MonotonicMicros() - start);
  }
  const uint64_t head = 1 + kBatches * kBatch;
  // The fast watcher has everything promptly.
  ASSERT_TRUE(fast.WaitFor([&](auto& rs) { return !rs.empty() && rs.back().revision() == head; },
                           std::chrono::seconds(10)));
  EXPECT_LT(worst_ack_us, 2'000'000) << "a publish waited for the slow watcher";

  // Memory: the live set and retained history, not a buffer for the slow
  // watcher (which would be ~15 MB of frames if it were queued).
  int64_t growth_kb = ResidentKb(broker.process().pid()) - rss_before;
  RecordProperty("rss_growth_kb", static_cast<int>(growth_kb));
#ifndef __SANITIZE_ADDRESS__
  EXPECT_LT(growth_kb, 80 * 1024) << "RSS grew by " << growth_kb << " KiB";
#else
  // Under ASan (scripts/sanitize.sh) freed memory stays in ASan's quarantine
  // (256 MB by default) and every block has redzones: RSS measures those, not
  // the broker's buffers (docs/security.md#sanitizers).
#endif

  // The slow watcher fell behind the retained history: when it reads again
  // it is given a snapshot, and ends up with the whole live set.
  slow.Resume();
  ASSERT_TRUE(slow.WaitFor([&](auto& rs) { return !rs.empty() && rs.back().revision() == head; },
                           std::chrono::seconds(20)));
  auto rs = slow.responses();
  bool too_slow = false;
  for (const auto& r : rs)
    too_slow |=
        r.marker() == Marker::SNAPSHOT_BEGIN && r.snapshot_reason() == Marker::WATCHER_TOO_SLOW;
  EXPECT_TRUE(too_slow);
  std::set<std::string> names;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].marker() == Marker::SNAPSHOT_BEGIN) names.clear();  // a snapshot starts anew
    for (const auto& e : rs[i].events())
      if (e.has_put()) names.insert(e.put().username());
  }
  EXPECT_EQ(names.size(), head);
}

// The lines of `output` that start with `prefix`.
std::vector<std::string> LinesStartingWith(const std::string& output, const std::string& prefix) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < output.size()) {
    size_t end = output.find('\n', pos);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(pos, end - pos);
    if (line.rfind(prefix, 0) == 0) lines.push_back(line);
    pos = end + 1;
  }
  return lines;
}

TEST_F(ProcessTest, ASecondBrokerOnTheSameDataDirExitsWithAClearMessage) {
  BrokerProcess first(dir_, {"--data-dir", dir_.File("data")});
  RunResult second = turnbroker::testing::Run(
      {BuiltBinary("turn-broker"), "--listen", "127.0.0.1:0", "--data-dir", dir_.File("data")},
      std::chrono::seconds(15));
  // Exit 1, not a signal (-1): the half-built broker is torn down cleanly.
  EXPECT_EQ(second.exit_code, 1) << second.output;
  auto message = LinesStartingWith(second.output, "turn-broker: ");
  ASSERT_EQ(message.size(), 1u) << second.output;
  EXPECT_THAT(message[0], HasSubstr("--data-dir"));
  EXPECT_THAT(message[0], HasSubstr("in use"));
  // The first one is unaffected.
  EXPECT_TRUE(first.process().running());
  Connect(first);
  EXPECT_TRUE(Publish({Cred("still-serving")}).ok());
}

TEST_F(ProcessTest, ABrokerOnABusyListenPortExitsWithAClearMessage) {
  BrokerProcess first(dir_, {"--ephemeral"});
  // A durable store this time: the store is open when listening fails, and
  // must be closed cleanly on the way out.
  RunResult second = turnbroker::testing::Run(
      {BuiltBinary("turn-broker"), "--listen", first.address(), "--data-dir", dir_.File("second")},
      std::chrono::seconds(15));
  EXPECT_EQ(second.exit_code, 1) << second.output;
  auto message = LinesStartingWith(second.output, "turn-broker: ");
  ASSERT_EQ(message.size(), 1u) << second.output;
  EXPECT_THAT(message[0], HasSubstr("--listen"));
  EXPECT_THAT(message[0], HasSubstr(first.address()));
  EXPECT_TRUE(first.process().running());
  // The data dir is free again: the lock went with the failed process.
  BrokerProcess third(dir_, {"--data-dir", dir_.File("second")});
  EXPECT_TRUE(third.process().running());
}

}  // namespace
}  // namespace turnbroker::testing
