// The TURN-Credential SIP header: how the eP-CSCF hands a TURN credential to
// the WIC in the 200 OK of REGISTER. Syntax, ABNF and a JavaScript parser:
// docs/sip-header.md. Example (one line):
//
//   TURN-Credential: username="Yc3kV0aQxJ2m8PLq";password="...";ttl=3600;
//     expires_at=1764302400;urls="turn:turn.example.org:3478?transport=udp"
//
// The WIC puts `urls` (split at spaces), `username` and `password` (as
// `credential`) into one RTCPeerConnection iceServers entry.
#ifndef TURNBROKER_PCSCF_SIP_HEADER_H_
#define TURNBROKER_PCSCF_SIP_HEADER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace turnbroker::pcscf {

inline constexpr std::string_view kTurnCredentialHeader = "TURN-Credential";

struct TurnCredentialHeader {
  std::string username;
  std::string password;
  int64_t ttl_s = 0;         // lifetime left when the header was made
  int64_t expires_at_s = 0;  // absolute expiry, Unix seconds
  std::vector<std::string> urls;
};

// The header value (without "TURN-Credential: "). INVALID_ARGUMENT naming
// the field if a value has a character the syntax does not allow (a double
// quote, backslash, semicolon, comma, space or control character), or if
// there is no URL.
absl::StatusOr<std::string> FormatTurnCredentialHeader(const TurnCredentialHeader& header);

// Parses a header value as the WIC would; unknown parameters are ignored.
// INVALID_ARGUMENT naming the parameter that is missing or malformed.
absl::StatusOr<TurnCredentialHeader> ParseTurnCredentialHeader(std::string_view value);

// A TURN or STUN server URI (RFC 7065 / RFC 7064) as the header and
// RTCIceServer.urls carry it: scheme turn, turns, stun or stuns, then a host,
// with nothing the header syntax forbids. INVALID_ARGUMENT names `field`.
absl::Status ValidateIceServerUrl(std::string_view url, std::string_view field);

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_SIP_HEADER_H_
