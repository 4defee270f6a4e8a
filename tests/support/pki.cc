#include "pki.h"

#include <fstream>

namespace turnbroker::testing {
namespace {

bool Openssl(const std::vector<std::string>& args, std::string* error) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = Run(argv);
  if (r.exit_code != 0) *error += r.output;
  return r.exit_code == 0;
}

bool MakeCa(const std::string& dir, const std::string& name, std::string* error) {
  return Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", dir + "/" + name + ".key", "-out", dir + "/" + name + ".pem",
                  "-days", "2", "-subj", "/CN=" + name},
                 error);
}

bool Issue(const std::string& dir, const std::string& ca, const std::string& name,
           const std::string& subject, const std::string& extensions, std::string* error) {
  std::string ext_file = dir + "/" + name + ".ext";
  std::ofstream(ext_file) << extensions << "\n";
  return Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", dir + "/" + name + ".key", "-out", dir + "/" + name + ".csr", "-subj",
                  subject},
                 error) &&
         Openssl({"x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", dir + "/" + ca + ".pem",
                  "-CAkey", dir + "/" + ca + ".key", "-CAcreateserial", "-out",
                  dir + "/" + name + ".pem", "-days", "2", "-extfile", ext_file},
                 error);
}

}  // namespace

bool MakeTestPki(const std::string& dir, Pki* pki, std::string* error) {
  pki->dir = dir;
  pki->ca = dir + "/ca.pem";
  const std::string client = "extendedKeyUsage=clientAuth\n";
  const std::string publisher = client + "subjectAltName=URI:urn:turnbroker:role:publisher";
  return MakeCa(dir, "ca", error) && MakeCa(dir, "otherca", error) &&
         Issue(dir, "ca", "server", "/CN=turn-broker",
               "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth", error) &&
         Issue(dir, "ca", "publisher", "/CN=pcscf-1", publisher, error) &&
         Issue(dir, "ca", "publisher2", "/CN=pcscf-2", publisher, error) &&
         Issue(dir, "ca", "publisher-san", "/CN=host-7.example.net",
               publisher + ",URI:urn:turnbroker:issuer:pcscf-7", error) &&
         Issue(dir, "ca", "subscriber", "/CN=turn-1/OU=subscriber", client, error) &&
         Issue(dir, "ca", "operator", "/CN=ops",
               client + "subjectAltName=URI:urn:turnbroker:role:operator", error) &&
         Issue(dir, "ca", "publisher-operator", "/CN=ops-tool",
               client +
                   "subjectAltName=URI:urn:turnbroker:role:publisher,"
                   "URI:urn:turnbroker:role:operator",
               error) &&
         Issue(dir, "ca", "minter", "/CN=pcscf-m1",
               client + "subjectAltName=URI:urn:turnbroker:role:minter", error) &&
         Issue(dir, "ca", "secret-admin", "/CN=secops",
               client + "subjectAltName=URI:urn:turnbroker:role:secret-admin", error) &&
         Issue(dir, "ca", "secret-admin-ou", "/CN=secops-2/OU=secret-admin", client, error) &&
         Issue(dir, "ca", "norole", "/CN=nobody", client, error) &&
         // Subjects that print like a role: a ',' inside one attribute's value.
         Issue(dir, "ca", "forged-cn", "/CN=turn-3,OU=publisher", client, error) &&
         Issue(dir, "ca", "forged-o", "/CN=mallory/O=Example, OU=operator", client, error) &&
         Issue(dir, "otherca", "stranger", "/CN=pcscf-evil", publisher, error);
}

bool IssueTestCertificate(const Pki& pki, const std::string& name, const std::string& subject,
                          const std::string& extensions, std::string* error,
                          const std::string& ca) {
  return Issue(pki.dir, ca, name, subject, extensions, error);
}

}  // namespace turnbroker::testing
