#include "turnbroker/common/tls.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "turnbroker/common/strings.h"

namespace turnbroker {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    std::string_view flag) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        StrCat(flag, ": required when any TLS file is given"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        StrCat(flag, ": cannot read '", path, "'"));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(
        StrCat(flag, ": '", path, "' is not a PEM file"));
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
  return 0;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  auto pems = ReadPems(files);
  if (!pems.ok()) return pems.status();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pems->ca;
  options.pem_key_cert_pairs.push_back({pems->key, pems->cert});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  auto pems = ReadPems(files);
  if (!pems.ok()) return pems.status();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pems->ca;
  options.pem_private_key = pems->key;
  options.pem_cert_chain = pems->cert;
  return grpc::SslCredentials(options);
}

uint32_t PeerRoles(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) {
    // A TLS server requires and verifies client certificates, so an
    // unauthenticated peer is a plaintext one: development mode.
    auto type = context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
    bool tls = !type.empty() && std::string_view(type.front().data(), type.front().size()) ==
                                    GRPC_SSL_TRANSPORT_SECURITY_TYPE;
    return tls ? 0u : static_cast<uint32_t>(kAllRoles);
  }
  uint32_t roles = 0;
  for (const auto& uri : context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    std::string_view v(uri.data(), uri.size());
    constexpr std::string_view kPrefix = "urn:turnbroker:role:";
    if (v.starts_with(kPrefix)) roles |= RoleFromName(v.substr(kPrefix.size()));
  }
  for (const auto& subject : context.FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
    // e.g. "CN=pcscf-1,OU=publisher,O=Example"
    std::string_view rest(subject.data(), subject.size());
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view part = rest.substr(0, comma);
      rest = comma == rest.npos ? std::string_view() : rest.substr(comma + 1);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      if (part.starts_with("OU=")) roles |= RoleFromName(part.substr(3));
    }
  }
  return roles;
}

std::string PeerIdentity(const grpc::AuthContext& context) {
  auto cn = context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (!cn.empty()) return std::string(cn.front().data(), cn.front().size());
  return context.IsPeerAuthenticated() ? "unnamed" : "plaintext";
}

std::string RoleNames(uint32_t roles) {
  std::string names;
  for (auto [bit, name] : {std::pair{kRolePublisher, "publisher"},
                           std::pair{kRoleSubscriber, "subscriber"},
                           std::pair{kRoleOperator, "operator"}}) {
    if (roles & bit) StrAppend(&names, names.empty() ? "" : ",", name);
  }
  return names.empty() ? "none" : names;
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace turnbroker
