#include "turnbroker/pcscf/minter.h"

#include "turnbroker/common/random.h"

namespace turnbroker::pcscf {

MintedSecret Minter::Mint() const {
  MintedSecret s;
  // Both lengths are multiples of 3 bytes, so the base64url text has no
  // partial last character and every character carries 6 random bits.
  s.username = Base64Url(RandomBytes(kUsernameRandomBytes));
  s.password = Base64Url(RandomBytes(kPasswordRandomBytes));
  s.key = DeriveLongTermKey(s.username, realm_, s.password);
  return s;
}

}  // namespace turnbroker::pcscf
