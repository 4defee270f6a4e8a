#include "turnbroker/common/runtime.h"

#include "absl/synchronization/mutex.h"

namespace turnbroker {

void InitRuntime() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace turnbroker
