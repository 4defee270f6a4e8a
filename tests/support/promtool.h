// promtool check metrics (Debian's prometheus package) on a /metrics body:
// the text exposition format as Prometheus parses it, plus its lint rules
// (names, HELP and TYPE lines, counters ending in _total).
#ifndef TURNBROKER_TESTS_SUPPORT_PROMTOOL_H_
#define TURNBROKER_TESTS_SUPPORT_PROMTOOL_H_

#include <string>

namespace turnbroker::testing {

// "" if promtool accepts `text`; else what it said (or that it is missing).
std::string PromtoolProblems(const std::string& text);

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_PROMTOOL_H_
