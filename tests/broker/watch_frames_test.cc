// How Watch frames carry events (watch.h): a watcher behind the head gets
// the changes it missed coalesced into few frames, in revision order, none
// above the frame limits; a caught-up watcher gets each commit at once in a
// frame of its own. Over real gRPC sockets (an in-process broker on port 0).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker_client.h"
#include "in_process_broker.h"
#include "turnbroker/broker/server.h"
#include "watch_client.h"

namespace turnbroker::broker {
namespace {

using testing::BrokerClient;
using testing::WatchClient;
using Marker = v1::WatchResponse;

class WatchFramesTest : public ::testing::Test {
 protected:
  void Start() {
    BrokerOptions o = options_;
    o.ephemeral = true;
    testing::InProcessBroker b;
    ASSERT_NO_FATAL_FAILURE(testing::StartInProcessBroker(o, &b));
    server_ = std::move(b.server);
    channel_ = b.channel;
    client_ = std::make_unique<BrokerClient>(channel_);
  }

  // `n` commits of one credential each (one Publish call at a time: one
  // group, one revision each). Returns the epoch.
  std::string PublishEach(int n, int first = 0) {
    for (int i = first; i < first + n; ++i) {
      v1::PublishResponse ack;
      EXPECT_TRUE(client_->Publish({Cred(i)}, &ack).ok());
      epoch_ = ack.epoch();
    }
    return epoch_;
  }

  static v1::Credential Cred(int i) {
    return testing::TestCredential("user-" + std::to_string(i), "ims.example.org", 600'000);
  }

  // A watcher resuming after revision 1 of `epoch` (a replay of the rest).
  static v1::WatchRequest ResumeAfterFirst(const std::string& epoch) {
    v1::WatchRequest r;
    r.set_resume_revision(1);
    r.set_resume_epoch(epoch);
    return r;
  }
  // What a watcher opened with `request` got up to its SYNCED.
  WatchClient::Responses UntilSynced(const v1::WatchRequest& request) {
    WatchClient w(channel_, request);
    EXPECT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
    return w.responses();
  }

  static WatchClient::Responses Frames(const WatchClient::Responses& rs, Marker::Marker marker) {
    WatchClient::Responses out;
    for (const auto& r : rs)
      if (r.marker() == marker) out.push_back(r);
    return out;
  }

  BrokerOptions options_;
  std::unique_ptr<BrokerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BrokerClient> client_;
  std::string epoch_;
};

TEST_F(WatchFramesTest, AWatcherBehindGetsTheMissedCommitsInFewFramesInOrder) {
  Start();
  const int kCommits = 300;
  std::string epoch = PublishEach(kCommits);
  auto rs = UntilSynced(ResumeAfterFirst(epoch));
  EXPECT_EQ(WatchClient::Count(rs, Marker::SNAPSHOT_BEGIN), 0);
  auto events = WatchClient::Events(rs);
  ASSERT_EQ(events.size(), static_cast<size_t>(kCommits - 1));
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].revision(), i + 2);
    EXPECT_EQ(events[i].put().username(), "user-" + std::to_string(i + 1));
  }
  // 299 commits, default limits (4096 events, 1 MiB): one frame.
  auto frames = Frames(rs, Marker::EVENTS);
  EXPECT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames.back().revision(), static_cast<uint64_t>(kCommits));
}

