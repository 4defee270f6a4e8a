// CredentialSync against an in-memory Redis: what each frame writes, the
// reconciliation after snapshots, legacy keys after an epoch change, bad
// records, and Redis failures.
#include "turnbroker/turn/sync.h"

#include <gtest/gtest.h>

#include "fake_redis.h"
#include "frames.h"
#include "turnbroker/common/credential.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;
using WR = v1::WatchResponse;

constexpr int64_t kNow = 1'800'000'000'000;
constexpr int64_t kExp = kNow + 600'000;
const std::string kRealm = "example.org";
const std::string kEpoch = "epoch-1";

std::string UserKey(const std::string& user, const std::string& realm = kRealm) {
  return UserKeyName(realm, user);
}

class SyncTest : public ::testing::Test {
 protected:
  SyncTest() { Make(); }

  void Make(std::vector<std::string> realms = {kRealm}, std::string farm = "farm-a",
            bool cancel = false) {
    SyncOptions o;
    o.name = "node-1";
    o.realms = std::move(realms);
    o.farm = std::move(farm);
    o.cancel_sessions = cancel;
    sync_ = std::make_unique<CredentialSync>(o, &redis_, &clock_, &metrics_);
    ASSERT_TRUE(sync_->Prepare().ok());
  }

  void Apply(const WR& frame) { ASSERT_TRUE(sync_->OnFrame(frame).ok()); }

  // First start: an empty snapshot, then SYNCED at `revision`.
  void StartSynced(uint64_t revision = 0, const std::vector<v1::Event>& snapshot = {}) {
    Apply(SnapshotBegin(kEpoch, WR::NO_RESUME_POINT));
    if (!snapshot.empty()) Apply(Events(kEpoch, 0, snapshot));
    Apply(Synced(kEpoch, revision));
  }

  std::string Hex(const std::string& user) { return HexLower(KeyOf(user, kRealm, "pw-" + user)); }

  ManualClock clock_{kNow};
  FakeRedis redis_{&clock_};
  MetricsRegistry registry_;
  SyncMetrics metrics_{&registry_, &clock_};
  SyncKeys keys_ = SyncKeys::For("node-1");
  std::unique_ptr<CredentialSync> sync_;
};

TEST_F(SyncTest, PutWritesHexKeyWithAbsoluteExpiryAndIndexesIt) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Put(1, Cred(kRealm, "alice", kExp, "sip:alice@x", "pcscf-1"))}));

  EXPECT_EQ(redis_.Get(UserKey("alice")), Hex("alice"));
  EXPECT_EQ(redis_.ExpiryMs(UserKey("alice")), kExp);
  EXPECT_EQ(redis_.Hash(keys_.managed).at("example.org/alice"),
            std::to_string(kExp) + "\tpcscf-1\tsip:alice@x");
  EXPECT_EQ(redis_.Hash(keys_.position).at("revision"), "1");
  EXPECT_EQ(redis_.Hash(keys_.position).at("epoch"), kEpoch);
  EXPECT_EQ(sync_->position(), (Position{kEpoch, 1}));
}

TEST_F(SyncTest, FrameIsOneTransactionWithItsPosition) {
  StartSynced();
  redis_.log.clear();
  Apply(Events(kEpoch, 2, {Put(1, Cred(kRealm, "a", kExp)), Put(2, Cred(kRealm, "b", kExp))}));
  ASSERT_GE(redis_.log.size(), 4u);
  EXPECT_EQ(redis_.log.front().front(), "MULTI");
  EXPECT_EQ(redis_.log.back().front(), "EXEC");
  std::vector<std::string> names;
  for (auto& c : redis_.log) names.push_back(c.front());
  // Two SETs, one HSET of the index for both, then the position.
  EXPECT_EQ(names, (std::vector<std::string>{"MULTI", "SET", "SET", "HSET", "HSET", "EXEC"}));
  EXPECT_EQ(redis_.log[1],
            (RedisCommand{"SET", UserKey("a"), Hex("a"), "PXAT", std::to_string(kExp)}));
}

