// The benchmarks' /proc sampling (bench/proc_usage.h), on this process.
#include "proc_usage.h"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

namespace turnbroker::bench {
namespace {

double ThreadCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

TEST(ProcUsageTest, CountsTheCpuAndSwitchesOfEveryThread) {
  std::promise<void> done, measured;
  const UsageWindow window(getpid());
  // A second thread does the work: /proc/<pid>/status alone would count only
  // the main thread's switches. It stays alive until the window is read.
  std::thread worker([&] {
    const double start = ThreadCpuMs();
    volatile unsigned x = 1;
    while (ThreadCpuMs() - start < 200) x = x * 1664525u + 1013904223u;
    for (int i = 0; i < 100; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    done.set_value();
    measured.get_future().wait();
  });
  done.get_future().wait();  // the main thread: about one switch
  const std::optional<ProcessUsage> used = window.Stop();
  measured.set_value();
  worker.join();
  ASSERT_TRUE(used.has_value());
  EXPECT_GE(used->cpu_us, 150'000);          // 200 ms of the worker's CPU, in 10 ms ticks
  EXPECT_GE(used->voluntary_switches, 100);  // the worker's sleeps
  EXPECT_GE(used->involuntary_switches, 0);
}

TEST(ProcUsageTest, AProcessThatIsGoneHasNoUsage) {
  EXPECT_FALSE(ReadProcessUsage(0).has_value());
  EXPECT_FALSE(ReadProcessUsage(-1).has_value());
  // PIDs above /proc/sys/kernel/pid_max (at most 2^22) never exist.
  EXPECT_FALSE(ReadProcessUsage(1 << 23).has_value());
  EXPECT_FALSE(UsageWindow(1 << 23).Stop().has_value());
}

TEST(ProcUsageTest, PerCredentialDividesByCredentialsAndTheWindow) {
  ProcessUsage used{.cpu_us = 500'000, .voluntary_switches = 2'000, .involuntary_switches = 500};
  EXPECT_EQ(FormatPerCredential(used, 1'000, 1.0),
            "500.0 µs CPU, 2.00 + 0.50 context switches (voluntary + involuntary) per "
            "credential; 50 % of one core");
  EXPECT_EQ(FormatPerCredential(used, 0, 1.0), "n/a (no credentials in the window)");
  EXPECT_EQ(FormatPerCredential(used, 1'000, 1.0, "message"),
            "500.0 µs CPU, 2.00 + 0.50 context switches (voluntary + involuntary) per "
            "message; 50 % of one core");
}

}  // namespace
}  // namespace turnbroker::bench
