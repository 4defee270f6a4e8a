// Process-wide settings every turnbroker binary applies first.
#ifndef TURNBROKER_COMMON_RUNTIME_H_
#define TURNBROKER_COMMON_RUNTIME_H_

namespace turnbroker {

// Debian's Abseil is built with absl::Mutex deadlock detection on, and gRPC
// locks absl::Mutex on every call: detection cost ~4% of the broker's CPU.
// This turns it off (as a release build of Abseil would have it).
void InitRuntime();

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_RUNTIME_H_
