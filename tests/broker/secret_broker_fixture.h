// A broker in this process over mTLS with the test PKI, and a client per
// role, for the approach-1 tests (shared secrets) over real gRPC sockets.
#ifndef TURNBROKER_TESTS_BROKER_SECRET_BROKER_FIXTURE_H_
#define TURNBROKER_TESTS_BROKER_SECRET_BROKER_FIXTURE_H_

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "pki.h"
#include "process.h"
#include "turnbroker/broker/server.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/strings.h"
#include "watch_client.h"

namespace turnbroker::broker::testing {

inline constexpr char kSecretRealm[] = "ims.example.org";

class SecretBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(turnbroker::testing::MakeTestPki(dir_.path(), &pki_, &error)) << error;
    // An eP-CSCF agent in both modes: CN pcscf-1, publisher and minter.
    ASSERT_TRUE(turnbroker::testing::IssueTestCertificate(
        pki_, "publisher-minter", "/CN=pcscf-1",
        "extendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:turnbroker:role:publisher,"
        "URI:urn:turnbroker:role:minter",
        &error))
        << error;
    options_.listen = {"127.0.0.1", 0};
    options_.ephemeral = true;
    options_.tls = {pki_.Cert("server"), pki_.Key("server"), pki_.ca};
    options_.metrics_listen = "127.0.0.1:0";
  }
  void Start() {
    auto s = BrokerServer::Start(options_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    channels_.clear();
  }
  void TearDown() override { server_.reset(); }

  // A channel presenting the certificate `who` (a name in the test PKI).
  std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    auto it = channels_.find(who);
    if (it != channels_.end()) return it->second;
    ChannelOptions o("127.0.0.1:" + std::to_string(server_->port()));
    o.tls = {pki_.Cert(who), pki_.Key(who), pki_.ca};
    auto ch = MakeChannel(o);
    EXPECT_TRUE(ch.ok()) << ch.status();
    channels_[who] = *ch;
    return *ch;
  }
  std::unique_ptr<v1::CredentialBroker::Stub> Stub(const std::string& who) {
    return v1::CredentialBroker::NewStub(Channel(who));
  }
  static void Deadline(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  grpc::Status Add(const std::string& id, const std::string& bytes,
                   const std::string& who = "secret-admin", const std::string& realm = kSecretRealm,
                   v1::SecretResponse* out = nullptr) {
    v1::AddSecretRequest req;
    req.mutable_secret()->set_realm(realm);
    req.mutable_secret()->set_id(id);
    req.mutable_secret()->set_secret(bytes);
    v1::SecretResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    grpc::Status s = Stub(who)->AddSecret(&ctx, req, &resp);
    if (out) *out = resp;
    return s;
  }
  grpc::Status Activate(const std::string& id, const std::string& who = "secret-admin",
                        const std::string& realm = kSecretRealm) {
    v1::ActivateSecretRequest req;
    req.mutable_ref()->set_realm(realm);
    req.mutable_ref()->set_id(id);
    v1::SecretResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return Stub(who)->ActivateSecret(&ctx, req, &resp);
  }
  grpc::Status Retire(const std::string& id, bool force = false,
                      const std::string& who = "secret-admin",
                      const std::string& realm = kSecretRealm) {
    v1::RetireSecretRequest req;
    req.mutable_ref()->set_realm(realm);
    req.mutable_ref()->set_id(id);
    req.set_force(force);
    v1::SecretResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return Stub(who)->RetireSecret(&ctx, req, &resp);
  }
  grpc::Status List(v1::ListSecretsResponse* out, const std::string& who = "secret-admin",
                    bool include_secret = false) {
    v1::ListSecretsRequest req;
    req.set_include_secret(include_secret);
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return Stub(who)->ListSecrets(&ctx, req, out);
  }
  grpc::Status Acknowledge(const std::string& name, uint64_t revision,
                           const std::string& who = "subscriber", std::string epoch = "") {
    v1::AcknowledgeRequest req;
    req.set_watcher_name(name);
    req.set_epoch(epoch.empty() ? server_->store().state().epoch() : epoch);
    req.set_revision(revision);
    v1::AcknowledgeResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return Stub(who)->Acknowledge(&ctx, req, &resp);
  }
  grpc::Status RevokeUsername(const std::string& username, const std::string& who,
                              const std::string& realm = kSecretRealm) {
    v1::RevokeRequest req;
    req.mutable_selector()->mutable_username()->set_realm(realm);
    req.mutable_selector()->mutable_username()->set_username(username);
    req.set_reason("de-REGISTER");
    v1::RevokeResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return Stub(who)->Revoke(&ctx, req, &resp);
  }
  std::unique_ptr<turnbroker::testing::WatchClient> WatchSecrets(
      const std::string& who, std::vector<v1::RecordKind> kinds = {v1::RECORD_KIND_SHARED_SECRET}) {
    v1::WatchRequest req;
    for (auto k : kinds) req.add_kinds(k);
    req.set_watcher_name(who);
    return std::make_unique<turnbroker::testing::WatchClient>(Channel(who), req);
  }
  // Waits until the stream has reached SYNCED and then carries an event
  // that `match` accepts.
  static bool WaitForEvent(turnbroker::testing::WatchClient& w,
                           const std::function<bool(const v1::Event&)>& match) {
    return w.WaitFor([&](const turnbroker::testing::WatchClient::Responses& rs) {
      for (const v1::Event& e : turnbroker::testing::WatchClient::Events(rs))
        if (match(e)) return true;
      return false;
    });
  }

  turnbroker::testing::TempDir dir_;
  turnbroker::testing::Pki pki_;
  BrokerOptions options_;
  std::unique_ptr<BrokerServer> server_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace turnbroker::broker::testing

#endif  // TURNBROKER_TESTS_BROKER_SECRET_BROKER_FIXTURE_H_
