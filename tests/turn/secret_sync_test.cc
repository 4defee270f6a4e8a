// CredentialSync in --auth-mode=shared-secret against an in-memory Redis:
// coturn's secret sets follow secret events, retirements, snapshots of the
// same and of another epoch, expiry and restarts; revocations of approach-1
// usernames queue their sessions; acknowledgements are asked for at the
// right frames.
#include <gtest/gtest.h>

#include "fake_redis.h"
#include "frames.h"
#include "turnbroker/turn/secrets.h"
#include "turnbroker/turn/sync.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;
using WR = v1::WatchResponse;

constexpr int64_t kNow = 1'800'000'000'000;
const std::string kRealm = "example.org";
const std::string kEpoch = "epoch-1";
const std::string kSecretA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";  // 43 bytes
const std::string kSecretB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const std::string kSecretC = "ccccccccccccccccccccccccccccccccccccccccccc";

v1::Event Secret(uint64_t revision, const std::string& id, const std::string& bytes,
                 int64_t expires_at_ms = 0, const std::string& realm = kRealm,
                 int64_t max_ttl_ms = 3'600'000) {
  return SecretEvent(revision, realm, id, bytes, expires_at_ms, max_ttl_ms);
}

v1::Event Retired(uint64_t revision, const std::string& id, const std::string& realm = kRealm) {
  return SecretRetired(revision, realm, id);
}

class SecretSyncTest : public ::testing::Test {
 protected:
  SecretSyncTest() { Make(); }

  void Make(bool cancel = false) {
    SyncOptions o;
    o.name = "node-1";
    o.realms = {kRealm, "other.org"};
    o.cancel_sessions = cancel;
    o.auth_mode = AuthMode::kSharedSecret;
    sync_ = std::make_unique<CredentialSync>(o, &redis_, &clock_, &metrics_);
    ASSERT_TRUE(sync_->Prepare().ok());
  }

  void Apply(const WR& frame) { ASSERT_TRUE(sync_->OnFrame(frame).ok()); }

  void StartSynced(uint64_t revision = 0, const std::vector<v1::Event>& snapshot = {},
                   WR::SnapshotReason reason = WR::NO_RESUME_POINT,
                   const std::string& epoch = kEpoch) {
    Apply(SnapshotBegin(epoch, reason));
    if (!snapshot.empty()) Apply(Events(epoch, 0, snapshot));
    Apply(Synced(epoch, revision));
  }

  std::set<std::string> Set(const std::string& realm = kRealm) {
    return redis_.Members(SecretSetName(realm));
  }

  ManualClock clock_{kNow};
  FakeRedis redis_{&clock_};
  MetricsRegistry registry_;
  SyncMetrics metrics_{&registry_, &clock_};
  SyncKeys keys_ = SyncKeys::For("node-1", AuthMode::kSharedSecret);
  std::unique_ptr<CredentialSync> sync_;
};

TEST_F(SecretSyncTest, SecretEventAddsItToCoturnsSetAndRecordsIt) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA)}));
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretA}));
  EXPECT_EQ(redis_.Hash(keys_.secrets).at("example.org/s1"), "0\t3600000\t" + kSecretA);
  EXPECT_EQ(redis_.Hash(keys_.position).at("revision"), "1");
  EXPECT_EQ(metrics_.secrets_applied->value(), 1u);
  EXPECT_EQ(metrics_.secrets->value(), 1);
  // Its own position: nothing of the per-credential mode's keys.
  EXPECT_TRUE(redis_.Hash(SyncKeys::For("node-1").position).empty());
}

TEST_F(SecretSyncTest, RetiredSecretLeavesTheSetAndTheOthersStay) {
  StartSynced();
  Apply(Events(kEpoch, 2, {Secret(1, "s1", kSecretA), Secret(2, "s2", kSecretB)}));
  Apply(Events(kEpoch, 3, {Retired(3, "s1")}));
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretB}));
  EXPECT_FALSE(redis_.Hash(keys_.secrets).contains("example.org/s1"));
  EXPECT_EQ(metrics_.secrets_removed_retired->value(), 1u);
  EXPECT_EQ(metrics_.secret_retirements_applied->value(), 1u);
}

