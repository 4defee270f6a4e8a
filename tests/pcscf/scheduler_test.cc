// The scheduler runs tasks when its clock says they are due, in due order.
#include "turnbroker/pcscf/scheduler.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "wait_for.h"

namespace turnbroker::pcscf {
namespace {

using testing::WaitFor;

class SchedulerTest : public ::testing::Test {
 protected:
  std::function<void()> Record(int n) {
    return [this, n] {
      std::lock_guard lock(mu_);
      ran_.push_back(n);
    };
  }
  std::vector<int> ran() {
    std::lock_guard lock(mu_);
    return ran_;
  }

  ManualClock clock_{1'800'000'000'000};
  std::mutex mu_;
  std::vector<int> ran_;
};

TEST_F(SchedulerTest, RunsATaskOnlyWhenItsDelayPassedInTheClocksTime) {
  Scheduler scheduler(&clock_);
  scheduler.RunAfter(1'000, Record(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // real time: not enough
  EXPECT_TRUE(ran().empty());
  clock_.Advance(999);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_TRUE(ran().empty());
  clock_.Advance(1);
  ASSERT_TRUE(WaitFor([&] { return ran().size() == 1; }));
  EXPECT_EQ(scheduler.pending(), 0u);
}

TEST_F(SchedulerTest, RunsDueTasksInOrderOfDueTime) {
  Scheduler scheduler(&clock_);
  scheduler.RunAfter(300, Record(3));
  scheduler.RunAfter(100, Record(1));
  scheduler.RunAfter(200, Record(2));
  scheduler.RunAfter(10'000, Record(4));
  clock_.Advance(300);
  ASSERT_TRUE(WaitFor([&] { return ran().size() == 3; }));
  EXPECT_EQ(ran(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(scheduler.pending(), 1u);
}

TEST_F(SchedulerTest, ATaskMaySchedulePeriodicWork) {
  Scheduler scheduler(&clock_);
  std::function<void()> tick = [&] {
    Record(0)();
    scheduler.RunAfter(50, tick);
  };
  scheduler.RunAfter(0, tick);
  ASSERT_TRUE(WaitFor([&] { return ran().size() == 1; }));
  for (size_t n = 2; n <= 4; ++n) {
    clock_.Advance(50);
    ASSERT_TRUE(WaitFor([&] { return ran().size() == n; }));
  }
  scheduler.Stop();
}

TEST_F(SchedulerTest, StopDropsWhatIsNotDueAndRefusesMore) {
  Scheduler scheduler(&clock_);
  scheduler.RunAfter(100, Record(1));
  scheduler.Stop();
  scheduler.RunAfter(0, Record(2));
  clock_.Advance(1'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(ran().empty());
  EXPECT_EQ(scheduler.pending(), 0u);
}

}  // namespace
}  // namespace turnbroker::pcscf
