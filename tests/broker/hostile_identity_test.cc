// Hostile peers with real certificates against the real turn-broker binary
// (docs/security.md#broker): subjects forged to print like a role, and
// publishers acting under another eP-CSCF's issuer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "broker_client.h"
#include "broker_process.h"
#include "pki.h"
#include "turnbroker/common/channel.h"

namespace turnbroker::testing {
namespace {

using ::testing::HasSubstr;

class HostileIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(MakeTestPki(dir_.path(), &pki_, &error)) << error;
    broker_ = std::make_unique<BrokerProcess>(
        dir_, std::vector<std::string>{"--ephemeral", "--tls-cert", pki_.Cert("server"),
                                       "--tls-key", pki_.Key("server"), "--tls-ca", pki_.ca});
  }

  BrokerClient Client(const std::string& who) {
    ChannelOptions o(broker_->address());
    o.tls = {pki_.Cert(who), pki_.Key(who), pki_.ca};
    auto ch = MakeChannel(o);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return BrokerClient(*ch);
  }

  static v1::Credential Cred(const std::string& username, const std::string& issuer) {
    v1::Credential c = TestCredential(username);
    c.set_issuer(issuer);
    return c;
  }

  grpc::Status RevokeBy(BrokerClient& client, const std::string& field, const std::string& value,
                        v1::RevokeResponse* out = nullptr) {
    v1::RevokeRequest req;
    if (field == "issuer") req.mutable_selector()->set_issuer(value);
    if (field == "subscriber") req.mutable_selector()->set_subscriber(value);
    if (field == "username") req.mutable_selector()->mutable_username()->set_username(value);
    return client.Revoke(req, out);
  }