TEST_F(SyncTest, RevokeDeletesListedKeyAndForgetsIt) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Put(1, Cred(kRealm, "alice", kExp))}));
  Apply(Events(kEpoch, 2, {Revoke(2, ByUsername("alice", kRealm), {Ref(kRealm, "alice", kExp)})}));
  EXPECT_FALSE(redis_.Get(UserKey("alice")));
  EXPECT_TRUE(redis_.Hash(keys_.managed).empty());
  EXPECT_EQ(metrics_.keys_deleted_revoked->value(), 1u);
}

TEST_F(SyncTest, RevokeNeverDeletesAKeyItDidNotWrite) {
  redis_.Set(UserKey("static-user"), "00112233445566778899aabbccddeeff");
  StartSynced();
  Apply(Events(kEpoch, 1, {Revoke(1, ByUsername("static-user"), {Ref(kRealm, "static-user")})}));
  EXPECT_EQ(redis_.Get(UserKey("static-user")), "00112233445566778899aabbccddeeff");
}

TEST_F(SyncTest, PutThenRevokeInOneFrameEndsDeleted) {
  StartSynced();
  Apply(Events(kEpoch, 2,
               {Put(1, Cred(kRealm, "bob", kExp)),
                Revoke(2, BySubscriber("sip:bob@x"), {Ref(kRealm, "bob", kExp)})}));
  EXPECT_FALSE(redis_.Get(UserKey("bob")));
}

TEST_F(SyncTest, RevocationOfAnotherRealmIsIgnored) {
  Make({kRealm, "other.org"});
  StartSynced();
  Apply(Events(kEpoch, 1, {Put(1, Cred(kRealm, "carol", kExp))}));
  Apply(Events(kEpoch, 2,
               {Revoke(2, ByUsername("carol", "third.org"), {Ref("third.org", "carol")})}));
  EXPECT_TRUE(redis_.Get(UserKey("carol")));
}

TEST_F(SyncTest, UsernameSelectorWithoutRealmCoversEveryServedRealm) {
  Make({kRealm, "other.org"});
  StartSynced();
  Apply(Events(kEpoch, 2,
               {Put(1, Cred(kRealm, "dave", kExp)), Put(2, Cred("other.org", "dave", kExp))}));
  Apply(Events(kEpoch, 3, {Revoke(3, ByUsername("dave"))}));
  EXPECT_FALSE(redis_.Get(UserKey("dave")));
  EXPECT_FALSE(redis_.Get(UserKey("dave", "other.org")));
}

TEST_F(SyncTest, RefusesBadRecordsWithoutStopping) {
  StartSynced();
  v1::Credential short_key = Cred(kRealm, "short", kExp);
  short_key.set_key("0123456789");
  v1::Credential other_farm = Cred(kRealm, "scoped", kExp);
  other_farm.add_scopes("farm-b");
  v1::Credential bad_user = Cred(kRealm, "has space", kExp);
  ASSERT_TRUE(sync_
                  ->OnFrame(Events(
                      kEpoch, 5,
                      {Put(1, Cred("unserved.org", "eve", kExp)), Put(2, short_key),
                       Put(3, other_farm), Put(4, bad_user), Put(5, Cred(kRealm, "ok", kExp))}))
                  .ok());
  EXPECT_EQ(metrics_.events_refused->value(), 4u);
  EXPECT_TRUE(redis_.Get(UserKey("ok")));
  EXPECT_FALSE(redis_.Get(UserKey("eve", "unserved.org")));
  EXPECT_FALSE(redis_.Get(UserKey("short")));
  EXPECT_FALSE(redis_.Get(UserKey("scoped")));
  EXPECT_EQ(sync_->position().revision, 5u);
}

TEST_F(SyncTest, ScopedToThisFarmIsApplied) {
  StartSynced();
  v1::Credential c = Cred(kRealm, "scoped", kExp);
  c.add_scopes("farm-z");
  c.add_scopes("farm-a");
  Apply(Events(kEpoch, 1, {Put(1, c)}));
  EXPECT_TRUE(redis_.Get(UserKey("scoped")));
}

TEST_F(SyncTest, ExpiredPutRemovesTheKey) {
  StartSynced();
  Apply(Events(kEpoch, 1, {Put(1, Cred(kRealm, "old", kExp))}));
  Apply(Events(kEpoch, 2, {Put(2, Cred(kRealm, "old", kNow - 1))}));
  EXPECT_FALSE(redis_.Get(UserKey("old")));
}

