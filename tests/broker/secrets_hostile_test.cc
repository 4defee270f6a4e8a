// Approach 1, bad and hostile input over gRPC and mTLS: refused with a clear
// error that names the field, nothing of it applied, and secret bytes in no
// error (docs/approach1.md). Label hostile.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "secret_broker_fixture.h"

namespace turnbroker::broker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using turnbroker::testing::WatchClient;

const std::string kBytesA = "AAAAaaaa-secret-number-one-0123456789_xyz";
const std::string kBytesB = "BBBBbbbb-secret-number-two-0123456789_xyz";

class SecretHostileTest : public SecretBrokerTest {
 protected:
  void SetUp() override {
    SecretBrokerTest::SetUp();
    Start();
  }
  void ExpectRefused(const grpc::Status& s, grpc::StatusCode code, const std::string& text) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(text));
    EXPECT_THAT(s.error_message(), Not(HasSubstr(kBytesA)));
    EXPECT_THAT(s.error_message(), Not(HasSubstr(kBytesB)));
  }
};

TEST_F(SecretHostileTest, BadSecretsAreRefusedNamingTheField) {
  ExpectRefused(Add("a", "short-secret"), grpc::StatusCode::INVALID_ARGUMENT,
                "secret.secret: 12 bytes, at least 32");
  std::string tab = kBytesA;
  tab[10] = '\t';
  ExpectRefused(Add("a", tab), grpc::StatusCode::INVALID_ARGUMENT,
                "secret.secret: byte at offset 10 is not printable ASCII");
  std::string nul = kBytesA;
  nul[0] = '\0';
  ExpectRefused(Add("a", nul), grpc::StatusCode::INVALID_ARGUMENT, "byte at offset 0");
  ExpectRefused(Add("a", kBytesA, "secret-admin", "ims example"),
                grpc::StatusCode::INVALID_ARGUMENT, "secret.realm:");
  ExpectRefused(Add("../a", kBytesA), grpc::StatusCode::INVALID_ARGUMENT, "secret.id:");
  ExpectRefused(Add(std::string(1000, 'i'), kBytesA), grpc::StatusCode::INVALID_ARGUMENT,
                "secret.id:");
  EXPECT_EQ(server_->store().state().head(), 0u) << "nothing refused was written";
}

TEST_F(SecretHostileTest, TheRotationOrderIsEnforced) {
  ExpectRefused(Activate("ghost"), grpc::StatusCode::NOT_FOUND,
                "no secret 'ghost' in realm 'ims.example.org'");
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ExpectRefused(Activate("a", "secret-admin", "other.example.org"), grpc::StatusCode::NOT_FOUND,
                "a secret 'a' is known in realm 'ims.example.org': the realm does not match");
  ExpectRefused(Retire("a", false, "secret-admin", "other.example.org"),
                grpc::StatusCode::NOT_FOUND, "the realm does not match");
  ASSERT_TRUE(Activate("a").ok());
  ExpectRefused(Retire("a"), grpc::StatusCode::FAILED_PRECONDITION,
                "is the ACTIVE secret of realm 'ims.example.org'");
  ExpectRefused(Retire("a", /*force=*/true), grpc::StatusCode::FAILED_PRECONDITION,
                "activate another secret first");
  ExpectRefused(Add("a", kBytesB), grpc::StatusCode::ALREADY_EXISTS, "secret.id: 'a' is known");
  ASSERT_TRUE(Add("b", kBytesB).ok());
  ASSERT_TRUE(Activate("b").ok());
  ExpectRefused(Retire("a"), grpc::StatusCode::FAILED_PRECONDITION,
                "credentials minted with it may be valid");
}

