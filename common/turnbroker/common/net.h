// Network addresses as the command lines spell them.
#ifndef TURNBROKER_COMMON_NET_H_
#define TURNBROKER_COMMON_NET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace turnbroker {

struct HostPort {
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;

  // "host:port", with brackets around an IPv6 host.
  std::string ToString() const;
};

// Parses "HOST:PORT", "[IPV6]:PORT". Port 0 is allowed only if
// `allow_port_zero` (listen on an ephemeral port). INVALID_ARGUMENT names
// `field` on error.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text, std::string_view field,
                                       bool allow_port_zero = false);

// Parses "HOST:PORT,HOST:PORT,..." (at least one; empty items skipped).
// INVALID_ARGUMENT names `field` and the item on error.
absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text,
                                                        std::string_view field);

// True for "localhost", "::1" and 127.0.0.0/8.
bool IsLoopbackHost(std::string_view host);

// This host's name made an identifier: `prefix` + the host name with every
// character outside [A-Za-z0-9._-] replaced by '-', at most `max_chars` of
// it; `fallback` when the host has no name.
std::string HostNameAsId(std::string_view prefix, size_t max_chars, std::string_view fallback);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_NET_H_