TEST_F(SyncTest, SnapshotOfSameEpochDeletesKeysRevokedWhileAway) {
  StartSynced(2, {Put(1, Cred(kRealm, "stays", kExp)), Put(2, Cred(kRealm, "revoked", kExp))});
  redis_.Set(UserKey("foreign"), "ffffffffffffffffffffffffffffffff");
  // Reconnect after a gap: the broker's history no longer reaches revision 2.
  ASSERT_TRUE(sync_->Prepare().ok());
  Apply(SnapshotBegin(kEpoch, WR::HISTORY_COMPACTED));
  Apply(
      Events(kEpoch, 0, {Put(1, Cred(kRealm, "stays", kExp)), Put(7, Cred(kRealm, "new", kExp))}));
  Apply(Synced(kEpoch, 9));

  EXPECT_TRUE(redis_.Get(UserKey("stays")));
  EXPECT_TRUE(redis_.Get(UserKey("new")));
  EXPECT_FALSE(redis_.Get(UserKey("revoked")));
  EXPECT_EQ(redis_.Get(UserKey("foreign")), "ffffffffffffffffffffffffffffffff");
  EXPECT_EQ(metrics_.keys_deleted_reconciled->value(), 1u);
  EXPECT_EQ(sync_->position(), (Position{kEpoch, 9}));
  EXPECT_EQ(sync_->legacy_size(), 0u);
}

TEST_F(SyncTest, KeysRevokedDuringTheSnapshotAreNotDeletedTwice) {
  StartSynced(1, {Put(1, Cred(kRealm, "x", kExp))});
  Apply(SnapshotBegin(kEpoch, WR::WATCHER_TOO_SLOW));
  Apply(Events(kEpoch, 0, {Revoke(2, ByUsername("x", kRealm), {Ref(kRealm, "x")})}));
  Apply(Synced(kEpoch, 2));
  EXPECT_EQ(metrics_.keys_deleted_revoked->value(), 1u);
  EXPECT_EQ(metrics_.keys_deleted_reconciled->value(), 0u);
}

TEST_F(SyncTest, SnapshotOfNewEpochKeepsMissingKeysAndSelectorsStillApply) {
  StartSynced(4, {Put(1, Cred(kRealm, "a1", kExp, "sip:a@x", "pcscf-1")),
                  Put(2, Cred(kRealm, "b1", kExp, "sip:b@x", "pcscf-2")),
                  Put(3, Cred(kRealm, "c1", kExp, "sip:c@x", "pcscf-2")),
                  Put(4, Cred(kRealm, "d1", kExp, "sip:d@x", "pcscf-3"))});
  // The broker lost its store: a new epoch with only d1 re-asserted.
  ASSERT_TRUE(sync_->Prepare().ok());
  Apply(SnapshotBegin("epoch-2", WR::EPOCH_CHANGED));
  Apply(Events("epoch-2", 0, {Put(1, Cred(kRealm, "d1", kExp, "sip:d@x", "pcscf-3"))}));
  Apply(Synced("epoch-2", 1));
  for (const char* u : {"a1", "b1", "c1", "d1"}) EXPECT_TRUE(redis_.Get(UserKey(u))) << u;
  EXPECT_EQ(sync_->legacy_size(), 3u);
  EXPECT_EQ(metrics_.keys_retained->value(), 3u);
  EXPECT_EQ(redis_.ZSet(keys_.legacy).size(), 3u);

  // The new broker knows none of them: its revocations list nothing, and the
  // selectors apply to the legacy keys.
  Apply(Events("epoch-2", 2, {Revoke(2, BySubscriber("sip:a@x"))}));
  EXPECT_FALSE(redis_.Get(UserKey("a1")));
  Apply(Events("epoch-2", 3, {Revoke(3, ByIssuer("pcscf-2"))}));
  EXPECT_FALSE(redis_.Get(UserKey("b1")));
  EXPECT_FALSE(redis_.Get(UserKey("c1")));
  EXPECT_TRUE(redis_.Get(UserKey("d1")));
  EXPECT_EQ(sync_->legacy_size(), 0u);
}