  TempDir dir_;
  Pki pki_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(HostileIdentityTest, ASubjectThatPrintsLikeARoleGrantsNone) {
  for (const char* who : {"forged-cn", "forged-o"}) {
    BrokerClient forged = Client(who);
    grpc::Status s = forged.Publish({Cred(std::string("f-") + who, "turn-3")});
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    EXPECT_THAT(s.error_message(), HasSubstr("has none")) << who;
    v1::ListResponse lr;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    EXPECT_EQ(forged.stub()->List(&ctx, {}, &lr).error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << who << ": operator role from O=Example\\, OU=operator";
  }
  EXPECT_TRUE(broker_->process().WaitForOutput("client=\"mallory ", std::chrono::seconds(5)))
      << "the refusal is logged with the caller";
}

TEST_F(HostileIdentityTest, APublisherPublishesOnlyUnderItsOwnIssuer) {
  BrokerClient a = Client("publisher");  // CN pcscf-1
  EXPECT_TRUE(a.Publish({Cred("a1", "pcscf-1")}).ok());
  grpc::Status s = a.Publish({Cred("a2", "pcscf-1"), Cred("a3", "pcscf-2")});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("credentials[1].issuer: 'pcscf-2' is not this client's issuer 'pcscf-1'"));
  EXPECT_EQ(a.Publish({Cred("a4", "")}).error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "an empty issuer would escape revoke-by-issuer";
  EXPECT_EQ(a.Get("a2").error_code(), grpc::StatusCode::NOT_FOUND) << "nothing of it applied";

  // The same over PublishStream: refused per request, the stream goes on.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = a.stub()->PublishStream(&ctx);
  for (auto [id, issuer] : {std::pair{1, "pcscf-2"}, std::pair{2, "pcscf-1"}}) {
    v1::PublishStreamRequest req;
    req.set_id(id);
    *req.mutable_request()->add_credentials() = Cred("s" + std::to_string(id), issuer);
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  v1::PublishStreamResponse answer;
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_THAT(answer.message(), HasSubstr("'pcscf-2' is not this client's issuer"));
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.code(), 0) << answer.message();
  EXPECT_TRUE(stream->Finish().ok());

  // A URI SAN names the issuer when present (over the CN).
  BrokerClient san = Client("publisher-san");
  EXPECT_TRUE(san.Publish({Cred("n1", "pcscf-7")}).ok());
  EXPECT_EQ(san.Publish({Cred("n2", "host-7.example.net")}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A publisher that is also an operator acts for any issuer.
  EXPECT_TRUE(Client("publisher-operator").Publish({Cred("o1", "pcscf-2")}).ok());
}

TEST_F(HostileIdentityTest, APublisherRevokesOnlyWhatItIssued) {
  BrokerClient a = Client("publisher");   // pcscf-1
  BrokerClient b = Client("publisher2");  // pcscf-2
  v1::Credential a1 = Cred("a1", "pcscf-1"), b1 = Cred("b1", "pcscf-2");
  b1.set_subscriber(a1.subscriber());  // the same subscriber through both
  ASSERT_TRUE(a.Publish({a1}).ok());
  ASSERT_TRUE(b.Publish({b1}).ok());

  grpc::Status s = RevokeBy(a, "issuer", "pcscf-2");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("selector.issuer: 'pcscf-2' is not this client's"));
  s = RevokeBy(a, "username", "b1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("issued by 'pcscf-2'"));
  EXPECT_TRUE(b.Get("b1").ok()) << "still live";

  // An unknown username: nothing of this publisher's to revoke, nothing
  // recorded (no event, no tombstone that would block it for a day).
  uint64_t head = a.Status().revision();
  v1::RevokeResponse r;
  ASSERT_TRUE(RevokeBy(a, "username", "never-published", &r).ok());
  EXPECT_EQ(r.revoked(), 0u);
  EXPECT_EQ(a.Status().revision(), head);
  EXPECT_EQ(a.Status().revoked_usernames(), 0u);

  // Its own: yes, and by subscriber only its own (b1 has the same one);
  // an operator: anyone's.
  ASSERT_TRUE(RevokeBy(a, "subscriber", a1.subscriber(), &r).ok());
  EXPECT_EQ(r.revoked(), 1u);
  EXPECT_EQ(a.Get("a1").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(b.Get("b1").ok()) << "pcscf-2's credential of the same subscriber stays";
  ASSERT_TRUE(a.Publish({Cred("a5", "pcscf-1")}).ok());
  ASSERT_TRUE(RevokeBy(a, "username", "a5", &r).ok());
  EXPECT_EQ(r.revoked(), 1u);
  BrokerClient ops = Client("publisher-operator");
  ASSERT_TRUE(RevokeBy(ops, "issuer", "pcscf-2", &r).ok());
  EXPECT_EQ(r.revoked(), 1u);
  // Every Revoke is logged with who asked.
  EXPECT_TRUE(broker_->process().WaitForOutput("msg=\"revoked\" client=\"ops-tool ",
                                               std::chrono::seconds(5)))
      << broker_->process().Output();
  EXPECT_THAT(broker_->process().Output(), HasSubstr("revoke refused"));

  // By its own issuer with nothing of it live (the operator took b1):
  // nothing recorded either, as by username (a publisher at its revoke
  // rate would otherwise write an event each time).
  head = b.Status().revision();
  ASSERT_TRUE(RevokeBy(b, "issuer", "pcscf-2", &r).ok());
  EXPECT_EQ(r.revoked(), 0u);
  EXPECT_EQ(b.Status().revision(), head) << "an empty revoke-by-issuer recorded an event";
}

// A credential another publisher put beside this publisher's (the same
// subscriber, or the same username in another realm) must not stop this
// publisher from revoking its own: a de-REGISTER at pcscf-2 revokes
// pcscf-2's credentials whatever pcscf-1 published.
TEST_F(HostileIdentityTest, AnotherIssuersCredentialCannotBlockARevocation) {
  BrokerClient a = Client("publisher");   // pcscf-1, the attacker
  BrokerClient b = Client("publisher2");  // pcscf-2
  v1::Credential b1 = Cred("b1", "pcscf-2");
  v1::Credential a1 = Cred("a1", "pcscf-1");
  a1.set_subscriber(b1.subscriber());  // pcscf-1 claims pcscf-2's subscriber
  ASSERT_TRUE(b.Publish({b1}).ok());
  ASSERT_TRUE(a.Publish({a1}).ok());

  v1::RevokeResponse r;
  grpc::Status s = RevokeBy(b, "subscriber", b1.subscriber(), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.revoked(), 1u) << "b1, and only b1";
  EXPECT_EQ(b.Get("b1").error_code(), grpc::StatusCode::NOT_FOUND) << "b1 was revoked";
  EXPECT_TRUE(a.Get("a1").ok()) << "pcscf-1's credential is not pcscf-2's to revoke";

  // The same username in another realm. In every realm: refused, since a
  // TURN sync applies that selector to every realm it serves (it would
  // remove pcscf-1's there); with its realm (as the agent revokes): only
  // pcscf-2's.
  v1::Credential b2 = Cred("dup", "pcscf-2");
  v1::Credential a2 = Cred("dup", "pcscf-1");
  a2.set_realm("other.example.org");
  ASSERT_TRUE(b.Publish({b2}).ok());
  ASSERT_TRUE(a.Publish({a2}).ok());
  s = RevokeBy(b, "username", "dup", &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("issued by 'pcscf-1'"));
  v1::RevokeRequest in_realm;
  in_realm.mutable_selector()->mutable_username()->set_username("dup");
  in_realm.mutable_selector()->mutable_username()->set_realm(b2.realm());
  s = b.Revoke(in_realm, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.revoked(), 1u);
  v1::GetStatusResponse status = b.Status();
  EXPECT_EQ(status.live_credentials(), 2u) << "a1 and pcscf-1's dup stay live";
}

// The log names the issuer a certificate acts as when its CN is not that
// issuer (an issuer URI SAN): an audit of who revoked pcscf-7's credentials
// must not read only "host-7.example.net".
TEST_F(HostileIdentityTest, TheLogNamesTheIssuerACallerActsAs) {
  BrokerClient san = Client("publisher-san");  // CN host-7.example.net, issuer pcscf-7
  ASSERT_TRUE(san.Publish({Cred("n1", "pcscf-7")}).ok());
  EXPECT_EQ(san.Publish({Cred("n2", "pcscf-1")}).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(RevokeBy(san, "issuer", "pcscf-7").ok());
  EXPECT_TRUE(broker_->process().WaitForOutput(
      "msg=\"revoked\" client=\"host-7.example.net as pcscf-7 ", std::chrono::seconds(5)))
      << broker_->process().Output();
  EXPECT_THAT(broker_->process().Output(),
              HasSubstr("msg=\"publish refused\" client=\"host-7.example.net as pcscf-7 "));
}

// One client certificate (one TURN sync's, an operator's, a minter's) must
// not take every Watch slot: the other TURN farms could no longer resync.
// 10,000 streams from one subscriber certificate took 1.6 s to open and left
// `too many watchers` for everyone else.
TEST_F(HostileIdentityTest, OneClientCannotTakeEveryWatchSlot) {
  TempDir dir;
  BrokerProcess broker(
      dir, {"--ephemeral", "--max-watchers", "300", "--tls-cert", pki_.Cert("server"), "--tls-key",
            pki_.Key("server"), "--tls-ca", pki_.ca});
  auto open = [&](const std::string& who) {
    ChannelOptions o(broker.address());
    o.tls = {pki_.Cert(who), pki_.Key(who), pki_.ca};
    auto ch = MakeChannel(o);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return *ch;
  };
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader;
  };
  auto watch = [](const std::shared_ptr<grpc::Channel>& channel, Stream* s) -> grpc::Status {
    v1::WatchRequest req;
    s->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stub = v1::CredentialBroker::NewStub(channel);
    s->reader = stub->Watch(&s->context, req);
    v1::WatchResponse first;
    if (s->reader->Read(&first)) return grpc::Status::OK;
    return s->reader->Finish();
  };
  auto hostile = open("subscriber");
  std::vector<std::unique_ptr<Stream>> streams;
  grpc::Status refused;
  for (int i = 0; i < 300 && refused.ok(); ++i) {
    streams.push_back(std::make_unique<Stream>());
    refused = watch(hostile, streams.back().get());
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << "one certificate opened 300 streams";
  EXPECT_THAT(refused.error_message(), HasSubstr("from this client"));
  Stream other;
  grpc::Status s = watch(open("publisher-operator"), &other);
  EXPECT_TRUE(s.ok()) << "another client found no Watch slot: " << s.error_message();
  for (auto& st : streams) st->context.TryCancel();
  other.context.TryCancel();
}

TEST(HostileRevokeTest, RevokeIsRateLimitedPerClient) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral", "--max-revoke-rate", "1", "--max-revoke-burst", "3"});
  BrokerClient client(*MakeChannel(ChannelOptions{broker.address()}));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.RevokeUsername("u" + std::to_string(i)).ok());
  grpc::Status s = client.RevokeUsername("u3");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("over 1 revokes/s"));
  EXPECT_EQ(client.Status().revision(), 3u) << "nothing recorded for the refused one";
}

}  // namespace
}  // namespace turnbroker::testing
