#include "turnbroker/common/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/strings.h"

namespace turnbroker {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, std::string_view flag) {
  if (path.empty()) {
    return absl::InvalidArgumentError(StrCat(flag, ": required when any TLS file is given"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(StrCat(flag, ": cannot read '", path, "'"));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(StrCat(flag, ": '", path, "' is not a PEM file"));
  }
  return out.str();
}

struct Pems {
  std::string cert, key, ca;
};

absl::StatusOr<Pems> ReadPems(const TlsFiles& files) {
  auto cert = ReadPem(files.cert, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(files.key, "--tls-key");
  if (!key.ok()) return key.status();
  auto ca = ReadPem(files.ca, "--tls-ca");
  if (!ca.ok()) return ca.status();
  return Pems{*std::move(cert), *std::move(key), *std::move(ca)};
}

uint32_t RoleFromName(std::string_view name) {
  if (name == "publisher") return kRolePublisher;
  if (name == "subscriber") return kRoleSubscriber;
  if (name == "operator") return kRoleOperator;
  if (name == "secret-admin") return kRoleSecretAdmin;
  if (name == "minter") return kRoleMinter;
  return 0;
}

constexpr std::string_view kRoleUriPrefix = "urn:turnbroker:role:";
constexpr std::string_view kIssuerUriPrefix = "urn:turnbroker:issuer:";

std::string_view Asn1View(const ASN1_STRING* s) {
  if (!s) return {};
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<size_t>(ASN1_STRING_length(s))};
}

// A connection's certificate is the same on every call: parse it once. The
// cache holds only certificates the CA signed (gRPC verified them), and is
// emptied when it reaches kMaxCachedCertificates.
constexpr size_t kMaxCachedCertificates = 1'024;

CertificateClaims CachedClaims(std::string_view pem) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* cache = new absl::flat_hash_map<std::string, CertificateClaims>;
  {
    absl::MutexLock lock(&mu);
    if (auto it = cache->find(absl::string_view(pem.data(), pem.size())); it != cache->end())
      return it->second;
  }
  CertificateClaims claims = ParseCertificateClaims(pem).value_or(CertificateClaims{});
  absl::MutexLock lock(&mu);
  if (cache->size() >= kMaxCachedCertificates) cache->clear();
  cache->emplace(std::string(pem), claims);
  return claims;
}

}  // namespace

namespace {

// Both sides' credentials watch their files: gRPC rereads the three files
// every kReloadIntervalS and uses what it read for the handshakes that
// follow, while established connections keep theirs (a key that does not
// match its certificate is skipped until it does). A renewed certificate
// needs no restart (docs/security.md). The files are read once here first
// so that a bad startup configuration is an error naming its flag.
constexpr unsigned kReloadIntervalS = 5;

absl::StatusOr<std::shared_ptr<grpc::experimental::CertificateProviderInterface>> WatchFiles(
    const TlsFiles& files) {
  auto pems = ReadPems(files);
  if (!pems.ok()) return pems.status();
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, kReloadIntervalS);
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  auto provider = WatchFiles(files);
  if (!provider.ok()) return provider.status();
  grpc::experimental::TlsServerCredentialsOptions options(*provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  auto provider = WatchFiles(files);
  if (!provider.ok()) return provider.status();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(*provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // The chain against `ca`, and the name (the target's host, or the
  // channel's SSL target name override) against the certificate's SANs.
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

absl::StatusOr<CertificateClaims> ParseCertificateClaims(std::string_view pem) {
  if (pem.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("certificate: too large");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return absl::ResourceExhaustedError("certificate: out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("certificate: not a PEM X.509 certificate");
  }
  CertificateClaims claims;
  std::vector<std::string> issuers;
  // URI SANs.
  std::unique_ptr<GENERAL_NAMES, void (*)(GENERAL_NAMES*)> sans(
      static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)),
      [](GENERAL_NAMES* n) { GENERAL_NAMES_free(n); });
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
    if (name->type != GEN_URI) continue;
    std::string_view uri = Asn1View(name->d.uniformResourceIdentifier);
    if (uri.starts_with(kRoleUriPrefix)) {
      claims.roles |= RoleFromName(uri.substr(kRoleUriPrefix.size()));
    } else if (uri.starts_with(kIssuerUriPrefix)) {
      issuers.emplace_back(uri.substr(kIssuerUriPrefix.size()));
    }
  }
  // Subject attributes, one entry at a time.
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  std::vector<std::string> common_names;
  for (int i = 0; subject && i < X509_NAME_entry_count(subject); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    std::string_view value = Asn1View(X509_NAME_ENTRY_get_data(entry));
    if (nid == NID_organizationalUnitName) claims.roles |= RoleFromName(value);
    if (nid == NID_commonName) common_names.emplace_back(value);
  }
  if (common_names.size() == 1) claims.common_name = common_names.front();
  if (issuers.size() == 1) {
    if (ValidateIssuer(issuers.front(), "issuer").ok()) claims.issuer = issuers.front();
  } else if (issuers.empty() && !claims.common_name.empty() &&
             ValidateIssuer(claims.common_name, "issuer").ok()) {
    claims.issuer = claims.common_name;
  }
  return claims;
}

absl::StatusOr<CertificateClaims> ReadCertificateClaims(const std::string& path,
                                                        std::string_view flag) {
  auto pem = ReadPem(path, flag);
  if (!pem.ok()) return pem.status();
  auto claims = ParseCertificateClaims(*pem);
  if (!claims.ok()) {
    return absl::InvalidArgumentError(StrCat(flag, ": '", path, "': ", claims.status().message()));
  }
  return claims;
}

Peer PeerOf(const grpc::AuthContext& context) {
  Peer peer;
  if (!context.IsPeerAuthenticated()) {
    // A TLS server requires and verifies client certificates, so an
    // unauthenticated peer is a plaintext one: development mode.
    auto type = context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
    bool tls = !type.empty() && std::string_view(type.front().data(), type.front().size()) ==
                                    GRPC_SSL_TRANSPORT_SECURITY_TYPE;
    peer.plaintext = !tls;
    peer.roles = tls ? 0u : static_cast<uint32_t>(kAllRoles);
    peer.name = tls ? "unnamed" : "plaintext";
    return peer;
  }
  auto pems = context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  CertificateClaims claims;
  if (!pems.empty()) {
    std::string_view pem(pems.front().data(), pems.front().size());
    claims = CachedClaims(pem);
  }
  peer.roles = claims.roles;
  peer.issuer = std::move(claims.issuer);
  peer.name = claims.common_name.empty() ? "unnamed" : std::move(claims.common_name);
  return peer;
}

std::string PeerLogName(const Peer& peer) {
  if (peer.issuer.empty() || peer.issuer == peer.name) return peer.name;
  return StrCat(peer.name, " as ", peer.issuer);
}

std::string RoleNames(uint32_t roles) {
  std::string names;
  for (auto [bit, name] :
       {std::pair{kRolePublisher, "publisher"}, std::pair{kRoleSubscriber, "subscriber"},
        std::pair{kRoleOperator, "operator"}, std::pair{kRoleSecretAdmin, "secret-admin"},
        std::pair{kRoleMinter, "minter"}}) {
    if (roles & bit) StrAppend(&names, names.empty() ? "" : ",", name);
  }
  return names.empty() ? "none" : names;
}

}  // namespace turnbroker
