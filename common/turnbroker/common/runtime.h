// Process-wide settings and signal handling every turnbroker binary shares.
#ifndef TURNBROKER_COMMON_RUNTIME_H_
#define TURNBROKER_COMMON_RUNTIME_H_

#include <signal.h>

namespace turnbroker {

// Debian's Abseil is built with absl::Mutex deadlock detection on, and gRPC
// locks absl::Mutex on every call: detection cost ~4% of the broker's CPU.
// This turns it off (as a release build of Abseil would have it).
void InitRuntime();

// SIGTERM and SIGINT, taken by one thread with sigwait instead of a handler
// on a random thread. The constructor blocks both in the calling thread, and
// so in every thread started after it: construct it before starting any.
class TerminationSignals {
 public:
  TerminationSignals();
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;

  // Waits for SIGTERM or SIGINT (including one that arrived earlier), logs
  // it, and returns its number.
  int Wait();

 private:
  sigset_t signals_;
};

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_RUNTIME_H_