TEST_F(SecretSyncTest, RetirementAfterARestartFindsTheBytesInRedis) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA)}));
  Make();  // a new process: only Redis remembers
  EXPECT_EQ(sync_->position(), (Position{kEpoch, 1}));
  Apply(Events(kEpoch, 2, {Retired(2, "s1")}));
  EXPECT_TRUE(Set().empty());
}

TEST_F(SecretSyncTest, TwoIdsWithTheSameBytesKeepTheMemberUntilBothAreRetired) {
  StartSynced();
  Apply(Events(kEpoch, 2, {Secret(1, "s1", kSecretA), Secret(2, "s2", kSecretA)}));
  Apply(Events(kEpoch, 3, {Retired(3, "s1")}));
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretA}));
  Apply(Events(kEpoch, 4, {Retired(4, "s2")}));
  EXPECT_TRUE(Set().empty());
}

TEST_F(SecretSyncTest, SecretsOfOtherRealmsAndMalformedOnesAreRefused) {
  StartSynced();
  Apply(Events(
      kEpoch, 4,
      {Secret(1, "short", "too-short-a-secret"), Secret(2, "third", kSecretA, 0, "third.org"),
       Secret(3, "bad id!", kSecretB), Secret(4, "blank", std::string(40, ' '))}));
  EXPECT_TRUE(Set().empty());
  EXPECT_TRUE(redis_.Members(SecretSetName("third.org")).empty());
  EXPECT_EQ(metrics_.events_refused->value(), 4u);
  EXPECT_EQ(sync_->position().revision, 4u);  // refused records never stop the sync
}

TEST_F(SecretSyncTest, PutsAreRefusedInSharedSecretMode) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Put(1, Cred(kRealm, "alice", kNow + 60'000))}));
  EXPECT_FALSE(redis_.Get(UserKeyName(kRealm, "alice")));
  EXPECT_EQ(metrics_.events_refused->value(), 1u);
}

TEST_F(SecretSyncTest, SameEpochSnapshotRemovesSecretsRetiredWhileAwayAndUnknownMembers) {
  StartSynced();
  Apply(Events(kEpoch, 2, {Secret(1, "s1", kSecretA), Secret(2, "s2", kSecretB)}));
  redis_.log.clear();
  ASSERT_TRUE(redis_
                  .Pipeline({{"SADD", SecretSetName(kRealm), "pasted-by-hand-pasted-by-hand-xx"},
                             {"SADD", SecretSetName("other.org"), kSecretC}})
                  .ok());
  // s1 was retired while the sync was away: the snapshot holds s2 only.
  StartSynced(5, {Secret(2, "s2", kSecretB)}, WR::HISTORY_COMPACTED);
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretB}));
  EXPECT_TRUE(redis_.Members(SecretSetName("other.org")).empty());
  EXPECT_EQ(metrics_.secrets_removed_reconciled->value(), 3u);
  EXPECT_EQ(redis_.Hash(keys_.secrets).size(), 1u);
}

TEST_F(SecretSyncTest, NewEpochSnapshotKeepsMissingSecretsUntilTheirCredentialsExpire) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "old", kSecretA, 0, kRealm, 600'000)}));
  // The broker's store was made anew without it: credentials minted with it
  // may live 600 s more.
  StartSynced(3, {Secret(3, "new", kSecretB)}, WR::EPOCH_CHANGED, "epoch-2");
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretA, kSecretB}));
  EXPECT_EQ(redis_.Hash(keys_.secrets).at("example.org/old/legacy"),
            std::to_string(kNow + 600'000) + "\t600000\t" + kSecretA);
  EXPECT_EQ(metrics_.secrets_retained->value(), 1u);
  EXPECT_EQ(sync_->NextSecretDropMs(), kNow + 600'000);

  clock_.Advance(599'000);
  ASSERT_TRUE(sync_->ExpireSecrets().ok());
  EXPECT_EQ(Set().size(), 2u);
  clock_.Advance(1'000);
  ASSERT_TRUE(sync_->ExpireSecrets().ok());
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretB}));
  EXPECT_EQ(metrics_.secrets_removed_expired->value(), 1u);
  EXPECT_EQ(sync_->NextSecretDropMs(), 0);
}

TEST_F(SecretSyncTest, NewEpochResendingTheSameSecretMakesItKnownAgain) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA)}));
  StartSynced(1, {Secret(1, "s1", kSecretA)}, WR::EPOCH_CHANGED, "epoch-2");
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretA}));
  EXPECT_EQ(redis_.Hash(keys_.secrets).size(), 1u);
  EXPECT_EQ(metrics_.secrets_retained->value(), 0u);
}