TEST_F(SecretHostileTest, OnlyASecretAdminWritesSecrets) {
  for (const std::string who :
       {"subscriber", "publisher", "minter", "operator", "norole", "publisher-operator"}) {
    ExpectRefused(Add("a", kBytesA, who), grpc::StatusCode::PERMISSION_DENIED,
                  "AddSecret needs role secret-admin");
    ExpectRefused(Activate("a", who), grpc::StatusCode::PERMISSION_DENIED,
                  "ActivateSecret needs role secret-admin");
    ExpectRefused(Retire("a", true, who), grpc::StatusCode::PERMISSION_DENIED,
                  "RetireSecret needs role secret-admin");
  }
  v1::ListSecretsResponse list;
  ExpectRefused(List(&list, "minter"), grpc::StatusCode::PERMISSION_DENIED,
                "ListSecrets needs role operator,secret-admin");
  ExpectRefused(List(&list, "operator", /*include_secret=*/true),
                grpc::StatusCode::PERMISSION_DENIED, "include_secret: needs role secret-admin");
  // The OU form of the role works like the URI SAN.
  EXPECT_TRUE(Add("a", kBytesA, "secret-admin-ou").ok());
}

TEST_F(SecretHostileTest, AMinterWatchesSecretsOnly) {
  for (const auto& kinds : std::vector<std::vector<v1::RecordKind>>{
           {},
           {v1::RECORD_KIND_LONG_TERM_CREDENTIAL},
           {v1::RECORD_KIND_SHARED_SECRET, v1::RECORD_KIND_LONG_TERM_CREDENTIAL},
           {v1::RECORD_KIND_OAUTH_KEY}}) {
    auto w = WatchSecrets("minter", kinds);
    ASSERT_TRUE(w->WaitForEnd());
    ExpectRefused(*w->finished(), grpc::StatusCode::PERMISSION_DENIED,
                  "kinds: a minter watches shared secrets only");
  }
  auto publisher = WatchSecrets("publisher");
  ASSERT_TRUE(publisher->WaitForEnd());
  ExpectRefused(*publisher->finished(), grpc::StatusCode::PERMISSION_DENIED,
                "Watch needs role subscriber,operator,minter");
}

