// libFuzzer target: certificate-role extraction (common/tls.h,
// ParseCertificateClaims), the broker's reading of a client certificate.
// The input is tried as PEM text and, base64-encoded into a PEM block, as
// the DER certificate itself, so the X.509 parser and the attribute walk
// get arbitrary certificates. Invariants: only known roles, and an issuer
// only if it is a valid issuer id.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/tls.h"

namespace {

void Check(std::string_view pem) {
  auto claims = turnbroker::ParseCertificateClaims(pem);
  if (!claims.ok()) return;
  if (claims->roles & ~static_cast<uint32_t>(turnbroker::kAllRoles)) std::abort();
  if (!claims->issuer.empty() && !turnbroker::ValidateIssuer(claims->issuer, "issuer").ok())
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Check(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string b64(4 * ((size + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), data, static_cast<int>(size));
  b64.resize(static_cast<size_t>(n));
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  pem += "-----END CERTIFICATE-----\n";
  Check(pem);
  return 0;
}
