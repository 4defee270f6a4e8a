// The credential model as the store enforces it: revisions, idempotence,
// revocation, expiry, validation, atomic batches.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "store_fixture.h"
#include "turnbroker/broker/planner.h"

namespace turnbroker::broker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST_F(StoreTest, RevisionsAreGapFreeAndOrdered) {
  ASSERT_TRUE(
      Publish({MakeCredential("a", kStart + 60'000), MakeCredential("b", kStart + 60'000)}).ok());
  ASSERT_TRUE(RevokeUsername("a").ok());
  ASSERT_TRUE(Publish({MakeCredential("c", kStart + 60'000)}).ok());
  auto history = History();
  ASSERT_EQ(history.size(), 4u);
  for (size_t i = 0; i < history.size(); ++i) EXPECT_EQ(history[i].revision, i + 1);
  EXPECT_EQ(state().head(), 4u);
  EXPECT_TRUE(history[0].put && history[1].put && history[2].revoke && history[3].put);
}

TEST_F(StoreTest, ConcurrentPublishersGetDistinctConsecutiveRevisions) {
  constexpr int kThreads = 8, kEach = 200;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<Revision> acked;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = Publish(
            {MakeCredential("t" + std::to_string(t) + "-" + std::to_string(i), kStart + 60'000)});
        ASSERT_TRUE(r.ok()) << r.status();
        std::lock_guard<std::mutex> lock(mu);
        acked.push_back(r->revision());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::sort(acked.begin(), acked.end());
  ASSERT_EQ(acked.size(), size_t{kThreads * kEach});
  for (size_t i = 0; i < acked.size(); ++i) EXPECT_EQ(acked[i], i + 1);
  EXPECT_EQ(History().size(), acked.size());
}

TEST_F(StoreTest, PublishIsIdempotent) {
  auto c = MakeCredential("alice", kStart + 60'000);
  auto first = Publish({c});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->applied(), 1u);
  clock_.Advance(1000);
  auto again = Publish({c});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->applied(), 0u);
  EXPECT_EQ(again->unchanged(), 1u);
  EXPECT_EQ(again->revision(), first->revision());
  EXPECT_EQ(state().head(), 1u);
  EXPECT_EQ(again->epoch(), state().epoch());
  // issued_at is kept from the first publish.
  EXPECT_EQ(state().Find("ims.example.org", "alice")->issued_at_ms(), kStart);
}

TEST_F(StoreTest, RepublishWithNewExpiryIsAnUpdate) {
  ASSERT_TRUE(Publish({MakeCredential("alice", kStart + 60'000)}).ok());
  auto r = Publish({MakeCredential("alice", kStart + 120'000)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied(), 1u);
  EXPECT_EQ(r->revision(), 2u);
  EXPECT_EQ(state().Find("ims.example.org", "alice")->expires_at_ms(), kStart + 120'000);
  EXPECT_EQ(state().stats().live, 1u);
}

TEST_F(StoreTest, AnotherKeyForALiveUsernameIsRefused) {
  ASSERT_TRUE(Publish({MakeCredential("alice", kStart + 60'000)}).ok());
  auto c = MakeCredential("alice", kStart + 60'000);
  c.set_key(std::string(16, 'z'));
  auto r = Publish({c});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(r.status().message()), StartsWith("credentials[0].username:"));
  // The same username in another realm is another credential.
  c.set_realm("other.example.org");
  EXPECT_TRUE(Publish({c}).ok());
}

TEST_F(StoreTest, RevokeByUsernameSubscriberAndIssuer) {
  ASSERT_TRUE(Publish({MakeCredential("u1", kStart + 60'000, "r1", "sip:a@x", "pcscf-1"),
                       MakeCredential("u2", kStart + 60'000, "r1", "sip:a@x", "pcscf-2"),
                       MakeCredential("u3", kStart + 60'000, "r1", "sip:b@x", "pcscf-1"),
                       MakeCredential("u4", kStart + 60'000, "r2", "sip:c@x", "pcscf-2"),
                       MakeCredential("u1", kStart + 60'000, "r2", "sip:d@x", "pcscf-2")})
                  .ok());
  v1::RevokeRequest by_subscriber;
  by_subscriber.mutable_selector()->set_subscriber("sip:a@x");
  auto r = Revoke(by_subscriber);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revoked(), 2u);
  EXPECT_FALSE(state().Find("r1", "u1"));
  EXPECT_FALSE(state().Find("r1", "u2"));

  v1::RevokeRequest by_issuer;
  by_issuer.mutable_selector()->set_issuer("pcscf-1");
  r = Revoke(by_issuer);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revoked(), 1u);  // u3 (u1@r1 is gone already)
  EXPECT_FALSE(state().Find("r1", "u3"));

  r = RevokeUsername("u4", "r2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revoked(), 1u);
  // Without a realm: that username in every realm.
  r = RevokeUsername("u1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revoked(), 1u);
  EXPECT_EQ(state().stats().live, 0u);

  // Each revocation is one event listing what it removed, with expiries.
  auto history = History(5);
  ASSERT_EQ(history.size(), 4u);
  const v1::Revocation& first = history[0].revoke->revocation;
  ASSERT_EQ(first.credentials_size(), 2);
  EXPECT_EQ(first.credentials(0).username(), "u1");
  EXPECT_EQ(first.credentials(0).expires_at_ms(), kStart + 60'000);
  EXPECT_EQ(first.revoked_at_ms(), kStart);
}

TEST_F(StoreTest, ALargeRevocationIsSplitIntoConsecutiveEvents) {
  // 25,000 credentials of one issuer (in batches of --max-batch), and one of
  // another issuer that must survive.
  constexpr int kMatching = 2 * static_cast<int>(kMaxCredentialsPerRevocation) + 5'000;
  for (int first = 0; first < kMatching; first += 10'000) {
    v1::PublishRequest batch;
    for (int i = first; i < std::min(kMatching, first + 10'000); ++i)
      *batch.add_credentials() = MakeCredential("u" + std::to_string(i), kStart + 60'000,
                                                "ims.example.org", "", "pcscf-1");
    ASSERT_TRUE(Publish(batch).ok());
  }
  ASSERT_TRUE(
      Publish({MakeCredential("other", kStart + 60'000, "ims.example.org", "", "pcscf-2")}).ok());
  const Revision before = state().head();
  ASSERT_EQ(before, static_cast<Revision>(kMatching + 1));

  v1::RevokeRequest by_issuer;
  by_issuer.mutable_selector()->set_issuer("pcscf-1");
  by_issuer.set_reason("pcscf-1 restarted");
  auto r = Revoke(by_issuer);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revoked(), static_cast<uint32_t>(kMatching));
  // Three events, at the next three revisions; the answer has the last.
  EXPECT_EQ(r->revision(), before + 3);
  EXPECT_EQ(state().head(), before + 3);

  auto history = History(before);
  ASSERT_EQ(history.size(), 3u);
  std::set<std::string> revoked;
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(history[i].revision, before + 1 + i);
    ASSERT_TRUE(history[i].revoke);
    const v1::Revocation& rev = history[i].revoke->revocation;
    EXPECT_LE(static_cast<size_t>(rev.credentials_size()), kMaxCredentialsPerRevocation);
    EXPECT_EQ(rev.selector().issuer(), "pcscf-1");
    EXPECT_EQ(rev.reason(), "pcscf-1 restarted");
    EXPECT_EQ(rev.revoked_at_ms(), kStart);
    // The Event encoding carries the revision of its own part.
    v1::Event event;
    ASSERT_TRUE(event.ParseFromString(history[i].revoke->event_wire));
    EXPECT_EQ(event.revision(), history[i].revision);
    EXPECT_EQ(event.revoke().credentials_size(), rev.credentials_size());
    for (const auto& ref : rev.credentials()) revoked.insert(ref.username());
  }
  EXPECT_EQ(history[0].revoke->revocation.credentials_size(), 10'000);
  EXPECT_EQ(history[2].revoke->revocation.credentials_size(), 5'000);
  EXPECT_EQ(revoked.size(), static_cast<size_t>(kMatching)) << "a username listed twice";
  EXPECT_EQ(state().stats().live, 1u);
  EXPECT_TRUE(state().Find("ims.example.org", "other"));
  // Revoked in every part, the last included.
  EXPECT_EQ(Publish({MakeCredential("u0", kStart + 60'000)}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Publish({MakeCredential("u" + std::to_string(kMatching - 1), kStart + 60'000)})
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // Revisions go on from there, gap-free.
  auto next = Publish({MakeCredential("after", kStart + 60'000)});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->revision(), before + 4);
}

TEST_F(StoreTest, RevokeOfUnknownUsernameIsRecordedAndBlocksPublish) {
  auto r = RevokeUsername("ghost");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revoked(), 0u);
  EXPECT_EQ(r->revision(), 1u);  // still an event: a TURN side may hold it
  auto p = Publish({MakeCredential("ghost", kStart + 60'000)});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("revoked"));
}

TEST_F(StoreTest, RevokedUsernameCannotBeRepublishedUntilItsExpiry) {
  ASSERT_TRUE(Publish({MakeCredential("alice", kStart + 60'000)}).ok());
  ASSERT_TRUE(RevokeUsername("alice", "ims.example.org").ok());
  // A delayed retry of the original publish must not bring it back.
  auto p = Publish({MakeCredential("alice", kStart + 60'000)});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  clock_.Advance(60'001);
  EXPECT_TRUE(Publish({MakeCredential("alice", kStart + 120'000)}).ok());
}

TEST_F(StoreTest, ExpiredCredentialsVanishWithoutAnEvent) {
  ASSERT_TRUE(
      Publish({MakeCredential("short", kStart + 5'000), MakeCredential("long", kStart + 60'000)})
          .ok());
  clock_.Advance(5'000);
  // Invisible at once, even before the sweep.
  EXPECT_FALSE(state().Find("ims.example.org", "short"));
  EXPECT_TRUE(state().Find("ims.example.org", "long"));
  Expire();
  EXPECT_EQ(state().stats().live, 1u);
  EXPECT_EQ(state().head(), 2u);  // no event
  // Not revoked: the username may be used again.
  EXPECT_TRUE(Publish({MakeCredential("short", kStart + 65'000)}).ok());
}

TEST_F(StoreTest, SnapshotScanHoldsLiveUnexpiredCredentialsOnly) {
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 60'000), MakeCredential("b", kStart + 5'000),
                       MakeCredential("c", kStart + 60'000), MakeCredential("d", kStart + 60'000)})
                  .ok());
  ASSERT_TRUE(RevokeUsername("c").ok());
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 90'000)}).ok());  // update: revision 6
  clock_.Advance(5'000);                                              // b expired
  std::vector<RecordRef> records;
  Revision next = 0;
  do {
    next = state().Scan(next, 1, 10, nullptr, &records);  // one at a time
  } while (next != 0);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]->username(), "d");  // revision order
  EXPECT_EQ(records[1]->username(), "a");
  EXPECT_EQ(records[1]->revision(), 6u);
  EXPECT_EQ(records[1]->expires_at_ms(), kStart + 90'000);
}

TEST_F(StoreTest, HistoryIsTrimmedByCountAndAge) {
  options_.state.history_max_events = 3;
  options_.state.history_max_age_ms = 10'000;
  Open();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Publish({MakeCredential("u" + std::to_string(i), kStart + 60'000)}).ok());
  EXPECT_EQ(state().history_first(), 3u);
  std::vector<Change> out;
  EXPECT_EQ(state().ReadHistory(1, 10, &out), CredentialState::HistoryRead::kCompacted);
  EXPECT_EQ(state().ReadHistory(2, 10, &out), CredentialState::HistoryRead::kOk);
  EXPECT_EQ(out.size(), 3u);
  clock_.Advance(10'001);
  Expire();
  EXPECT_EQ(state().stats().history_events, 0u);
  EXPECT_EQ(state().history_first(), 6u);  // head + 1: resuming at head is fine
  out.clear();
  EXPECT_EQ(state().ReadHistory(5, 10, &out), CredentialState::HistoryRead::kOk);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(state().ReadHistory(4, 10, &out), CredentialState::HistoryRead::kCompacted);
}

TEST_F(StoreTest, ABatchIsAllOrNothing) {
  v1::PublishRequest r;
  *r.add_credentials() = MakeCredential("good1", kStart + 60'000);
  *r.add_credentials() = MakeCredential("good2", kStart + 60'000);
  auto bad = MakeCredential("bad", kStart + 60'000);
  bad.set_key("short");
  *r.add_credentials() = bad;
  auto p = Publish(r);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), StartsWith("credentials[2].key:"));
  EXPECT_EQ(state().stats().live, 0u);
  EXPECT_EQ(state().head(), 0u);
}

TEST_F(StoreTest, BadInputChangesNothingAlreadyAccepted) {
  ASSERT_TRUE(Publish({MakeCredential("keep", kStart + 60'000)}).ok());
  struct Case {
    std::function<void(v1::Credential*)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](v1::Credential* c) { c->set_username(std::string(513, 'x')); }, "username"},
      {[](v1::Credential* c) { c->set_username("bad/name"); }, "username"},
      {[](v1::Credential* c) { c->set_realm("bad realm"); }, "realm"},
      {[](v1::Credential* c) { c->set_key(std::string(17, 'k')); }, "key"},
      {[](v1::Credential* c) { c->set_expires_at_ms(kStart - 1); }, "expires_at_ms"},
      {[](v1::Credential* c) { c->set_expires_at_ms(kStart + 400LL * 86'400'000); },
       "expires_at_ms"},
  };
  for (const auto& tc : cases) {
    auto c = MakeCredential("new", kStart + 60'000);
    tc.mutate(&c);
    auto p = Publish({c});
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << tc.field;
    EXPECT_THAT(std::string(p.status().message()), StartsWith("credentials[0]." + tc.field + ":"));
  }
  v1::PublishRequest empty;
  auto p = Publish(empty);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), StartsWith("credentials:"));

  v1::PublishRequest big;
  for (size_t i = 0; i <= options_.max_batch; ++i)
    *big.add_credentials() = MakeCredential("b" + std::to_string(i), kStart + 60'000);
  p = Publish(big);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(p.status().message()), StartsWith("credentials:"));

  v1::PublishRequest twice;
  *twice.add_credentials() = MakeCredential("dup", kStart + 60'000);
  *twice.add_credentials() = MakeCredential("dup", kStart + 60'000);
  p = Publish(twice);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), StartsWith("credentials[1].username:"));

  v1::RevokeRequest no_selector;
  auto rv = Revoke(no_selector);
  EXPECT_EQ(rv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rv.status().message()), StartsWith("selector:"));

  EXPECT_EQ(state().head(), 1u);
  EXPECT_EQ(state().stats().live, 1u);
  EXPECT_TRUE(state().Find("ims.example.org", "keep"));
}

TEST_F(StoreTest, LaterRequestsInOneGroupSeeEarlierOnes) {
  // Queue a publish and a revoke-by-subscriber back to back: whether they
  // land in one commit group or two, the revoke must see the publish.
  v1::PublishRequest p;
  *p.add_credentials() = MakeCredential("g1", kStart + 60'000, "r", "sip:g@x");
  v1::RevokeRequest rv;
  rv.mutable_selector()->set_subscriber("sip:g@x");
  std::promise<void> published, revoked;
  uint32_t n = 0;
  store_->Publish(&p, [&](auto r) {
    ASSERT_TRUE(r.ok());
    published.set_value();
  });
  store_->Revoke(&rv, [&](auto r) {
    ASSERT_TRUE(r.ok());
    n = r->revoked();
    revoked.set_value();
  });
  published.get_future().wait();
  revoked.get_future().wait();
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(state().stats().live, 0u);
}

TEST_F(StoreTest, ShutdownRefusesNewWrites) {
  store_->Shutdown();
  auto p = Publish({MakeCredential("late", kStart + 60'000)});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turnbroker::broker::testing

namespace turnbroker::broker::testing {
namespace {

// A journal that fails on demand with a given status, to see the store fail
// safe.
class FailingJournal : public Journal {
 public:
  explicit FailingJournal(std::atomic<int>* fail) : fail_(fail) {}
  absl::Status Recover(CredentialState* state) override {
    state->Reset("test-epoch", 0);
    return absl::OkStatus();
  }
  absl::Status Commit(const std::vector<Change>&, const std::vector<Revision>&, Revision) override {
    switch (fail_->load()) {
      case 1:
        return absl::UnavailableError("disk full");
      case 2:
        return absl::DataLossError("file is damaged");
      default:
        return absl::OkStatus();
    }
  }
  std::string description() const override { return "failing"; }
  bool compacts() const override { return false; }

 private:
  std::atomic<int>* fail_;
};

class FailingStoreTest : public StoreTest {
 protected:
  void SetUp() override {
    store_.reset();
    auto s = EmbeddedStore::Open(std::make_unique<FailingJournal>(&fail_), options_, &clock_,
                                 nullptr, [&](const absl::Status&) { ++failures_; });
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    ASSERT_TRUE(Publish({MakeCredential("before", kStart + 60'000)}).ok());
  }
  std::atomic<int> fail_{0};
  std::atomic<int> failures_{0};
};

TEST_F(FailingStoreTest, AFailedWriteAppliesNothingAndTheNextOneTriesAgain) {
  fail_ = 1;  // e.g. a full disk
  auto p = Publish({MakeCredential("during", kStart + 60'000)});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(p.status().message()), ::testing::HasSubstr("disk full"));
  EXPECT_TRUE(store_->healthy()) << "no restart: reads and watchers go on";
  EXPECT_EQ(failures_.load(), 0);
  EXPECT_EQ(state().head(), 1u);
  EXPECT_FALSE(state().Find("ims.example.org", "during"));
  EXPECT_TRUE(state().Find("ims.example.org", "before"));
  EXPECT_EQ(RevokeUsername("before").status().code(), absl::StatusCode::kUnavailable);
  // Space again: the next write commits, at the next revision.
  fail_ = 0;
  auto after = Publish({MakeCredential("after", kStart + 60'000)});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->revision(), 2u);
  EXPECT_TRUE(state().Find("ims.example.org", "before"));
}

TEST_F(FailingStoreTest, ADamagedJournalFailsForGood) {
  fail_ = 2;
  EXPECT_EQ(Publish({MakeCredential("during", kStart + 60'000)}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(store_->healthy());
  EXPECT_EQ(failures_.load(), 1);
  // Refuses writes from now on (the process restarts and recovery reports
  // the damage).
  fail_ = 0;
  EXPECT_EQ(Publish({MakeCredential("after", kStart + 60'000)}).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turnbroker::broker::testing
