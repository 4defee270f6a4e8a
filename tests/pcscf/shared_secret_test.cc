// Approach 1 on the eP-CSCF side (docs/approach1.md): the TURN REST API
// password, the book of secrets fed by Watch frames, the shared-secret
// minting mode and the watcher, with a fake clock and a fake Watch source.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>

#include "fake_secret_source.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/minting_mode.h"
#include "turnbroker/pcscf/secret_book.h"
#include "turnbroker/pcscf/secret_watcher.h"
#include "wait_for.h"

namespace turnbroker::pcscf {
namespace {

using testing::FakeSecretSource;
using testing::MakeSecret;
using testing::RetiredEvent;
using testing::SecretEvent;
using testing::SnapshotFrames;
using testing::WaitFor;

constexpr int64_t kT0 = 1'800'000'000'000;  // Unix ms, a whole second
constexpr char kRealm[] = "example.org";
const std::string kSecretA = "sB3yq0d7W4Ff9mQ2xKZ_cT8vLp5nRj1hEuY6aGoX-Ik";
const std::string kSecretB = "Q9v2Lr7TnXk4Wc1Zp8Hs3Jd6Gf0Ym5Ba-Ue_RoIiOtA";

// base64(HMAC-SHA1(key, data)) as the openssl command computes it, at test
// time: a computation independent of the library's.
std::string OpensslHmac(const std::string& key, const std::string& data) {
  const std::string cmd = "printf '%s' '" + data + "' | openssl dgst -sha1 -hmac '" + key +
                          "' -binary | openssl base64 -A";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[128];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(TurnRestPasswordTest, MatchesRfc2202AndCoturnsComputation) {
  // RFC 2202 test case 2 (HMAC-SHA1), base64 encoded.
  EXPECT_EQ(TurnRestPassword("Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk=");
  // Computed with Python's hmac and base64 modules, as coturn's
  // --use-auth-secret does (the 28-character base64 of the 20-byte MAC).
  EXPECT_EQ(TurnRestPassword(kSecretA, "1800003600:AAECAwQFBgcICQoLDA0ODw"),
            "jfbuYIRExN5mLhjzNGTw+kJGP4Y=");
}

TEST(TurnRestPasswordTest, MatchesTheOpensslCommandOnFreshInputs) {
  for (int i = 0; i < 3; ++i) {
    const std::string secret = MintOpaqueId() + MintOpaqueId();  // 44 printable bytes
    const std::string username = ApproachOneUsername(1'900'000'000 + i, MintOpaqueId());
    const std::string expected = OpensslHmac(secret, username);
    ASSERT_EQ(expected.size(), 28u) << "openssl failed: '" << expected << "'";
    EXPECT_EQ(TurnRestPassword(secret, username), expected) << username;
  }
}

TEST(OpaqueIdTest, Is128RandomBitsInBase64UrlWithoutColon) {
  std::set<std::string> seen;
  for (int i = 0; i < 100'000; ++i) {
    std::string id = MintOpaqueId();
    ASSERT_EQ(id.size(), 22u);
    for (char c : id) {
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << id;
    }
    seen.insert(std::move(id));
  }
  EXPECT_EQ(seen.size(), 100'000u);
}

// --- the book ------------------------------------------------------------------

class SecretBookTest : public ::testing::Test {
 protected:
  SecretBookTest() : clock_(kT0), book_(&clock_) {}
  void ApplyAll(const std::vector<v1::WatchResponse>& frames) {
    for (const auto& f : frames) ASSERT_TRUE(book_.Apply(f).ok());
  }
  std::string ActiveId() {
    auto a = book_.Active(kRealm);
    return a.ok() ? (*a)->id() : "(" + std::string(a.status().message()) + ")";
  }
  ManualClock clock_;
  SecretBook book_;
};

TEST_F(SecretBookTest, NothingBeforeTheFirstSnapshot) {
  auto a = book_.Active(kRealm);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(a.status().message().find("no shared secret received"), std::string::npos);
  // Begun but not SYNCED: still nothing.
  auto frames =
      SnapshotFrames("e1", 5, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)});
  ASSERT_TRUE(book_.Apply(frames[0]).ok());
  EXPECT_FALSE(book_.Active(kRealm).ok());
  ASSERT_TRUE(book_.Apply(frames[1]).ok());
  EXPECT_EQ(ActiveId(), "a");
  EXPECT_EQ(book_.position().epoch, "e1");
  EXPECT_EQ(book_.position().revision, 5u);
}

TEST_F(SecretBookTest, AStoreWithNoEventYetSyncsAtRevisionZero) {
  ApplyAll(SnapshotFrames("e1", 0, {}));
  EXPECT_EQ(book_.position().revision, 0u);
  ASSERT_TRUE(
      book_.Apply(SecretEvent("e1", 1, MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)))
          .ok());
  EXPECT_EQ(ActiveId(), "a");
  EXPECT_EQ(book_.position().revision, 1u);
}

TEST_F(SecretBookTest, OnlyTheActiveSecretOfTheRealmIsUsed) {
  ApplyAll(SnapshotFrames("e1", 9,
                          {MakeSecret(kRealm, "old", v1::SECRET_STATE_SUPERSEDED, kSecretA),
                           MakeSecret(kRealm, "new", v1::SECRET_STATE_STAGED, kSecretB),
                           MakeSecret("other.org", "x", v1::SECRET_STATE_ACTIVE, kSecretB)}));
  auto a = book_.Active(kRealm);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("no active shared secret for realm 'example.org'"),
            std::string::npos)
      << a.status();
  ASSERT_TRUE(book_
                  .Apply(SecretEvent("e1", 10,
                                     MakeSecret(kRealm, "new", v1::SECRET_STATE_ACTIVE, kSecretB)))
                  .ok());
  EXPECT_EQ(ActiveId(), "new");
  EXPECT_EQ((*book_.Active(kRealm))->secret(), kSecretB);
  SecretCounts c = book_.Counts();
  EXPECT_EQ(c.active, 2u);  // one per realm
  EXPECT_EQ(c.superseded, 1u);
  EXPECT_EQ(c.staged, 0u);
  EXPECT_EQ(book_.position().revision, 10u);
}

TEST_F(SecretBookTest, ASnapshotReplacesWhatWasKnownOnlyAtSynced) {
  ApplyAll(SnapshotFrames("e1", 3, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  // A new snapshot without "a": until its SYNCED, "a" stays in use.
  auto frames =
      SnapshotFrames("e1", 8, {MakeSecret(kRealm, "b", v1::SECRET_STATE_STAGED, kSecretB)});
  ASSERT_TRUE(book_.Apply(frames[0]).ok());
  EXPECT_EQ(ActiveId(), "a");
  ASSERT_TRUE(book_.Apply(frames[1]).ok());
  EXPECT_FALSE(book_.Active(kRealm).ok()) << "not sent again since SNAPSHOT_BEGIN: gone";
  EXPECT_EQ(book_.Counts().staged, 1u);
}

TEST_F(SecretBookTest, ARetiredSecretIsGone) {
  ApplyAll(SnapshotFrames("e1", 3, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  ASSERT_TRUE(book_.Apply(RetiredEvent("e1", 4, kRealm, "a")).ok());
  EXPECT_FALSE(book_.Active(kRealm).ok());
  EXPECT_EQ(book_.position().revision, 4u);
}

TEST_F(SecretBookTest, EventsOfAnotherEpochWithoutASnapshotDropTheStream) {
  ApplyAll(SnapshotFrames("e1", 3, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  auto s =
      book_.Apply(SecretEvent("e2", 4, MakeSecret(kRealm, "b", v1::SECRET_STATE_ACTIVE, kSecretB)));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(book_.position().revision, 0u) << "the next stream starts with a snapshot";
  EXPECT_EQ(ActiveId(), "a") << "what was known stays in use meanwhile";
}

TEST_F(SecretBookTest, AnAbandonedSnapshotKeepsWhatWasKnown) {
  ApplyAll(SnapshotFrames("e1", 3, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  auto frames = SnapshotFrames("e2", 1, {});
  ASSERT_TRUE(book_.Apply(frames[0]).ok());
  book_.StreamEnded();
  EXPECT_EQ(ActiveId(), "a");
  EXPECT_EQ(book_.position().revision, 0u);
}

TEST_F(SecretBookTest, ANewEpochsSnapshotIsTheNewState) {
  ApplyAll(SnapshotFrames("e1", 3, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  ApplyAll(SnapshotFrames("e2", 2, {MakeSecret(kRealm, "b", v1::SECRET_STATE_ACTIVE, kSecretB)}));
  EXPECT_EQ(ActiveId(), "b");
  EXPECT_EQ(book_.position().epoch, "e2");
}

TEST_F(SecretBookTest, ASecretBreakingTheRulesIsSkippedAndItsBytesNeverLogged) {
  const std::string short_secret = "Zx9Qw8Er7Ty6Ui5Op4";  // 18 bytes
  ::testing::internal::CaptureStderr();
  ApplyAll(SnapshotFrames("e1", 3,
                          {MakeSecret(kRealm, "short", v1::SECRET_STATE_ACTIVE, short_secret),
                           MakeSecret(kRealm, "bad id!", v1::SECRET_STATE_STAGED, kSecretA)}));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(book_.Active(kRealm).ok());
  EXPECT_EQ(book_.Counts().staged + book_.Counts().active, 0u);
  EXPECT_NE(log.find("short"), std::string::npos) << log;
  EXPECT_EQ(log.find(short_secret), std::string::npos) << log;
  EXPECT_EQ(log.find(kSecretA), std::string::npos) << log;
}

TEST_F(SecretBookTest, NotBeforeAndExpiryAreHonoured) {
  ApplyAll(SnapshotFrames("e1", 3,
                          {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA, 86'400'000,
                                      kT0 + 5'000, kT0 + 60'000)}));
  auto a = book_.Active(kRealm);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("may not be used before"), std::string::npos);
  clock_.Advance(5'000);
  EXPECT_EQ(ActiveId(), "a");
  clock_.Advance(55'000);
  a = book_.Active(kRealm);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("expired"), std::string::npos);
  EXPECT_EQ(book_.Counts().active, 0u);
}

// --- minting -------------------------------------------------------------------

class SharedSecretMintingTest : public SecretBookTest {
 protected:
  SharedSecretMintingTest() : minting_(&book_, kRealm, 60, &clock_, &metrics_) {}
  void Snapshot(const std::vector<v1::SharedSecret>& secrets) {
    ApplyAll(SnapshotFrames("e1", 3, secrets));
  }
  MetricsRegistry metrics_;
  SharedSecretMinting minting_;
};

TEST_F(SharedSecretMintingTest, MintsCoturnsRestApiCredential) {
  Snapshot({MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)});
  clock_.Advance(700);  // expiry rounds down to the second
  auto c = minting_.Mint(600);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->expires_at_ms, kT0 + 600'000);
  const std::string prefix = std::to_string((kT0 + 600'000) / 1000) + ":";
  ASSERT_EQ(c->username.rfind(prefix, 0), 0u) << c->username;
  const std::string opaque = c->username.substr(prefix.size());
  EXPECT_EQ(opaque.size(), 22u);
  EXPECT_EQ(opaque.find(':'), std::string::npos);
  EXPECT_EQ(c->password, OpensslHmac(kSecretA, c->username));
  EXPECT_EQ(c->secret_id, "a");
  EXPECT_EQ(c->realm, kRealm);
  EXPECT_EQ(c->issued_at_ms, kT0 + 700);
  auto d = minting_.Mint(600);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->username, c->username);
}

TEST_F(SharedSecretMintingTest, NeverMintsForAnIdentity) {
  Snapshot({MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)});
  auto c = minting_.Mint(600);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->subscriber.empty());  // the issuer adds it, outside the username
}

TEST_F(SharedSecretMintingTest, ExpiryIsClampedByTheSecretsMaximumAndExpiry) {
  Snapshot({MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA, /*max ttl*/ 300'000)});
  auto c = minting_.Mint(3600);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->expires_at_ms, kT0 + 300'000) << "max_credential_ttl_ms";

  Snapshot({MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA, 86'400'000, 0,
                       /*expires*/ kT0 + 1'000'500)});
  c = minting_.Mint(3600);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->expires_at_ms, kT0 + 1'000'000) << "expires_at_ms, rounded down to the second";
  EXPECT_EQ(c->username.substr(0, c->username.find(':')), std::to_string((kT0 + 1'000'000) / 1000));

  // Less lifetime left than the minimum: no credential that dies at once.
  clock_.Advance(1'000'500 - 59'000);
  c = minting_.Mint(3600);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("below the minimum 60 s"), std::string::npos) << c.status();
}

TEST_F(SharedSecretMintingTest, NeverBeforeNotBefore) {
  Snapshot({MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA, 86'400'000, kT0 + 2'000)});
  auto c = minting_.Mint(600);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  clock_.Advance(1'999);
  EXPECT_FALSE(minting_.Mint(600).ok());
  clock_.Advance(1);
  EXPECT_TRUE(minting_.Mint(600).ok());
}

TEST_F(SharedSecretMintingTest, SwitchesToANewlyActivatedSecret) {
  Snapshot({MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA, 86'400'000, 0, 0, kT0 - 10),
            MakeSecret(kRealm, "b", v1::SECRET_STATE_STAGED, kSecretB)});
  auto c = minting_.Mint(600);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->secret_id, "a");
  EXPECT_TRUE(minting_.Current(*c));
  // Activation: b ACTIVE, a SUPERSEDED (one frame or two; in either order).
  ASSERT_TRUE(book_
                  .Apply(SecretEvent("e1", 4,
                                     MakeSecret(kRealm, "b", v1::SECRET_STATE_ACTIVE, kSecretB,
                                                86'400'000, 0, 0, kT0 + 5)))
                  .ok());
  auto d = minting_.Mint(600);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->secret_id, "b") << "the later activation wins while both read ACTIVE";
  EXPECT_EQ(d->password, OpensslHmac(kSecretB, d->username));
  EXPECT_FALSE(minting_.Current(*c));
  EXPECT_TRUE(minting_.Current(*d));
  ASSERT_TRUE(book_
                  .Apply(SecretEvent(
                      "e1", 5, MakeSecret(kRealm, "a", v1::SECRET_STATE_SUPERSEDED, kSecretA)))
                  .ok());
  EXPECT_EQ(minting_.Mint(600)->secret_id, "b");
  EXPECT_EQ(minting_.MintsBySecret(), (std::map<std::string, uint64_t>{{"a", 1}, {"b", 2}}));
  const std::string text = metrics_.Render();
  EXPECT_NE(text.find("pcscf_turn_shared_secret_mints_total{secret=\"b\"} 2"), std::string::npos)
      << text;
  EXPECT_EQ(text.find(kSecretA), std::string::npos);
  EXPECT_EQ(text.find(kSecretB), std::string::npos);
}

TEST_F(SharedSecretMintingTest, UnavailableWithoutASecretAndReadyOnlyWithOne) {
  auto c = minting_.Mint(600);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(minting_.Ready(absl::OkStatus()).ok()) << "the broker answering is not enough";
  Snapshot({MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)});
  EXPECT_TRUE(minting_.Ready(absl::UnavailableError("broker down")).ok())
      << "an agent that has the active secret keeps minting";
}

TEST_F(SharedSecretMintingTest, RevokesASubscriberByEachUsernameItHolds) {
  IssuedCredential one, two;
  one.realm = two.realm = kRealm;
  one.username = "1800000600:abc";
  two.username = "1800000700:def";
  auto requests = minting_.SubscriberRevocations("sip:alice@example.org", {one, two}, "bye");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].selector().username().username(), one.username);
  EXPECT_EQ(requests[0].selector().username().realm(), kRealm);
  EXPECT_EQ(requests[1].selector().username().username(), two.username);
  EXPECT_EQ(requests[1].reason(), "bye");
  EXPECT_TRUE(minting_.SubscriberRevocations("sip:bob@example.org", {}, "bye").empty());
}

// --- the watcher ---------------------------------------------------------------

class SecretWatcherTest : public ::testing::Test {
 protected:
  SecretWatcherTest() : clock_(kT0), book_(&clock_) {
    options_.realms = {kRealm};
    options_.watcher_name = "pcscf-1";
    options_.backoff = BackoffOptions{5, 20, 2.0};
  }
  void Start() {
    watcher_ = std::make_unique<SecretWatcher>(&source_, &book_, options_, &metrics_);
    watcher_->Start();
  }
  void TearDown() override { watcher_.reset(); }
  ManualClock clock_;
  SecretBook book_;
  FakeSecretSource source_;
  SecretWatchOptions options_;
  MetricsRegistry metrics_;
  std::unique_ptr<SecretWatcher> watcher_;
};

TEST_F(SecretWatcherTest, WatchesSecretsAsAMinterAndResumesWhereItStopped) {
  Start();
  ASSERT_TRUE(WaitFor([&] { return source_.opened() == 1; }));
  v1::WatchRequest first = source_.requests()[0];
  ASSERT_EQ(first.kinds_size(), 1);
  EXPECT_EQ(first.kinds(0), v1::RECORD_KIND_SHARED_SECRET);
  ASSERT_EQ(first.realms_size(), 1);
  EXPECT_EQ(first.realms(0), kRealm);
  EXPECT_EQ(first.watcher_name(), "pcscf-1");
  EXPECT_EQ(first.resume_revision(), 0u);

  source_.Send(
      SnapshotFrames("e1", 7, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  ASSERT_TRUE(WaitFor([&] { return watcher_->synced(); }));
  EXPECT_TRUE(book_.Active(kRealm).ok());
  v1::WatchResponse progress;
  progress.set_marker(v1::WatchResponse::PROGRESS);
  progress.set_epoch("e1");
  progress.set_revision(12);
  source_.Send(progress);
  ASSERT_TRUE(WaitFor([&] { return book_.position().revision == 12; }));

  source_.End(absl::UnavailableError("broker restarting"));
  ASSERT_TRUE(WaitFor([&] { return source_.opened() == 2; }));
  v1::WatchRequest second = source_.requests()[1];
  EXPECT_EQ(second.resume_revision(), 12u);
  EXPECT_EQ(second.resume_epoch(), "e1");
  EXPECT_TRUE(book_.Active(kRealm).ok()) << "kept while reconnecting";
  EXPECT_NE(metrics_.Render().find("pcscf_turn_shared_secrets{state=\"active\"} 1"),
            std::string::npos);
}

TEST_F(SecretWatcherTest, KeepsTheSecretWhileTheBrokerIsUnreachable) {
  Start();
  source_.Send(
      SnapshotFrames("e1", 7, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  ASSERT_TRUE(WaitFor([&] { return watcher_->synced(); }));
  source_.SetUnreachable(true);
  source_.End(absl::UnavailableError("connection reset"));
  ASSERT_TRUE(WaitFor([&] { return source_.opened() >= 4; })) << "retries with backoff";
  EXPECT_FALSE(watcher_->synced());
  EXPECT_TRUE(book_.Active(kRealm).ok());
  source_.SetUnreachable(false);
  const size_t before = source_.opened();
  ASSERT_TRUE(WaitFor([&] { return source_.opened() > before; }));
  EXPECT_EQ(source_.requests().back().resume_revision(), 7u);
}

TEST_F(SecretWatcherTest, AFrameOutOfOrderReopensWithASnapshot) {
  Start();
  source_.Send(
      SnapshotFrames("e1", 7, {MakeSecret(kRealm, "a", v1::SECRET_STATE_ACTIVE, kSecretA)}));
  ASSERT_TRUE(WaitFor([&] { return watcher_->synced(); }));
  source_.Send(SecretEvent("e9", 8, MakeSecret(kRealm, "b", v1::SECRET_STATE_ACTIVE, kSecretB)));
  ASSERT_TRUE(WaitFor([&] { return source_.opened() == 2; }));
  EXPECT_EQ(source_.requests()[1].resume_revision(), 0u);
  EXPECT_EQ((*book_.Active(kRealm))->id(), "a");
}

TEST_F(SecretWatcherTest, ASilentStreamIsReopened) {
  options_.idle_timeout_ms = 150;
  Start();
  ASSERT_TRUE(WaitFor([&] { return source_.opened() >= 2; }));
}

TEST_F(SecretWatcherTest, StopsPromptlyWhileReading) {
  Start();
  ASSERT_TRUE(WaitFor([&] { return source_.opened() == 1; }));
  const int64_t t = MonotonicMicros();
  watcher_->Stop();
  EXPECT_LT(MonotonicMicros() - t, 1'000'000);
}

}  // namespace
}  // namespace turnbroker::pcscf
