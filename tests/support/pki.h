// A throwaway PKI for tests, made with the openssl command at test time:
// a CA, a server certificate for 127.0.0.1/localhost, and client
// certificates carrying turnbroker roles.
#ifndef TURNBROKER_TESTS_SUPPORT_PKI_H_
#define TURNBROKER_TESTS_SUPPORT_PKI_H_

#include <string>

#include "process.h"

namespace turnbroker::testing {

struct Pki {
  std::string ca;  // CA certificate (PEM)
  // Each pair is <dir>/<name>.pem and <dir>/<name>.key.
  std::string Cert(const std::string& name) const { return dir + "/" + name + ".pem"; }
  std::string Key(const std::string& name) const { return dir + "/" + name + ".key"; }
  std::string dir;
};

// Makes, in `dir`: the CA; "server" (SAN IP:127.0.0.1, DNS:localhost);
// "publisher" (URI SAN urn:turnbroker:role:publisher); "subscriber"
// (OU=subscriber); "operator" (URI SAN); "norole"; and "stranger", a
// publisher certificate from another CA. Returns false (with the openssl
// output in *error) on failure.
bool MakeTestPki(const std::string& dir, Pki* pki, std::string* error);

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_PKI_H_