TEST_F(SecretHostileTest, AMinterRevokesOneApproach1UsernameOnly) {
  const int64_t expiry = Clock::System()->NowMs() / 1000 + 600;
  const std::string username = StrCat(expiry, ":AbCdEf");
  ExpectRefused(RevokeUsername(username, "minter"), grpc::StatusCode::FAILED_PRECONDITION,
                "no shared secret is known in realm 'ims.example.org'");
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ExpectRefused(RevokeUsername("alice", "minter"), grpc::StatusCode::PERMISSION_DENIED,
                "'alice' is not an approach-1 username");
  ExpectRefused(RevokeUsername("sip:alice@ims.example.org", "minter"),
                grpc::StatusCode::PERMISSION_DENIED, "not an approach-1 username");
  ExpectRefused(RevokeUsername(username, "minter", ""), grpc::StatusCode::PERMISSION_DENIED,
                "selector: a minter revokes one approach-1 username of one realm");
  ExpectRefused(RevokeUsername(StrCat(expiry + 10 * 86'400, ":AbCdEf"), "minter"),
                grpc::StatusCode::INVALID_ARGUMENT, "further ahead than the longest");
  v1::RevokeRequest by_subscriber;
  by_subscriber.mutable_selector()->set_subscriber("sip:alice@ims.example.org");
  v1::RevokeResponse resp;
  grpc::ClientContext ctx;
  Deadline(&ctx);
  ExpectRefused(Stub("minter")->Revoke(&ctx, by_subscriber, &resp),
                grpc::StatusCode::PERMISSION_DENIED, "a minter revokes one approach-1 username");
  // A published credential under such a name is not the minter's.
  v1::PublishRequest pub;
  v1::Credential* c = pub.add_credentials();
  c->set_realm(kSecretRealm);
  c->set_username(username);
  c->set_key(std::string(16, 'k'));
  c->set_expires_at_ms(Clock::System()->NowMs() + 60'000);
  c->set_issuer("pcscf-1");
  v1::PublishResponse published;
  grpc::ClientContext pctx;
  Deadline(&pctx);
  ASSERT_TRUE(Stub("publisher")->Publish(&pctx, pub, &published).ok());
  ExpectRefused(RevokeUsername(username, "minter"), grpc::StatusCode::PERMISSION_DENIED,
                "live in realm 'ims.example.org' as a published credential");
  EXPECT_TRUE(RevokeUsername(StrCat(expiry, ":Other"), "minter").ok());
  EXPECT_TRUE(server_->store().state().IsRevoked(kSecretRealm, StrCat(expiry, ":Other")));
}

TEST_F(SecretHostileTest, OnlySubscribersAcknowledgeAndNamesAreChecked) {
  ExpectRefused(Acknowledge("turn-1", 0, "minter"), grpc::StatusCode::PERMISSION_DENIED,
                "Acknowledge needs role subscriber");
  ExpectRefused(Acknowledge("turn-1", 0, "publisher"), grpc::StatusCode::PERMISSION_DENIED,
                "Acknowledge needs role subscriber");
  ExpectRefused(Acknowledge("", 0), grpc::StatusCode::INVALID_ARGUMENT, "watcher_name:");
  ExpectRefused(Acknowledge("turn 1\n", 0), grpc::StatusCode::INVALID_ARGUMENT, "watcher_name:");
  ExpectRefused(Acknowledge(std::string(129, 't'), 0), grpc::StatusCode::INVALID_ARGUMENT,
                "watcher_name:");
  v1::AcknowledgeRequest req;
  req.set_watcher_name("turn-1");
  req.set_epoch(server_->store().state().epoch());
  req.add_realms("bad realm");
  v1::AcknowledgeResponse resp;
  grpc::ClientContext ctx;
  Deadline(&ctx);
  ExpectRefused(Stub("subscriber")->Acknowledge(&ctx, req, &resp),
                grpc::StatusCode::INVALID_ARGUMENT, "realms[0]:");
  EXPECT_TRUE(server_->store().RecentSyncs().empty());
}

}  // namespace
}  // namespace turnbroker::broker::testing

namespace turnbroker::broker::testing {
namespace {

// Any subscriber names the syncs it reports for, each with up to 1,000
// realms: 10,000 reports of 1,000 realms of 127 bytes grew the broker by
// 1.8 GB, and every ActivateSecret then copied them on the commit thread
// (publishes held 4.4 s). The registry holds a bounded number of realms.
TEST(SyncRegistryHostileTest, ReportsHoldABoundedNumberOfRealms) {
  SyncRegistry registry;
  const int64_t now = 1'800'000'000'000;
  std::vector<std::string> realms;
  for (int i = 0; i < 1'000; ++i) realms.push_back("r" + std::to_string(i) + std::string(120, 'x'));
  absl::Status refused;
  int accepted = 0;
  for (; accepted < static_cast<int>(kMaxSyncs) && refused.ok(); ++accepted) {
    SyncAck ack;
    ack.name = "fake-" + std::to_string(accepted);
    ack.epoch = "e";
    ack.realms = realms;
    ack.at_ms = now;
    refused = registry.Record(std::move(ack));
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted)
      << accepted << " reports of 1,000 realms accepted";
  EXPECT_THAT(std::string(refused.message()), HasSubstr("realms"));
  size_t held = 0;
  for (const SyncAck& a : registry.Recent(now)) held += a.realms.size();
  EXPECT_LE(held, kMaxSyncRealms);
  // A sync of every realm (no list) still reports; a name already known
  // may report again with fewer realms.
  SyncAck all;
  all.name = "real-sync";
  all.epoch = "e";
  all.at_ms = now;
  EXPECT_TRUE(registry.Record(all).ok());
  SyncAck fewer;
  fewer.name = "fake-0";
  fewer.epoch = "e";
  fewer.realms = {"ims.example.org"};
  fewer.at_ms = now;
  EXPECT_TRUE(registry.Record(fewer).ok());
}

}  // namespace
}  // namespace turnbroker::broker::testing
