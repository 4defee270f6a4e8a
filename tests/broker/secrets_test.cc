// Approach 1 in the embedded store, on a manual clock: the secret record,
// the rotation rules (stage, activate gated on the syncs' reports or the
// grace, retire), validation, durability and compaction
// (docs/approach1.md).
#include "turnbroker/broker/secrets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "process.h"
#include "store_fixture.h"
#include "turnbroker/broker/journal.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::broker::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kRealm[] = "ims.example.org";
const std::string kBytesA = "AAAAaaaa-secret-number-one-0123456789_xyz";
const std::string kBytesB = "BBBBbbbb-secret-number-two-0123456789_xyz";

absl::StatusOr<v1::SecretResponse> WriteSecretSync(Store& store, SecretCommand command) {
  std::promise<absl::StatusOr<v1::SecretResponse>> done;
  store.WriteSecret(std::move(command),
                    [&](absl::StatusOr<v1::SecretResponse> r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

class SecretStoreTest : public StoreTest {
 protected:
  void SetUp() override {
    options_.secrets.stage_grace_ms = 60'000;
    options_.limits.max_ttl_ms = 3'600'000;
    StoreTest::SetUp();
  }

  absl::StatusOr<v1::SecretResponse> Add(const std::string& id, const std::string& bytes,
                                         const std::string& realm = kRealm,
                                         int64_t expires_at_ms = 0) {
    SecretCommand c;
    c.kind = SecretCommand::kAdd;
    c.secret.set_realm(realm);
    c.secret.set_id(id);
    c.secret.set_secret(bytes);
    c.secret.set_expires_at_ms(expires_at_ms);
    return WriteSecretSync(*store_, c);
  }
  absl::StatusOr<v1::SecretResponse> Activate(const std::string& id,
                                              const std::string& realm = kRealm) {
    SecretCommand c;
    c.kind = SecretCommand::kActivate;
    c.secret.set_realm(realm);
    c.secret.set_id(id);
    return WriteSecretSync(*store_, c);
  }
  absl::StatusOr<v1::SecretResponse> Retire(const std::string& id, bool force = false,
                                            const std::string& realm = kRealm) {
    SecretCommand c;
    c.kind = SecretCommand::kRetire;
    c.secret.set_realm(realm);
    c.secret.set_id(id);
    c.force = force;
    return WriteSecretSync(*store_, c);
  }
  void Ack(const std::string& name, Revision revision, std::vector<std::string> realms = {},
           std::string epoch = "") {
    SyncAck a;
    a.name = name;
    a.epoch = epoch.empty() ? state().epoch() : epoch;
    a.revision = revision;
    a.realms = std::move(realms);
    a.at_ms = clock_.NowMs();
    std::promise<absl::Status> done;
    store_->Acknowledge(a, [&](absl::Status s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
  }
  // A SQLite journal in `dir` (the durable store), opened anew each call.
  std::unique_ptr<Journal> DurableJournal(const turnbroker::testing::TempDir& dir) {
    auto j = OpenSqliteJournal({dir.path(), false, false});
    EXPECT_TRUE(j.ok()) << j.status();
    return j.ok() ? std::move(*j) : nullptr;
  }
  v1::SecretState StateOf(const std::string& id) {
    SecretEntryRef e = state().FindSecret(kRealm, id);
    return e ? e->secret().state() : v1::SECRET_STATE_UNSPECIFIED;
  }
};

TEST_F(SecretStoreTest, AStagedSecretIsActivatedThenSupersededThenRetired) {
  auto a = Add("a", kBytesA);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->revision(), 1u);
  EXPECT_EQ(a->secret().state(), v1::SECRET_STATE_STAGED);
  EXPECT_TRUE(a->secret().secret().empty()) << "answers never carry the bytes";
  EXPECT_EQ(a->secret().max_credential_ttl_ms(), 3'600'000);
  EXPECT_EQ(a->secret().added_at_ms(), kStart);
  EXPECT_FALSE(a->epoch().empty());

  ASSERT_TRUE(Activate("a").ok());  // no sync reports: nothing to wait for
  EXPECT_EQ(StateOf("a"), v1::SECRET_STATE_ACTIVE);
  ASSERT_TRUE(Add("b", kBytesB).ok());
  clock_.Advance(1'000);
  auto b = Activate("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->revision(), 5u) << "a superseded at 4, b activated at 5";
  EXPECT_EQ(StateOf("a"), v1::SECRET_STATE_SUPERSEDED);
  EXPECT_EQ(StateOf("b"), v1::SECRET_STATE_ACTIVE);
  EXPECT_EQ(state().FindSecret(kRealm, "a")->secret().superseded_at_ms(), kStart + 1'000);
  EXPECT_EQ(state().FindSecret(kRealm, "b")->staged_revision, 3u);

  // The log: the events watchers receive, in order, with the bytes.
  std::vector<Change> h = History();
  ASSERT_EQ(h.size(), 5u);
  v1::Event e;
  ASSERT_TRUE(e.ParseFromString(h[3].secret->event_wire));
  EXPECT_EQ(e.revision(), 4u);
  EXPECT_EQ(e.secret().id(), "a");
  EXPECT_EQ(e.secret().state(), v1::SECRET_STATE_SUPERSEDED);
  EXPECT_EQ(e.secret().secret(), kBytesA);
  ASSERT_TRUE(e.ParseFromString(h[3].secret->redacted_wire));
  EXPECT_TRUE(e.secret().secret().empty());

  // The active one cannot be retired; the superseded one only once its
  // credentials may have expired, or by force.
  auto r = Retire("b");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("ACTIVE secret of realm 'ims.example.org'"));
  r = Retire("a");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("may be valid for 3600 s more"), HasSubstr("or now with force")));
  clock_.Advance(3'600'000);
  r = Retire("a");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(StateOf("a"), v1::SECRET_STATE_UNSPECIFIED);
  std::vector<Change> last = History(state().head() - 1);  // older ones aged out
  ASSERT_EQ(last.size(), 1u);
  ASSERT_TRUE(e.ParseFromString(last[0].secret->event_wire));
  EXPECT_EQ(e.secret_retired().id(), "a");
  EXPECT_EQ(state().stats().secrets, 1u);

  // Activating the active one again writes nothing.
  Revision head = state().head();
  ASSERT_TRUE(Activate("b").ok());
  EXPECT_EQ(state().head(), head);
}

TEST_F(SecretStoreTest, RetireByForceAndAStagedSecretAnyTime) {
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ASSERT_TRUE(Activate("a").ok());
  ASSERT_TRUE(Add("b", kBytesB).ok());
  ASSERT_TRUE(Activate("b").ok());
  EXPECT_TRUE(Retire("a", /*force=*/true).ok());
  ASSERT_TRUE(Add("c", kBytesA + "c").ok());
  EXPECT_TRUE(Retire("c").ok()) << "a staged secret was never used to mint";
}

// Agents never mint with a secret before its not_before_ms, and only with
// the ACTIVE one: activating it earlier would leave every agent without a
// usable secret (503 for every REGISTER) until then, while the one it
// supersedes was still good.
TEST_F(SecretStoreTest, ActivationIsRefusedBeforeTheSecretsNotBefore) {
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ASSERT_TRUE(Activate("a").ok());
  SecretCommand c;
  c.kind = SecretCommand::kAdd;
  c.secret.set_realm(kRealm);
  c.secret.set_id("b");
  c.secret.set_secret(kBytesB);
  c.secret.set_not_before_ms(kStart + 60'000);
  ASSERT_TRUE(WriteSecretSync(*store_, c).ok());
  auto r = Activate("b");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("not_before_ms"), HasSubstr("in 60 s"), Not(HasSubstr(kBytesB))));
  EXPECT_EQ(StateOf("a"), v1::SECRET_STATE_ACTIVE) << "the active one stays active";
  EXPECT_EQ(StateOf("b"), v1::SECRET_STATE_STAGED);
  clock_.Advance(60'000);
  ASSERT_TRUE(Activate("b").ok());
  EXPECT_EQ(StateOf("a"), v1::SECRET_STATE_SUPERSEDED);
  EXPECT_EQ(StateOf("b"), v1::SECRET_STATE_ACTIVE);
}

TEST_F(SecretStoreTest, ActivationWaitsForEverySyncCoveringTheRealm) {
  Ack("turn-1", 0);
  Ack("turn-2", 0, {"other.example.org"});  // another realm: not waited for
  Ack("turn-3", 0);
  clock_.Advance(10);
  auto a = Add("a", kBytesA);
  ASSERT_TRUE(a.ok());
  Ack("turn-1", a->revision());
  auto r = Activate("a");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("TURN syncs have not acknowledged it yet: turn-3"),
                    HasSubstr("(acknowledged: turn-1)"), HasSubstr("--secret-stage-grace 60 s"),
                    Not(HasSubstr("turn-2"))));
  // A report of another epoch does not count.
  Ack("turn-3", a->revision() + 5, {}, "another-epoch");
  EXPECT_EQ(Activate("a").status().code(), absl::StatusCode::kFailedPrecondition);
  Ack("turn-3", a->revision(), {kRealm});
  EXPECT_TRUE(Activate("a").ok());
}

TEST_F(SecretStoreTest, ActivationGoesAheadAfterTheGraceOrWhenASyncFellSilent) {
  Ack("turn-1", 0);
  Ack("turn-quiet", 0);
  ASSERT_TRUE(Add("a", kBytesA).ok());
  clock_.Advance(29'000);
  Ack("turn-1", 0);
  EXPECT_EQ(Activate("a").status().code(), absl::StatusCode::kFailedPrecondition);
  // turn-quiet has not reported for 30 s: no longer waited for; turn-1 is.
  clock_.Advance(2'000);
  auto r = Activate("a");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), Not(HasSubstr("turn-quiet")));
  EXPECT_THAT(r.status().message(), HasSubstr("in 29 s"));
  clock_.Advance(29'000);
  Ack("turn-1", 0);
  EXPECT_TRUE(Activate("a").ok()) << "60 s after staging";
}

TEST_F(SecretStoreTest, BadSecretsAreRefusedNamingTheFieldAndNeverTheBytes) {
  auto expect = [](const absl::StatusOr<v1::SecretResponse>& r, absl::StatusCode code,
                   const std::string& text) {
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(text));
  };
  expect(Add("a", "twelve-bytes"), absl::StatusCode::kInvalidArgument,
         "secret.secret: 12 bytes, at least 32");
  expect(Add("a", std::string(257, 'x')), absl::StatusCode::kInvalidArgument,
         "secret.secret: 257 bytes, at most 256");
  std::string spaced = kBytesA;
  spaced[7] = ' ';
  expect(Add("a", spaced), absl::StatusCode::kInvalidArgument,
         "secret.secret: byte at offset 7 is not printable ASCII");
  std::string binary = kBytesA;
  binary[3] = '\x80';
  expect(Add("a", binary), absl::StatusCode::kInvalidArgument, "offset 3");
  expect(Add("a/b", kBytesA), absl::StatusCode::kInvalidArgument, "secret.id:");
  expect(Add("", kBytesA), absl::StatusCode::kInvalidArgument, "secret.id:");
  expect(Add(std::string(65, 'i'), kBytesA), absl::StatusCode::kInvalidArgument, "secret.id:");
  expect(Add("a", kBytesA, "bad realm"), absl::StatusCode::kInvalidArgument, "secret.realm:");
  expect(Add("a", kBytesA, kRealm, kStart - 1), absl::StatusCode::kInvalidArgument,
         "secret.expires_at_ms:");
  EXPECT_EQ(state().head(), 0u) << "nothing refused was written";

  ASSERT_TRUE(Add("a", kBytesA).ok());
  expect(Add("a", kBytesB), absl::StatusCode::kAlreadyExists,
         "secret.id: 'a' is known in realm 'ims.example.org' (STAGED)");
  expect(Add("b", kBytesA), absl::StatusCode::kAlreadyExists,
         "secret.secret: the same bytes as secret 'a'");
  EXPECT_TRUE(Add("a", kBytesA, "other.example.org").ok()) << "another realm, another set";

  expect(Activate("nope"), absl::StatusCode::kNotFound,
         "ref.id: no secret 'nope' in realm 'ims.example.org'");
  expect(Activate("a", "third.example.org"), absl::StatusCode::kNotFound,
         "is known in realm 'ims.example.org', 'other.example.org': the realm does not match");
  expect(Retire("nope"), absl::StatusCode::kNotFound, "ref.id: no secret 'nope'");
  expect(Activate("x y"), absl::StatusCode::kInvalidArgument, "ref.id:");
  expect(Retire("a", false, ""), absl::StatusCode::kInvalidArgument, "ref.realm:");
}

TEST_F(SecretStoreTest, ARealmHoldsAtMostSixteenSecrets) {
  for (size_t i = 0; i < kMaxSecretsPerRealm; ++i) {
    ASSERT_TRUE(Add(StrCat("s", i), StrCat(kBytesA, i)).ok());
  }
  auto r = Add("one-more", kBytesB);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("secret.realm: 'ims.example.org' has 16"));
}

TEST_F(SecretStoreTest, AnExpiredSecretIsDroppedAndItsRowsAreDead) {
  ASSERT_TRUE(Add("a", kBytesA, kRealm, kStart + 10'000).ok());
  ASSERT_TRUE(Activate("a").ok());
  state().stats();
  clock_.Advance(10'000);
  Expire();
  EXPECT_EQ(state().stats().secrets, 0u);
  EXPECT_EQ(Activate("a").status().code(), absl::StatusCode::kNotFound);
}

TEST(SecretStateTest, CompactionKeepsEveryRowOfAKnownSecretAndTheRetirementLast) {
  ManualClock clock(kStart);
  StateOptions o;
  o.history_max_age_ms = 1'000;
  CredentialState state(o, &clock);
  state.Reset("e", 0);
  auto put = [&](Revision r, v1::SecretState st, bool retired = false) {
    v1::SharedSecret s;
    s.set_realm(kRealm);
    s.set_id("a");
    s.set_secret(kBytesA);
    s.set_state(st);
    state.Apply({Change{r, RecordRef(), nullptr, MakeSecretChange(s, retired, r)}});
  };
  put(1, v1::SECRET_STATE_STAGED);
  put(2, v1::SECRET_STATE_ACTIVE);
  put(3, v1::SECRET_STATE_SUPERSEDED);
  state.Expire(100);
  EXPECT_THAT(state.TakeDeadRevisions(), IsEmpty());
  EXPECT_EQ(state.FindSecret(kRealm, "a")->staged_revision, 1u);
  EXPECT_THAT(state.FindSecret(kRealm, "a")->rows, ElementsAre(1, 2, 3));
  put(4, v1::SECRET_STATE_UNSPECIFIED, /*retired=*/true);
  EXPECT_THAT(state.TakeDeadRevisions(), ElementsAre(1, 2, 3));
  state.Expire(100);
  EXPECT_THAT(state.TakeDeadRevisions(), IsEmpty()) << "the retirement outlives the others";
  clock.Advance(1'000);
  state.Expire(100);
  EXPECT_THAT(state.TakeDeadRevisions(), ElementsAre(4));
}

TEST_F(SecretStoreTest, SecretsSurviveARestartOfTheDurableStoreAndItsCompaction) {
  turnbroker::testing::TempDir dir;
  options_.state.history_max_events = 4;  // compaction reaches every dead row
  auto journal = [&] { return DurableJournal(dir); };
  store_.reset();
  Open(journal());
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ASSERT_TRUE(Activate("a").ok());
  ASSERT_TRUE(Add("b", kBytesB).ok());
  ASSERT_TRUE(Activate("b").ok());
  ASSERT_TRUE(Add("c", kBytesB + "c").ok());
  ASSERT_TRUE(Retire("c").ok());
  // Credentials come and go after them: their rows are compacted away.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Publish({MakeCredential(StrCat("u", i), kStart + 1'000)}).ok());
  }
  clock_.Advance(2'000);
  for (int i = 0; i < 3; ++i) {
    Expire();
    clock_.Advance(1'100);
  }
  const Revision head = state().head();
  const std::string epoch = state().epoch();
  store_.reset();
  Open(journal());
  EXPECT_EQ(state().epoch(), epoch);
  EXPECT_EQ(state().head(), head);
  EXPECT_EQ(state().stats().secrets, 2u);
  EXPECT_EQ(StateOf("a"), v1::SECRET_STATE_SUPERSEDED);
  EXPECT_EQ(StateOf("b"), v1::SECRET_STATE_ACTIVE);
  EXPECT_EQ(StateOf("c"), v1::SECRET_STATE_UNSPECIFIED);
  EXPECT_EQ(state().FindSecret(kRealm, "b")->staged_revision, 3u);
  EXPECT_EQ(state().FindSecret(kRealm, "b")->secret().secret(), kBytesB);
  // Rotation goes on after the restart.
  clock_.Advance(3'600'000);
  EXPECT_TRUE(Retire("a").ok());
}

TEST_F(SecretStoreTest, AfterARestartActivationWaitsOneReportWindowForTheSyncs) {
  // The embedded store keeps the syncs' reports in memory: a sync that was
  // pending before a restart (here: down) is unknown after it. Activation
  // must not take "no sync pending" for "nothing to wait for" until every
  // live sync has had a report window to report again.
  turnbroker::testing::TempDir dir;
  auto journal = [&] { return DurableJournal(dir); };
  store_.reset();
  Open(journal());
  Ack("turn-down", 0);
  ASSERT_TRUE(Add("a", kBytesA).ok());
  ASSERT_EQ(Activate("a").status().code(), absl::StatusCode::kFailedPrecondition);
  store_.reset();
  clock_.Advance(1'000);
  Open(journal());
  auto r = Activate("a");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("the broker restarted"), HasSubstr("in 30 s")));
  // A sync that reports and has the secret does not end the wait early:
  // another may still be down.
  Ack("turn-up", state().head());
  clock_.Advance(29'000);
  EXPECT_EQ(Activate("a").status().code(), absl::StatusCode::kFailedPrecondition);
  clock_.Advance(1'000);
  Ack("turn-up", state().head());
  EXPECT_TRUE(Activate("a").ok()) << "one report window after the restart";
}

TEST_F(SecretStoreTest, ANewStoreHasNoSyncsToWaitFor) {
  ASSERT_TRUE(Add("a", kBytesA).ok());
  EXPECT_TRUE(Activate("a").ok());
}

TEST_F(SecretStoreTest, AMintedRevocationIsATombstoneUntilTheExpiryInTheUsername) {
  v1::RevokeRequest r;
  r.mutable_selector()->mutable_username()->set_realm(kRealm);
  r.mutable_selector()->mutable_username()->set_username("1800000600:AbC_d-1");
  r.set_reason("de-REGISTER");
  std::promise<absl::StatusOr<v1::RevokeResponse>> done;
  store_->RevokeMinted(&r, kStart + 600'000,
                       [&](absl::StatusOr<v1::RevokeResponse> x) { done.set_value(std::move(x)); });
  auto revoked = done.get_future().get();
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked(), 1u);
  ASSERT_NE(History().back().revoke, nullptr);
  const v1::Revocation& rev = History().back().revoke->revocation;
  ASSERT_EQ(rev.credentials_size(), 1);
  EXPECT_EQ(rev.credentials(0).expires_at_ms(), kStart + 600'000);
  EXPECT_TRUE(state().IsRevoked(kRealm, "1800000600:AbC_d-1"));
  clock_.Advance(600'000);
  EXPECT_FALSE(state().IsRevoked(kRealm, "1800000600:AbC_d-1"));
}

TEST(Approach1UsernameTest, OnlyExpiryColonBase64UrlIds) {
  EXPECT_EQ(Approach1Expiry("1800000000:AbC_d-1"), 1800000000);
  EXPECT_EQ(Approach1Expiry("alice"), std::nullopt);
  EXPECT_EQ(Approach1Expiry("sip:alice@example.org"), std::nullopt);
  EXPECT_EQ(Approach1Expiry(":abc"), std::nullopt);
  EXPECT_EQ(Approach1Expiry("123:"), std::nullopt);
  EXPECT_EQ(Approach1Expiry("123:a:b"), std::nullopt);
  EXPECT_EQ(Approach1Expiry("12a:abc"), std::nullopt);
  EXPECT_EQ(Approach1Expiry("99999999999999999999:abc"), std::nullopt);
}

TEST(SyncRegistryTest, KeepsTheNewestReportPerNameAndOnlyRecentOnes) {
  SyncRegistry r;
  ASSERT_TRUE(r.Record({"turn-1", "e", 5, {}, "", 1'000}).ok());
  ASSERT_TRUE(r.Record({"turn-1", "e", 7, {}, "", 2'000}).ok());
  r.Merge({{"turn-1", "e", 6, {}, "", 1'500}, {"turn-2", "e", 1, {}, "", 100}});
  auto recent = r.Recent(31'000);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].revision, 7u);
  EXPECT_EQ(r.Recent(30'100).size(), 2u);
}

TEST(SyncRegistryTest, HostileNamesAreBoundedAndSilentOnesMakeRoom) {
  SyncRegistry r;
  for (size_t i = 0; i < kMaxSyncs; ++i) {
    ASSERT_TRUE(r.Record({StrCat("sync-", i), "e", 1, {}, "", 1'000}).ok());
  }
  absl::Status full = r.Record({"one-more", "e", 1, {}, "", 2'000});
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(r.Record({"sync-7", "e", 2, {}, "", 2'000}).ok()) << "a known name reports on";
  // Silent for ten windows: forgotten, the newcomer is taken.
  EXPECT_TRUE(r.Record({"one-more", "e", 1, {}, "", 1'000 + 10 * kSyncAckWindowMs + 1}).ok());
  EXPECT_EQ(r.Recent(1'000 + 10 * kSyncAckWindowMs + 1, 100 * kSyncAckWindowMs).size(), 2u)
      << "one-more and sync-7, which reported later";
}

}  // namespace
}  // namespace turnbroker::broker::testing
