// libFuzzer target: the credential model's validation (common/credential.h)
// over any bytes: each field validator, hex parsing, and a whole Credential
// and Selector decoded from the wire as the broker receives them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "quiet_protobuf.h"
#include "turnbroker/common/credential.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  turnbroker::fuzz::QuietProtobuf();
  using namespace turnbroker;
  std::string_view s(reinterpret_cast<const char*>(data), size);
  (void)ValidateRealm(s, "realm");
  (void)ValidateUsername(s, "username");
  (void)ValidateKey(s, "key");
  (void)ValidateSubscriber(s, "subscriber");
  (void)ValidateIssuer(s, "issuer");
  (void)ValidateScope(s, "scope");
  (void)ValidateReason(s, "reason");
  std::string bytes;
  if (ParseHex(s, &bytes)) {
    if (bytes.size() * 2 != s.size()) std::abort();
    std::string lower = HexLower(bytes);
    std::string back;
    if (!ParseHex(lower, &back) || back != bytes) std::abort();
  }
  v1::Credential c;
  if (c.ParseFromArray(data, static_cast<int>(size))) {
    CredentialLimits limits;
    absl::Status st = ValidateCredential(c, limits, 1'700'000'000'000, "credentials[0]");
    if (st.ok()) {
      // What validation accepts, the rest of the system may rely on.
      if (ValidateUsername(c.username(), "u").ok() != true) std::abort();
      if (c.key().size() != kKeyBytes) std::abort();
    } else if (std::string(st.message()).rfind("credentials[0]", 0) != 0) {
      std::abort();  // every message names the field
    }
  }
  v1::Selector sel;
  if (sel.ParseFromArray(data, static_cast<int>(size))) (void)ValidateSelector(sel, "selector");
  return 0;
}
