// Test support: real servers as child processes, on free loopback ports, in
// the test's own temporary folder; always stopped, even when a test fails.
#ifndef TURNBROKER_TESTS_SUPPORT_PROCESS_H_
#define TURNBROKER_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace turnbroker::testing {

// A folder removed at destruction (kept if TURNBROKER_KEEP_TEST_DIRS is set).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A free TCP port on 127.0.0.1 (also free for UDP, for TURN servers).
int FreePort();

// Path of a binary built by this project (e.g. "turn-broker").
std::string BuiltBinary(const std::string& name);

// Polls `done` every 10 ms until it returns true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// A child process whose stdout and stderr go to `log_path`. Killed
// (SIGKILL, whole process group) at destruction if still running; it also
// dies if the test process dies.
class Subprocess {
 public:
  Subprocess(std::vector<std::string> argv, std::string log_path,
             std::vector<std::string> extra_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` to the process. SIGSTOP returns only once every thread
  // of it has stopped (up to 5 s): kill() only asks, and on a busy machine
  // the process can go on serving for a while (a test that freezes a
  // server must not race its last requests).
  void Signal(int signal);
  // Waits for exit; the exit status as from waitpid, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void Kill();
  // Everything the process printed so far.
  std::string Output() const;
  // Waits until the output contains `text`; returns the line holding it.
  std::optional<std::string> WaitForOutput(const std::string& text,
                                           std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

// Resident set size of a process in KiB (VmRSS), or -1.
int64_t ResidentKb(pid_t pid);

// Runs a command to completion; returns its exit status and output.
struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string output;  // stdout and stderr
};
RunResult Run(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(30),
              std::vector<std::string> extra_env = {});

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_PROCESS_H_
