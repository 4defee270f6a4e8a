// mTLS for every gRPC hop, and the roles and identity a client certificate
// carries.
//
// A role is named in the client certificate, either as a URI SAN
// "urn:turnbroker:role:<role>" (preferred; several allowed) or as an OU
// attribute of the subject. Roles: publisher (eP-CSCF: Publish, Revoke, and
// Get, List, GetStatus), subscriber (TURN side: Watch, Acknowledge,
// GetStatus), operator (Get, List, Watch, ListSecrets without secret bytes,
// GetStatus, and Publish/Revoke under any issuer when also a publisher),
// secret-admin (approach 1: AddSecret, ActivateSecret, RetireSecret,
// ListSecrets) and minter (approach 1, eP-CSCF: Watch of shared secrets only,
// Revoke of one approach-1 username). A publisher's identity, the issuer id it may publish and
// revoke under, is its URI SAN "urn:turnbroker:issuer:<id>", or else the
// subject's common name. Everything is read from the parsed certificate
// (OpenSSL), never from a printed subject string. See docs/security.md.
#ifndef TURNBROKER_COMMON_TLS_H_
#define TURNBROKER_COMMON_TLS_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace turnbroker {

// PEM files. All empty: plaintext.
struct TlsFiles {
  std::string cert;  // our certificate chain
  std::string key;   // its private key
  std::string ca;    // CA bundle that signs the peers
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

// Server side: with files, TLS that requires and verifies a client
// certificate signed by `ca` (mTLS); without, plaintext. Errors name the flag
// whose file is missing or unreadable.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files);

// Client side: with files, TLS presenting `cert`/`key` and verifying the
// server against `ca`; without, plaintext.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files);

enum Role : uint32_t {
  kRolePublisher = 1,
  kRoleSubscriber = 2,
  kRoleOperator = 4,
  kRoleSecretAdmin = 8,
  kRoleMinter = 16,
  kAllRoles = 31,
};

// What a client certificate grants.
struct CertificateClaims {
  uint32_t roles = 0;
  // The issuer id this client publishes and revokes under: the one URI SAN
  // urn:turnbroker:issuer:<id>, else the subject's one CN if it is a valid
  // issuer id ([A-Za-z0-9._:-], see ValidateIssuer). Empty: none (several
  // issuer SANs, or several CNs, are ambiguous and give none).
  std::string issuer;
  // For logs: the subject's CN ("" if none or several).
  std::string common_name;
};

// Parses a PEM certificate's X.509 fields: URI SANs and the subject's
// attributes, each as its own value (a ',' or "OU=" inside a CN or an O is
// part of that value, not a new attribute). INVALID_ARGUMENT if it is not
// a PEM certificate. Outside input: safe on any bytes.
absl::StatusOr<CertificateClaims> ParseCertificateClaims(std::string_view pem);
// The same for the first certificate of a PEM file (a client's own
// --tls-cert, e.g. to name its issuer after it). Errors name `flag`.
absl::StatusOr<CertificateClaims> ReadCertificateClaims(const std::string& path,
                                                        std::string_view flag);

// The peer of a call, from its auth context.
struct Peer {
  // A plaintext peer (development mode) has every role and acts as an
  // operator; a TLS peer has what its certificate names.
  uint32_t roles = 0;
  std::string issuer;  // see CertificateClaims::issuer
  // For logs and errors: the certificate CN, "unnamed", or "plaintext".
  std::string name;
  bool plaintext = false;
};
Peer PeerOf(const grpc::AuthContext& context);
// For logs: the name, and "as <issuer>" when the certificate names an
// issuer other than its CN (an issuer URI SAN), e.g. "host-7 as pcscf-7".
std::string PeerLogName(const Peer& peer);
std::string RoleNames(uint32_t roles);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_TLS_H_
