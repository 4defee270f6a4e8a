// Cryptographic randomness (OpenSSL RAND_bytes).
#ifndef TURNBROKER_COMMON_RANDOM_H_
#define TURNBROKER_COMMON_RANDOM_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace turnbroker {

// `n` random bytes from OpenSSL's CSPRNG. Aborts if the CSPRNG fails: no
// credential or epoch may ever be made from weak randomness.
std::string RandomBytes(size_t n);

// base64url without padding (RFC 4648 §5).
std::string Base64Url(std::string_view bytes);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_RANDOM_H_