TEST_F(SecretSyncTest, AnIdReusedWithOtherBytesInANewEpochKeepsTheOldBytesAsLegacy) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA)}));
  StartSynced(1, {Secret(1, "s1", kSecretB)}, WR::EPOCH_CHANGED, "epoch-2");
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretA, kSecretB}));
  EXPECT_TRUE(redis_.Hash(keys_.secrets).contains("example.org/s1/legacy"));
  Apply(Events("epoch-2", 2, {Retired(2, "s1")}));
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretA}));  // the legacy bytes wait for expiry
}

TEST_F(SecretSyncTest, SecretLeavesTheSetAtItsExpiry) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA, kNow + 10'000)}));
  EXPECT_EQ(sync_->NextSecretDropMs(), kNow + 10'000);
  ASSERT_TRUE(sync_->ExpireSecrets().ok());
  EXPECT_EQ(Set().size(), 1u);
  clock_.Advance(10'000);
  ASSERT_TRUE(sync_->ExpireSecrets().ok());
  EXPECT_TRUE(Set().empty());
  EXPECT_TRUE(redis_.Hash(keys_.secrets).empty());
}

TEST_F(SecretSyncTest, ExpiryIsAlsoAppliedWithTheNextFrame) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA, kNow + 10'000)}));
  clock_.Advance(10'000);
  Apply(Frame(kEpoch, 1, WR::PROGRESS));
  EXPECT_TRUE(Set().empty());
}

TEST_F(SecretSyncTest, AnAlreadyExpiredSecretIsNotAdded) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA, kNow - 1)}));
  EXPECT_TRUE(Set().empty());
  EXPECT_TRUE(redis_.Hash(keys_.secrets).empty());
}

TEST_F(SecretSyncTest, ExpiryTimerRemovesTheSecretWithoutAFrame) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA, kNow + 1'000)}));
  SecretExpiryTimer timer(sync_.get(), &clock_, 10);
  timer.Start();
  clock_.Advance(1'000);
  for (int i = 0; i < 200 && !Set().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  timer.Stop();
  EXPECT_TRUE(Set().empty());
}

TEST_F(SecretSyncTest, LostExecReplyReloadsTheSecretsFromRedis) {
  StartSynced();
  redis_.fail_after_apply = true;  // applied, but the reply is lost
  EXPECT_FALSE(sync_->OnFrame(Events(kEpoch, 1, {Secret(1, "s1", kSecretA)})).ok());
  ASSERT_TRUE(sync_->Prepare().ok());
  EXPECT_EQ(sync_->position().revision, 1u);
  Apply(Events(kEpoch, 2, {Retired(2, "s1")}));
  EXPECT_TRUE(Set().empty());
}

TEST_F(SecretSyncTest, RedisThatLostItsStateIsRefilledFromASnapshot) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Secret(1, "s1", kSecretA)}));
  redis_.FlushAll();
  EXPECT_FALSE(sync_->OnFrame(Frame(kEpoch, 1, WR::PROGRESS)).ok());
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->revision, 0u);  // a full snapshot
  StartSynced(1, {Secret(1, "s1", kSecretA)});
  EXPECT_EQ(Set(), (std::set<std::string>{kSecretA}));
}

TEST_F(SecretSyncTest, AcknowledgementsAfterSyncedSecretChangesAndProgress) {
  Apply(SnapshotBegin(kEpoch, WR::NO_RESUME_POINT));
  Apply(Events(kEpoch, 0, {Secret(1, "s1", kSecretA)}));
  EXPECT_FALSE(sync_->TakeAcknowledgement());  // no position inside a snapshot
  Apply(Synced(kEpoch, 1));
  EXPECT_EQ(sync_->TakeAcknowledgement(), (Position{kEpoch, 1}));
  EXPECT_FALSE(sync_->TakeAcknowledgement());

  Apply(Events(kEpoch, 2, {Secret(2, "s2", kSecretB)}));
  EXPECT_EQ(sync_->TakeAcknowledgement(), (Position{kEpoch, 2}));
  Apply(Events(kEpoch, 3, {Revoke(3, ByUsername("1900000000:x", kRealm))}));
  EXPECT_FALSE(sync_->TakeAcknowledgement());  // no secret changed
  Apply(Frame(kEpoch, 5, WR::PROGRESS));
  EXPECT_EQ(sync_->TakeAcknowledgement(), (Position{kEpoch, 5}));
}

