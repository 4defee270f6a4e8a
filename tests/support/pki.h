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
// publishers (URI SAN urn:turnbroker:role:publisher) "publisher" (CN
// pcscf-1, so issuer pcscf-1), "publisher2" (CN pcscf-2) and
// "publisher-san" (CN host-7.example.net, URI SAN
// urn:turnbroker:issuer:pcscf-7); "subscriber" (OU=subscriber); "operator"
// (URI SAN); "publisher-operator" (both roles: publishes for any issuer);
// approach 1: "minter" (CN pcscf-m1, URI SAN urn:turnbroker:role:minter),
// "secret-admin" (CN secops, URI SAN) and "secret-admin-ou" (CN secops-2,
// OU=secret-admin);
// "norole"; "forged-cn" (/CN=turn-3,OU=publisher: one CN holding a comma)
// and "forged-o" (O=Example\, OU=operator), which have no role; and
// "stranger", a publisher certificate from another CA. Returns false (with
// the openssl output in *error) on failure.
bool MakeTestPki(const std::string& dir, Pki* pki, std::string* error);

// Issues one more certificate in pki.dir, <name>.pem and <name>.key, signed
// by the CA `ca` ("ca" or "otherca"), with `subject` (e.g. "/CN=x") and
// openssl x509 `extensions` (e.g. "subjectAltName=IP:127.0.0.1").
bool IssueTestCertificate(const Pki& pki, const std::string& name, const std::string& subject,
                          const std::string& extensions, std::string* error,
                          const std::string& ca = "ca");

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_SUPPORT_PKI_H_
