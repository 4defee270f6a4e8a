#include "turnbroker/common/runtime.h"

#include <pthread.h>

#include "absl/synchronization/mutex.h"
#include "turnbroker/common/log.h"

namespace turnbroker {

void InitRuntime() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

TerminationSignals::TerminationSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

int TerminationSignals::Wait() {
  int signal = 0;
  while (sigwait(&signals_, &signal) != 0) {
  }
  LogInfo("signal received").Kv("signal", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  return signal;
}

}  // namespace turnbroker
