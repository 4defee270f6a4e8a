// mTLS for every gRPC hop, and the roles a client certificate carries.
//
// A role is named in the client certificate, either as a URI SAN
// "urn:turnbroker:role:<role>" (preferred; several allowed) or as the
// subject's OU=<role>. Roles: publisher (eP-CSCF: Publish, Revoke, and what
// an operator may do), subscriber (TURN side: Watch, GetStatus), operator
// (Get, List, Watch, GetStatus). See docs/security.md.
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
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files);

enum Role : uint32_t {
  kRolePublisher = 1,
  kRoleSubscriber = 2,
  kRoleOperator = 4,
  kAllRoles = 7,
};

// The roles of the peer of a call. A plaintext peer (development mode) has
// every role; a TLS peer has the roles its certificate names.
uint32_t PeerRoles(const grpc::AuthContext& context);
// The peer's identity for logs: the certificate CN, or "plaintext".
std::string PeerIdentity(const grpc::AuthContext& context);
std::string RoleNames(uint32_t roles);

// Whether a listen host is loopback ("127.0.0.1", "::1", "localhost").
bool IsLoopbackHost(std::string_view host);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_TLS_H_