TEST_F(SyncTest, LegacyKeysSurviveASameEpochSnapshotAndARestart) {
  StartSynced(1, {Put(1, Cred(kRealm, "old", kExp, "sip:old@x"))});
  Apply(SnapshotBegin("epoch-2", WR::EPOCH_CHANGED));
  Apply(Synced("epoch-2", 0));
  ASSERT_EQ(sync_->legacy_size(), 1u);
  // Later a gap in the new epoch: the broker still does not know "old".
  Apply(SnapshotBegin("epoch-2", WR::HISTORY_COMPACTED));
  Apply(Synced("epoch-2", 5));
  EXPECT_TRUE(redis_.Get(UserKey("old")));
  // A restarted sync reloads the legacy set and its owners.
  Make();
  EXPECT_EQ(sync_->legacy_size(), 1u);
  Apply(Events("epoch-2", 6, {Revoke(6, BySubscriber("sip:old@x"))}));
  EXPECT_FALSE(redis_.Get(UserKey("old")));
}

TEST_F(SyncTest, ReassertedLegacyKeyIsNoLongerLegacy) {
  StartSynced(1, {Put(1, Cred(kRealm, "k", kExp, "sip:k@x"))});
  Apply(SnapshotBegin("epoch-2", WR::EPOCH_CHANGED));
  Apply(Synced("epoch-2", 0));
  ASSERT_EQ(sync_->legacy_size(), 1u);
  Apply(Events("epoch-2", 1, {Put(1, Cred(kRealm, "k", kExp + 1000, "sip:k@x"))}));
  EXPECT_EQ(sync_->legacy_size(), 0u);
  EXPECT_TRUE(redis_.ZSet(keys_.legacy).empty());
  EXPECT_EQ(redis_.ExpiryMs(UserKey("k")), kExp + 1000);
}

TEST_F(SyncTest, RevisionAheadIsTreatedLikeAnEpochChange) {
  StartSynced(9, {Put(9, Cred(kRealm, "kept", kExp))});
  Apply(SnapshotBegin(kEpoch, WR::REVISION_AHEAD));
  Apply(Synced(kEpoch, 3));
  EXPECT_TRUE(redis_.Get(UserKey("kept")));
  EXPECT_EQ(sync_->legacy_size(), 1u);
}

TEST_F(SyncTest, FrameOfAnotherEpochWithoutSnapshotIsRejected) {
  StartSynced(1);
  EXPECT_FALSE(sync_->OnFrame(Events("epoch-x", 2, {Put(2, Cred(kRealm, "z", kExp))})).ok());
  EXPECT_FALSE(redis_.Get(UserKey("z")));
  EXPECT_EQ(sync_->position(), (Position{kEpoch, 1}));
}

TEST_F(SyncTest, RedisDownFailsTheFrameAndKeepsThePosition) {
  StartSynced(1);
  redis_.down = true;
  EXPECT_EQ(sync_->OnFrame(Events(kEpoch, 2, {Put(2, Cred(kRealm, "late", kExp))})).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(metrics_.redis_up.load());
  EXPECT_EQ(metrics_.redis_errors->value(), 1u);
  // Nothing else runs until the state is reloaded.
  EXPECT_FALSE(sync_->Prepare().ok());
  redis_.down = false;
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(*from, (Position{kEpoch, 1}));
  EXPECT_TRUE(metrics_.redis_up.load());
}

TEST_F(SyncTest, LostExecReplyResumesFromWhatRedisHas) {
  StartSynced(1);
  redis_.fail_after_apply = true;
  EXPECT_FALSE(sync_->OnFrame(Events(kEpoch, 2, {Put(2, Cred(kRealm, "w", kExp))})).ok());
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->revision, 2u);  // the transaction did commit
}

TEST_F(SyncTest, ProgressStoresThePosition) {
  StartSynced(1);
  Apply(Frame(kEpoch, 7, WR::PROGRESS));
  EXPECT_EQ(redis_.Hash(keys_.position).at("revision"), "7");
}

TEST_F(SyncTest, IdleProgressNoticesThatRedisLostItsState) {
  StartSynced(1, {Put(1, Cred(kRealm, "alice", kExp))});
  Apply(Frame(kEpoch, 1, WR::PROGRESS));  // nothing lost yet
  redis_.FlushAll();                      // Redis restarted empty
  absl::Status s = sync_->OnFrame(Frame(kEpoch, 1, WR::PROGRESS));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_EQ(metrics_.state_lost->value(), 1u);
  // The next stream starts from no position: a full snapshot refills it.
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(*from, Position{});
  Apply(SnapshotBegin(kEpoch, WR::NO_RESUME_POINT));
  Apply(Events(kEpoch, 0, {Put(1, Cred(kRealm, "alice", kExp))}));
  Apply(Synced(kEpoch, 1));
  EXPECT_EQ(redis_.Get(UserKey("alice")), Hex("alice"));
  Apply(Frame(kEpoch, 1, WR::PROGRESS));
}

