// Minting of TURN long-term credentials for registrations (docs/pcscf-plugin.md).
#ifndef TURNBROKER_PCSCF_MINTER_H_
#define TURNBROKER_PCSCF_MINTER_H_

#include <cstddef>
#include <string>

#include "turnbroker/common/credential.h"

namespace turnbroker::pcscf {

// 96 random bits: 16 base64url characters, unguessable and unique, and they
// say nothing about the subscriber (the WIC's JavaScript and TURN logs see
// the username).
inline constexpr size_t kUsernameRandomBytes = 12;
// 144 random bits (at least 128 are required): 24 base64url characters.
inline constexpr size_t kPasswordRandomBytes = 18;

// A fresh secret: the username and password handed to the WIC, and the
// long-term key HA1 = MD5(username ":" realm ":" password) that the broker
// and the TURN side carry instead of the password.
struct MintedSecret {
  std::string username;
  std::string password;
  LongTermKey key;
};

// Mints secrets for one TURN realm from OpenSSL's CSPRNG (RAND_bytes; the
// process aborts if it fails, never falling back to weak randomness).
// Thread-safe; cheap to copy.
class Minter {
 public:
  explicit Minter(std::string realm) : realm_(std::move(realm)) {}

  MintedSecret Mint() const;
  const std::string& realm() const { return realm_; }

  // The two random parts of Mint(), alone.
  static std::string MintUsername();
  static std::string MintPassword();

 private:
  std::string realm_;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_MINTER_H_