TEST_F(WatchFramesTest, NoFrameExceedsTheByteLimitTrailerIncluded) {
  options_.watch.max_frame_bytes = 1'000;
  Start();
  const int kCommits = 120;
  std::string epoch = PublishEach(kCommits);
  // Replay (resume) and snapshot (a new watcher) alike.
  for (const v1::WatchRequest& request : {ResumeAfterFirst(epoch), v1::WatchRequest()}) {
    auto rs = UntilSynced(request);
    size_t most = 0;
    for (const auto& r : rs) {
      EXPECT_LE(r.ByteSizeLong(), 1'000u) << r.events_size() << " events";
      most = std::max<size_t>(most, r.events_size());
    }
    EXPECT_GT(most, 1u) << "frames carry several events";
    auto events = WatchClient::Events(rs);
    const size_t expected = request.resume_revision() ? kCommits - 1 : kCommits;
    ASSERT_EQ(events.size(), expected);
    for (size_t i = 1; i < events.size(); ++i)
      EXPECT_LT(events[i - 1].revision(), events[i].revision());
    // The limit, not the default 1 MiB, cut the frames.
    EXPECT_GT(Frames(rs, Marker::EVENTS).size(), 2u);
  }
}

TEST_F(WatchFramesTest, NoFrameExceedsTheEventLimit) {
  options_.watch.max_frame_events = 7;
  Start();
  std::string epoch = PublishEach(50);
  auto frames = Frames(UntilSynced(ResumeAfterFirst(epoch)), Marker::EVENTS);
  ASSERT_EQ(frames.size(), 7u);  // 49 events, 7 a frame
  uint64_t next = 2;
  for (const auto& f : frames) {
    EXPECT_EQ(f.events_size(), 7);
    for (const auto& e : f.events()) EXPECT_EQ(e.revision(), next++);
    EXPECT_EQ(f.revision(), next - 1);  // the last revision it covers
  }
}

TEST_F(WatchFramesTest, ACaughtUpWatcherGetsEachCommitAtOnceInItsOwnFrame) {
  Start();
  WatchClient w(channel_, v1::WatchRequest());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  for (int i = 0; i < 5; ++i) {
    PublishEach(1, i);
    // Nothing else is committed: the frame goes out without waiting for
    // more events to share it.
    ASSERT_TRUE(w.WaitFor([i](auto& rs) {
      return WatchClient::Events(rs).size() == static_cast<size_t>(i + 1);
    })) << i;
  }
  auto frames = Frames(w.responses(), Marker::EVENTS);
  ASSERT_EQ(frames.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(frames[i].events_size(), 1);
    EXPECT_EQ(frames[i].events(0).put().username(), "user-" + std::to_string(i));
  }
}

// --min-frame-interval-us: commits that come within the interval of the
// last frame wait for the hub thread and leave together, in order, nothing
// lost; the first one after a quiet spell goes at once.
TEST_F(WatchFramesTest, AFrameIntervalGathersTheCommitsWithinItIntoOneFrame) {
  options_.watch.min_frame_interval_us = 2'000'000;  // far above five commits' time
  Start();
  WatchClient w(channel_, v1::WatchRequest());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  PublishEach(1, 0);
  // The snapshot's SYNCED frame was the last write, so the first commit may
  // wait for the interval too; then the next four share one frame at most.
  PublishEach(4, 1);
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Events(rs).size() == 5; }));
  auto frames = Frames(w.responses(), Marker::EVENTS);
  EXPECT_LE(frames.size(), 2u);
  std::vector<std::string> names;
  for (const auto& f : frames)
    for (const auto& e : f.events()) names.push_back(e.put().username());
  EXPECT_EQ(names, (std::vector<std::string>{"user-0", "user-1", "user-2", "user-3", "user-4"}));
  uint64_t last = 0;
  for (const auto& f : frames) {
    EXPECT_GT(f.revision(), last);
    last = f.revision();
  }
}

TEST_F(WatchFramesTest, AnEventLargerThanTheByteLimitGoesAloneAndNothingIsLost) {
  options_.watch.max_frame_bytes = 50;  // below any credential's event with its trailer
  Start();
  std::string epoch = PublishEach(10);
  auto frames = Frames(UntilSynced(ResumeAfterFirst(epoch)), Marker::EVENTS);
  ASSERT_EQ(frames.size(), 9u);
  for (size_t i = 0; i < frames.size(); ++i) {
    ASSERT_EQ(frames[i].events_size(), 1);
    EXPECT_EQ(frames[i].events(0).revision(), i + 2);
  }
}

}  // namespace
}  // namespace turnbroker::broker
