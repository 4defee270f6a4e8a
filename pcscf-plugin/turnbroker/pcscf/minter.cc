#include "turnbroker/pcscf/minter.h"

#include "turnbroker/common/random.h"

namespace turnbroker::pcscf {

// Both lengths are multiples of 3 bytes, so the base64url text has no
// partial last character and every character carries 6 random bits.
std::string Minter::MintUsername() { return Base64Url(RandomBytes(kUsernameRandomBytes)); }

std::string Minter::MintPassword() { return Base64Url(RandomBytes(kPasswordRandomBytes)); }

MintedSecret Minter::Mint() const {
  MintedSecret s;
  s.username = MintUsername();
  s.password = MintPassword();
  s.key = DeriveLongTermKey(s.username, realm_, s.password);
  return s;
}

}  // namespace turnbroker::pcscf