TEST_F(SyncTest, IdleProgressWithRedisDownFailsAndKeepsThePosition) {
  StartSynced(1);
  redis_.down = true;
  EXPECT_EQ(sync_->OnFrame(Frame(kEpoch, 1, WR::PROGRESS)).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(metrics_.redis_up.load());
  EXPECT_FALSE(sync_->Prepare().ok());
  redis_.down = false;
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(*from, (Position{kEpoch, 1}));
}

TEST_F(SyncTest, LiveEventsIntoARedisThatLostItsStateResyncFromNothing) {
  StartSynced(1, {Put(1, Cred(kRealm, "alice", kExp))});
  redis_.FlushAll();
  // The frame's own position would hide the loss: HSET reports it new.
  EXPECT_EQ(sync_->OnFrame(Events(kEpoch, 2, {Put(2, Cred(kRealm, "bob", kExp))})).code(),
            absl::StatusCode::kDataLoss);
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(*from, Position{});
  EXPECT_TRUE(redis_.Hash(keys_.position).empty());
}

TEST_F(SyncTest, PartlyFailedTransactionDoesNotAdvanceThePosition) {
  StartSynced(1);
  // Another tool wrote the index key with the wrong type: EXEC runs the
  // other commands, the position's HSET included (Redis does not roll back).
  redis_.Set(keys_.managed, "not a hash");
  EXPECT_FALSE(sync_->OnFrame(Events(kEpoch, 2, {Put(2, Cred(kRealm, "w", kExp))})).ok());
  EXPECT_EQ(redis_.Hash(keys_.position).at("revision"), "1");
  auto from = sync_->Prepare();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(*from, (Position{kEpoch, 1}));  // the frame is applied again
}

TEST_F(SyncTest, PruneForgetsExpiredEntries) {
  StartSynced(1, {Put(1, Cred(kRealm, "short", kNow + 1'000, "sip:s@x"))});
  clock_.Advance(10 * 60'000);
  Apply(Frame(kEpoch, 2, WR::PROGRESS));
  EXPECT_TRUE(redis_.Hash(keys_.managed).empty());
  EXPECT_EQ(metrics_.keys_pruned->value(), 1u);
}

TEST_F(SyncTest, BusyStreamsPruneToo) {
  StartSynced(1, {Put(1, Cred(kRealm, "short", kNow + 1'000))});
  clock_.Advance(10 * 60'000);
  // Live events only, no PROGRESS marker.
  Apply(Events(kEpoch, 2, {Put(2, Cred(kRealm, "fresh", kNow + 20 * 60'000))}));
  EXPECT_EQ(redis_.Hash(keys_.managed).count("example.org/short"), 0u);
  EXPECT_EQ(redis_.Hash(keys_.managed).count("example.org/fresh"), 1u);
}

TEST_F(SyncTest, RevocationQueuesSessionCancellationWhenEnabled) {
  Make({kRealm}, "", /*cancel=*/true);
  int notified = 0;
  sync_->SetCancellationListener([&] { ++notified; });
  StartSynced();
  Apply(Events(kEpoch, 1, {Put(1, Cred(kRealm, "u", kExp))}));
  Apply(Events(kEpoch, 2, {Revoke(2, ByUsername("u", kRealm), {Ref(kRealm, "u", kExp)})}));
  EXPECT_EQ(redis_.ZSet(keys_.cancel).at("example.org/u"), kExp);
  EXPECT_EQ(notified, 1);
}

TEST_F(SyncTest, UnknownEventKindIsSkipped) {
  StartSynced();
  v1::Event unknown;
  unknown.set_revision(1);
  Apply(Events(kEpoch, 1, {unknown}));
  EXPECT_EQ(sync_->position().revision, 1u);
}

}  // namespace
}  // namespace turnbroker::turn