TEST_F(SecretSyncTest, RevokedApproach1UsernameIsQueuedForItsSessionsUntilItsExpiry) {
  Make(/*cancel=*/true);
  int notified = 0;
  sync_->SetCancellationListener([&] { ++notified; });
  StartSynced();
  const int64_t expiry_s = kNow / 1000 + 600;
  const std::string user = std::to_string(expiry_s) + ":Zm9vYmFyYmF6cXV4cXV1eA";
  Apply(Events(kEpoch, 3,
               {Revoke(1, ByUsername(user, kRealm)),
                Revoke(2, ByUsername(std::to_string(kNow / 1000 - 1) + ":expired", kRealm)),
                Revoke(3, ByUsername("not-approach-1", kRealm))}));
  auto cancel = redis_.ZSet(keys_.cancel);
  ASSERT_EQ(cancel.size(), 1u);
  EXPECT_EQ(cancel.begin()->first, kRealm + "/" + user);
  EXPECT_EQ(cancel.begin()->second, static_cast<double>(expiry_s * 1000));
  EXPECT_EQ(notified, 1);
  // Another realm's revocation is not ours.
  Apply(Events(kEpoch, 4, {Revoke(4, ByUsername(user, "third.org"))}));
  EXPECT_EQ(redis_.ZSet(keys_.cancel).size(), 1u);
}

TEST(SecretsTest, RestUsernames) {
  int64_t ms = 0;
  EXPECT_TRUE(ParseRestUsername("1700000000:abc", &ms));
  EXPECT_EQ(ms, 1'700'000'000'000);
  EXPECT_TRUE(ParseRestUsername("1700000000:a:b", &ms));
  for (const char* bad : {"", ":abc", "1700000000:", "abc:def", "-5:x", "+5:x", "1700000000",
                          "1234567890123:x", "17 0:x"}) {
    EXPECT_FALSE(ParseRestUsername(bad, &ms)) << bad;
  }
}

TEST(SecretsTest, EntriesRoundTripAndMalformedOnesAreRejected) {
  KnownSecret s{"example.org", "s-1", kSecretA, 123, 456, true};
  KnownSecret back;
  ASSERT_TRUE(ParseSecretEntry(SecretField(s), SecretValue(s), &back));
  EXPECT_EQ(SecretField(back), "example.org/s-1/legacy");
  EXPECT_EQ(back.secret, kSecretA);
  EXPECT_EQ(back.drop_at_ms, 123);
  EXPECT_EQ(back.max_credential_ttl_ms, 456);
  EXPECT_TRUE(back.legacy);
  for (auto [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"no-slash", "0\t0\tx"}, {"r/i", "0\t0"}, {"r/i", "x\t0\tsecret"}, {"r/i", "0\t0\t"}}) {
    EXPECT_FALSE(ParseSecretEntry(field, value, &back)) << field << " " << value;
  }
}

TEST(SecretsTest, ValidationNamesTheFieldAndNeverQuotesTheBytes) {
  v1::SharedSecret s;
  s.set_realm(kRealm);
  s.set_id("s1");
  s.set_secret("short-secret-bytes");
  absl::Status st = ValidateSharedSecret(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("secret.secret"), std::string::npos);
  EXPECT_EQ(st.message().find("short-secret-bytes"), std::string::npos);
  s.set_secret(kSecretA + "\x01");
  EXPECT_FALSE(ValidateSharedSecret(s).ok());
  s.set_secret(std::string(257, 'x'));
  EXPECT_FALSE(ValidateSharedSecret(s).ok());
  s.set_secret(std::string(256, 'x'));
  EXPECT_TRUE(ValidateSharedSecret(s).ok());
  s.set_id(std::string(65, 'i'));
  EXPECT_NE(ValidateSharedSecret(s).message().find("secret.id"), std::string::npos);
}

}  // namespace
}  // namespace turnbroker::turn
