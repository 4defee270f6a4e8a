// libFuzzer target: the TURN-Credential SIP header (pcscf/sip_header.h):
// parsing any value as the WIC would, and formatting what parsed back to a
// value that parses to the same credential.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "turnbroker/pcscf/sip_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turnbroker::pcscf;
  std::string_view s(reinterpret_cast<const char*>(data), size);
  (void)ValidateIceServerUrl(s, "url");
  auto h = ParseTurnCredentialHeader(s);
  if (!h.ok()) return 0;
  auto formatted = FormatTurnCredentialHeader(*h);
  if (!formatted.ok()) return 0;  // parsing is more lenient than formatting
  auto again = ParseTurnCredentialHeader(*formatted);
  if (!again.ok()) std::abort();
  if (again->username != h->username || again->password != h->password ||
      again->ttl_s != h->ttl_s || again->expires_at_s != h->expires_at_s || again->urls != h->urls)
    std::abort();
  return 0;
}
