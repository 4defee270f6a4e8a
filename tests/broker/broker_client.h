// Synchronous calls with deadlines, for tests.
#ifndef TURNBROKER_TESTS_BROKER_BROKER_CLIENT_H_
#define TURNBROKER_TESTS_BROKER_BROKER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "turnbroker/common/clock.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::testing {

// A credential valid for `ttl_ms`, with a subscriber derived from the name.
inline v1::Credential TestCredential(const std::string& username,
                                     const std::string& realm = "ims.example.org",
                                     int64_t ttl_ms = 3'600'000) {
  v1::Credential c;
  c.set_realm(realm);
  c.set_username(username);
  c.set_key(std::string(16, 'k'));
  c.set_expires_at_ms(Clock::System()->NowMs() + ttl_ms);
  c.set_subscriber("sip:" + username + "@" + realm);
  return c;
}

class BrokerClient {
 public:
  explicit BrokerClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::CredentialBroker::NewStub(std::move(channel))) {}

  grpc::Status Publish(const std::vector<v1::Credential>& creds,
                       v1::PublishResponse* out = nullptr) {
    v1::PublishRequest req;
    for (const auto& c : creds) *req.add_credentials() = c;
    v1::PublishResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    grpc::Status s = stub_->Publish(&ctx, req, &resp);
    if (out) *out = resp;
    return s;
  }
  grpc::Status Revoke(const v1::RevokeRequest& req, v1::RevokeResponse* out = nullptr) {
    v1::RevokeResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    grpc::Status s = stub_->Revoke(&ctx, req, &resp);
    if (out) *out = resp;
    return s;
  }
  grpc::Status RevokeUsername(const std::string& username, v1::RevokeResponse* out = nullptr) {
    v1::RevokeRequest req;
    req.mutable_selector()->mutable_username()->set_username(username);
    return Revoke(req, out);
  }
  grpc::Status Get(const std::string& username, v1::GetResponse* out = nullptr) {
    v1::GetRequest req;
    req.mutable_ref()->set_username(username);
    v1::GetResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    grpc::Status s = stub_->Get(&ctx, req, &resp);
    if (out) *out = resp;
    return s;
  }
  v1::GetStatusResponse Status() {
    v1::GetStatusResponse st;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    stub_->GetStatus(&ctx, {}, &st);
    return st;
  }
  v1::CredentialBroker::Stub* stub() { return stub_.get(); }

 private:
  static void Deadline(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
};

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_BROKER_BROKER_CLIENT_H_
