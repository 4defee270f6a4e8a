// Polling with the default deadline of the eP-CSCF tests.
#ifndef TURNBROKER_TESTS_PCSCF_WAIT_FOR_H_
#define TURNBROKER_TESTS_PCSCF_WAIT_FOR_H_

#include <chrono>
#include <functional>

#include "process.h"

namespace turnbroker::pcscf::testing {

// Polls `done` for up to 10 s.
inline bool WaitFor(const std::function<bool()>& done) {
  return ::turnbroker::testing::WaitUntil(done, std::chrono::seconds(10));
}

}  // namespace turnbroker::pcscf::testing

#endif  // TURNBROKER_TESTS_PCSCF_WAIT_FOR_H_
