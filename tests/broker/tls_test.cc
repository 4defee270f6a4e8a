// mTLS and roles, with certificates made at test time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "broker_client.h"
#include "pki.h"
#include "turnbroker/broker/server.h"
#include "turnbroker/common/channel.h"
#include "watch_client.h"

namespace turnbroker::broker {
namespace {

using ::testing::HasSubstr;
using turnbroker::testing::Pki;
using turnbroker::testing::TempDir;
using turnbroker::testing::WatchClient;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(turnbroker::testing::MakeTestPki(dir_.path(), &pki_, &error)) << error;
    BrokerOptions o;
    o.listen = {"127.0.0.1", 0};
    o.ephemeral = true;
    o.tls = {pki_.Cert("server"), pki_.Key("server"), pki_.ca};
    auto s = BrokerServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }

  std::unique_ptr<v1::CredentialBroker::Stub> Client(const std::string& who) {
    ChannelOptions o("127.0.0.1:" + std::to_string(server_->port()));
    if (!who.empty()) o.tls = {pki_.Cert(who), pki_.Key(who), pki_.ca};
    if (who == "plaintext") o.tls = {};
    auto ch = MakeChannel(o);
    EXPECT_TRUE(ch.ok()) << ch.status();
    channels_.push_back(*ch);
    return v1::CredentialBroker::NewStub(*ch);
  }

  grpc::Status Publish(v1::CredentialBroker::Stub* stub, const std::string& username) {
    v1::PublishRequest req;
    *req.add_credentials() =
        turnbroker::testing::TestCredential(username, "ims.example.org", 60'000);
    req.mutable_credentials(0)->set_issuer("pcscf-1");  // the publisher certificate's CN
    v1::PublishResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->Publish(&ctx, req, &resp);
  }
  grpc::Status List(v1::CredentialBroker::Stub* stub) {
    v1::ListResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->List(&ctx, {}, &resp);
  }
  grpc::Status Watch(const std::string& who) {
    auto stub = Client(who);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto reader = stub->Watch(&ctx, {});
    v1::WatchResponse r;
    if (reader->Read(&r)) return grpc::Status::OK;  // the stream started
    return reader->Finish();
  }

  TempDir dir_;
  Pki pki_;
  std::unique_ptr<BrokerServer> server_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
};

TEST_F(TlsTest, RolesComeFromTheClientCertificate) {
  auto publisher = Client("publisher");
  auto subscriber = Client("subscriber");
  auto operator_ = Client("operator");
  auto norole = Client("norole");

  EXPECT_TRUE(Publish(publisher.get(), "a").ok());
  grpc::Status s = Publish(subscriber.get(), "b");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("Publish needs role publisher; client 'turn-1' has subscriber"));
  EXPECT_EQ(Publish(operator_.get(), "c").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Publish(norole.get(), "d").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // PublishStream: the same role, checked once for the stream.
  for (auto* stub : {publisher.get(), subscriber.get()}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->PublishStream(&ctx);
    v1::PublishStreamRequest req;
    req.set_id(1);
    *req.mutable_request()->add_credentials() = testing::TestCredential("streamed");
    req.mutable_request()->mutable_credentials(0)->set_issuer("pcscf-1");
    stream->Write(req);
    stream->WritesDone();
    v1::PublishStreamResponse answer;
    bool answered = stream->Read(&answer);
    s = stream->Finish();
    if (stub == publisher.get()) {
      EXPECT_TRUE(answered && answer.code() == 0) << answer.message();
      EXPECT_TRUE(s.ok()) << s.error_message();
    } else {
      EXPECT_FALSE(answered);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
      EXPECT_THAT(s.error_message(), HasSubstr("PublishStream needs role publisher"));
    }
  }

  EXPECT_TRUE(Watch("subscriber").ok());
  EXPECT_TRUE(Watch("operator").ok());
  s = Watch("publisher");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("Watch needs role subscriber,operator"));

  EXPECT_TRUE(List(operator_.get()).ok());
  EXPECT_EQ(List(subscriber.get()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(TlsTest, ClientsWithoutAValidCertificateCannotConnect) {
  for (const char* who : {"plaintext", "stranger"}) {
    auto stub = Client(who);
    EXPECT_EQ(Publish(stub.get(), "x").error_code(), grpc::StatusCode::UNAVAILABLE) << who;
  }
  // TLS without a client certificate.
  ChannelOptions o("127.0.0.1:" + std::to_string(server_->port()));
  grpc::SslCredentialsOptions ssl;
  std::ifstream in(pki_.ca);
  ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), {});
  auto ch = grpc::CreateChannel(o.target, grpc::SslCredentials(ssl));
  auto stub = v1::CredentialBroker::NewStub(ch);
  EXPECT_EQ(Publish(stub.get(), "y").error_code(), grpc::StatusCode::UNAVAILABLE);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(TlsTest, ClaimsComeFromParsedFieldsNotThePrintedSubject) {
  auto claims = [&](const std::string& who) {
    auto c = ParseCertificateClaims(ReadFile(pki_.Cert(who)));
    EXPECT_TRUE(c.ok()) << who << ": " << c.status();
    return c.value_or(CertificateClaims{});
  };
  CertificateClaims c = claims("publisher");
  EXPECT_EQ(c.roles, kRolePublisher);
  EXPECT_EQ(c.issuer, "pcscf-1");
  EXPECT_EQ(c.common_name, "pcscf-1");
  c = claims("publisher-san");
  EXPECT_EQ(c.issuer, "pcscf-7") << "the issuer URI SAN names it, not the CN";
  EXPECT_EQ(claims("subscriber").roles, kRoleSubscriber) << "an OU attribute is a role";
  EXPECT_EQ(claims("publisher-operator").roles, kRolePublisher | kRoleOperator);
  // Approach 1's roles, as URI SAN and as OU.
  EXPECT_EQ(claims("minter").roles, kRoleMinter);
  EXPECT_EQ(claims("secret-admin").roles, kRoleSecretAdmin);
  EXPECT_EQ(claims("secret-admin-ou").roles, kRoleSecretAdmin);
  EXPECT_EQ(RoleNames(kRoleMinter | kRoleSecretAdmin | kRoleSubscriber),
            "subscriber,secret-admin,minter");
  c = claims("forged-cn");
  EXPECT_EQ(c.roles, 0u);
  EXPECT_EQ(c.common_name, "turn-3,OU=publisher");
  EXPECT_EQ(c.issuer, "") << "not a valid issuer id";
  EXPECT_EQ(claims("forged-o").roles, 0u);
  EXPECT_EQ(ParseCertificateClaims("-----BEGIN CERTIFICATE-----\nAAAA\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseCertificateClaims("").ok());
}

TEST(ListenPolicyTest, PlaintextOnlyOnLoopbackUnlessInsecure) {
  BrokerOptions o;
  o.listen = {"0.0.0.0", 0};
  o.ephemeral = true;
  auto s = BrokerServer::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("--insecure"));
  o.insecure = true;
  s = BrokerServer::Start(o);
  EXPECT_TRUE(s.ok()) << s.status();
}

}  // namespace
}  // namespace turnbroker::broker
