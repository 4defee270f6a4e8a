// What a test needs to see in a real broker: Get and List over gRPC.
#ifndef TURNBROKER_TESTS_PCSCF_BROKER_VIEW_H_
#define TURNBROKER_TESTS_PCSCF_BROKER_VIEW_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::pcscf::testing {

class BrokerView {
 public:
  explicit BrokerView(const std::string& address)
      : stub_(v1::CredentialBroker::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {}
  // Over `channel` (e.g. mTLS with a role's certificate: MakeChannel).
  explicit BrokerView(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::CredentialBroker::NewStub(std::move(channel))) {}

  // The live credential, or nullopt (not live, or the broker did not answer).
  std::optional<v1::Credential> Get(const std::string& username) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::GetRequest req;
    req.mutable_ref()->set_username(username);
    v1::GetResponse resp;
    if (!stub_->Get(&ctx, req, &resp).ok()) return std::nullopt;
    return resp.credential().credential();
  }
  bool IsLive(const std::string& username) { return Get(username).has_value(); }

  // Live credentials of a subscriber (-1: the broker did not answer).
  int CountLive(const std::string& subscriber) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::ListRequest req;
    req.set_subscriber(subscriber);
    req.set_page_size(1000);
    v1::ListResponse resp;
    if (!stub_->List(&ctx, req, &resp).ok()) return -1;
    return resp.credentials_size();
  }

  // An operator's revocation (as turnbrokerctl revoke): by username, or
  // every credential of an issuer. The number revoked, or -1 on error.
  int RevokeUsername(const std::string& username) {
    v1::RevokeRequest req;
    req.mutable_selector()->mutable_username()->set_username(username);
    return Revoke(req);
  }
  int RevokeIssuer(const std::string& issuer) {
    v1::RevokeRequest req;
    req.mutable_selector()->set_issuer(issuer);
    return Revoke(req);
  }

  // As a secret-admin (turnbrokerctl secret add / activate / retire): OK,
  // or the broker's refusal. Activation is retried while refused as not yet
  // acknowledged by every TURN sync (FAILED_PRECONDITION), for up to 10 s.
  grpc::Status AddSecret(const std::string& realm, const std::string& id,
                         const std::string& bytes) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::AddSecretRequest req;
    req.mutable_secret()->set_realm(realm);
    req.mutable_secret()->set_id(id);
    req.mutable_secret()->set_secret(bytes);
    v1::SecretResponse resp;
    return stub_->AddSecret(&ctx, req, &resp);
  }
  grpc::Status ActivateSecret(const std::string& realm, const std::string& id) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::ActivateSecretRequest req;
      req.mutable_ref()->set_realm(realm);
      req.mutable_ref()->set_id(id);
      v1::SecretResponse resp;
      grpc::Status s = stub_->ActivateSecret(&ctx, req, &resp);
      if (s.error_code() != grpc::StatusCode::FAILED_PRECONDITION ||
          std::chrono::steady_clock::now() > until) {
        return s;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  grpc::Status RetireSecret(const std::string& realm, const std::string& id, bool force) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::RetireSecretRequest req;
    req.mutable_ref()->set_realm(realm);
    req.mutable_ref()->set_id(id);
    req.set_force(force);
    v1::SecretResponse resp;
    return stub_->RetireSecret(&ctx, req, &resp);
  }

  std::optional<v1::GetStatusResponse> Status() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::GetStatusResponse resp;
    if (!stub_->GetStatus(&ctx, v1::GetStatusRequest(), &resp).ok()) return std::nullopt;
    return resp;
  }

 private:
  int Revoke(v1::RevokeRequest& req) {
    req.set_reason("operator");
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::RevokeResponse resp;
    if (!stub_->Revoke(&ctx, req, &resp).ok()) return -1;
    return static_cast<int>(resp.revoked());
  }

  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
};

}  // namespace turnbroker::pcscf::testing

#endif  // TURNBROKER_TESTS_PCSCF_BROKER_VIEW_H_
