// A full disk under the real turn-broker binary (docs/operations.md): the
// store on a small tmpfs, filled up while the broker serves. Publishes are
// refused with UNAVAILABLE, reads and watchers go on, writes work again by
// themselves once there is space, and nothing acknowledged is lost.
// Mounting needs root (CI runs the suite as root); without it the test is
// skipped, saying so.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker_client.h"
#include "broker_process.h"
#include "turnbroker/common/channel.h"
#include "watch_client.h"

namespace turnbroker::testing {
namespace {

using Marker = v1::WatchResponse;
using ::testing::AnyOf;

class HostileDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs (CI runs as root)";
    mnt_ = dir_.File("mnt");
    ASSERT_EQ(mkdir(mnt_.c_str(), 0700), 0);
    RunResult r =
        turnbroker::testing::Run({"mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt_});
    ASSERT_EQ(r.exit_code, 0) << "mount: " << r.output;
    mounted_ = true;
  }
  void TearDown() override {
    broker_.reset();  // before the file system goes
    if (mounted_) turnbroker::testing::Run({"umount", "-l", mnt_});
  }

  // Fills the file system up; returns the filler's path.
  std::string Fill() {
    std::string path = mnt_ + "/filler";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    std::string chunk(4096, 'x');
    while (write(fd, chunk.data(), chunk.size()) > 0) {
    }
    close(fd);
    return path;
  }

  static std::vector<v1::Credential> Batch(int b, int n) {
    std::vector<v1::Credential> out;
    for (int i = 0; i < n; ++i)
      out.push_back(TestCredential("d" + std::to_string(b) + "-" + std::to_string(i)));
    return out;
  }

  TempDir dir_;
  std::string mnt_;
  bool mounted_ = false;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(HostileDiskTest, AFullDiskRefusesPublishesAndRecoversByItself) {
  broker_ =
      std::make_unique<BrokerProcess>(dir_, std::vector<std::string>{"--data-dir", mnt_ + "/data"});
  auto channel = *MakeChannel(ChannelOptions{broker_->address()});
  BrokerClient client(channel);
  ASSERT_TRUE(client.Publish(Batch(0, 100)).ok());
  WatchClient watcher(channel, v1::WatchRequest());
  ASSERT_TRUE(
      watcher.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));

  std::string filler = Fill();
  // Publish until the store cannot write any more (pages already in its
  // files may take a few batches first).
  size_t accepted = 100;
  grpc::Status refused;
  for (int b = 1; b < 200 && refused.ok(); ++b) {
    std::vector<v1::Credential> batch = Batch(b, 500);
    refused = client.Publish(batch);
    if (refused.ok()) accepted += batch.size();
  }
  ASSERT_FALSE(refused.ok()) << "the disk never filled";
  EXPECT_THAT(refused.error_code(),
              AnyOf(grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::RESOURCE_EXHAUSTED))
      << refused.error_message();
  // Still serving: no exit, no crash loop. Reads and watchers work.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(broker_->process().running()) << broker_->process().Output();
  EXPECT_EQ(client.Status().live_credentials(), accepted);
  EXPECT_TRUE(client.Get("d0-0").ok());
  EXPECT_FALSE(watcher.finished().has_value());
  EXPECT_TRUE(watcher.WaitFor(
      [&](auto& rs) { return WatchClient::Events(rs).size() == accepted; }));  // with the snapshot
  EXPECT_EQ(client.Publish(Batch(900, 500)).error_code(), refused.error_code())
      << "still full: still refused";

  // Space returns: publishes work again, with no restart.
  ASSERT_EQ(unlink(filler.c_str()), 0);
  grpc::Status again;
  for (int i = 0; i < 50; ++i) {
    again = client.Publish(Batch(1000, 10));
    if (again.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(again.ok()) << again.error_message();
  accepted += 10;
  EXPECT_TRUE(watcher.WaitFor(
      [&](auto& rs) { return WatchClient::Events(rs).size() == accepted; }));  // with the snapshot

  // Nothing acknowledged was lost: all of it is there after a crash.
  kill(broker_->process().pid(), SIGKILL);
  broker_->process().Wait(std::chrono::seconds(5));
  broker_->Restart();
  BrokerClient after(*MakeChannel(ChannelOptions{broker_->address()}));
  EXPECT_EQ(after.Status().live_credentials(), accepted);
  EXPECT_THAT(broker_->process().Output(), ::testing::Not(::testing::HasSubstr("level=error")));
}

}  // namespace
}  // namespace turnbroker::testing
