// The durable journal on a real SQLite file: recovery, history, compaction,
// locking and corruption.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "process.h"
#include "store_fixture.h"

namespace turnbroker::broker::testing {
namespace {

class JournalTest : public StoreTest {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    store_.reset();
    auto j = OpenSqliteJournal({dir_.path() + "/data", /*fsync=*/false});
    ASSERT_TRUE(j.ok()) << j.status();
    Open(std::move(*j));
  }
  turnbroker::testing::TempDir dir_;
};

TEST_F(JournalTest, RecoversEverythingAcknowledged) {
  std::string epoch = state().epoch();
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 60'000, "r", "sip:a@x"),
                       MakeCredential("b", kStart + 60'000, "r", "sip:b@x")})
                  .ok());
  ASSERT_TRUE(RevokeUsername("a").ok());
  ASSERT_TRUE(RevokeUsername("ghost").ok());
  ASSERT_TRUE(Publish({MakeCredential("b", kStart + 90'000, "r", "sip:b@x")}).ok());
  Reopen();
  EXPECT_EQ(state().epoch(), epoch);
  EXPECT_EQ(state().head(), 5u);
  EXPECT_EQ(state().stats().live, 1u);
  ASSERT_TRUE(state().Find("r", "b"));
  EXPECT_EQ(state().Find("r", "b")->expires_at_ms(), kStart + 90'000);
  EXPECT_EQ(state().Find("r", "b")->issued_at_ms(), kStart);
  // Revocations survive: neither can be published again.
  EXPECT_EQ(Publish({MakeCredential("a", kStart + 60'000, "r")}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Publish({MakeCredential("ghost", kStart + 60'000, "r")}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The whole log is resumable history, with the same events.
  auto history = History();
  ASSERT_EQ(history.size(), 5u);
  EXPECT_EQ(history[2].revoke->revocation.credentials(0).username(), "a");
  // Subscriber index rebuilt.
  v1::Selector sel;
  sel.set_subscriber("sip:b@x");
  EXPECT_EQ(state().Matching(sel).size(), 1u);
  // Revisions continue where they stopped.
  auto p = Publish({MakeCredential("c", kStart + 60'000)});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->revision(), 6u);
}

TEST_F(JournalTest, NewEpochKeepsTheDataAndChangesTheEpoch) {
  std::string epoch = state().epoch();
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 60'000, "r")}).ok());
  ASSERT_TRUE(RevokeUsername("gone").ok());
  store_.reset();
  auto j =
      OpenSqliteJournal({.data_dir = dir_.path() + "/data", .fsync = false, .new_epoch = true});
  ASSERT_TRUE(j.ok()) << j.status();
  Open(std::move(*j));
  EXPECT_NE(state().epoch(), epoch);
  EXPECT_EQ(state().head(), 2u);
  EXPECT_TRUE(state().Find("r", "a"));
  EXPECT_EQ(Publish({MakeCredential("gone", kStart + 60'000, "r")}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The new epoch is the store's from now on.
  std::string renewed = state().epoch();
  Reopen();
  EXPECT_EQ(state().epoch(), renewed);
}

TEST_F(JournalTest, ExpiredWhileDownIsNotRecovered) {
  ASSERT_TRUE(
      Publish({MakeCredential("short", kStart + 5'000), MakeCredential("long", kStart + 60'000)})
          .ok());
  clock_.Advance(10'000);
  Reopen();
  EXPECT_EQ(state().stats().live, 1u);
  EXPECT_EQ(state().head(), 2u);
}

TEST_F(JournalTest, CompactionKeepsWhatMattersAndTheHistory) {
  options_.state.history_max_events = 4;
  options_.maintenance_interval_ms = 1;
  Reopen();
  // 10 credentials, then 6 revoked: revisions 1..16.
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(Publish({MakeCredential("u" + std::to_string(i), kStart + 60'000)}).ok());
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(RevokeUsername("u" + std::to_string(i)).ok());
  // Let the commit thread expire and compact (it runs on the manual clock).
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(1'100);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/data/turnbroker.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q;
  sqlite3_prepare_v2(db, "SELECT revision FROM log ORDER BY revision", -1, &q, nullptr);
  std::vector<int64_t> rows;
  while (sqlite3_step(q) == SQLITE_ROW) rows.push_back(sqlite3_column_int64(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(db);
  // Live puts (u6..u9 at 7..10), the revocations (11..16: their tombstones
  // live until the credentials' expiry); the dead puts 1..6 are gone.
  EXPECT_EQ(rows, (std::vector<int64_t>{7, 8, 9, 10, 11, 12, 13, 14, 15, 16}));
  Reopen();
  EXPECT_EQ(state().stats().live, 4u);
  EXPECT_EQ(state().history_first(), 13u);  // the last 4 events
  EXPECT_EQ(Publish({MakeCredential("u0", kStart + 60'000)}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(JournalTest, ASecondBrokerCannotOpenTheSameDirectory) {
  auto j = OpenSqliteJournal({dir_.path() + "/data", false});
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(std::string(j.status().message()), ::testing::HasSubstr("in use by another broker"));
}

TEST_F(JournalTest, ACorruptRowStopsRecoveryWithAClearError) {
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 60'000)}).ok());
  store_.reset();
  sqlite3* db;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/data/turnbroker.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE log SET event = x'ffff' WHERE revision = 1", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto j = OpenSqliteJournal({dir_.path() + "/data", false});
  ASSERT_TRUE(j.ok());
  auto s = EmbeddedStore::Open(std::move(*j), options_, &clock_, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("log row 1 is corrupt"));
}

// Runs SQL on the closed store's file.
void Sql(const std::string& path, const char* sql) {
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST_F(JournalTest, ACorruptHeadIsDataLossNotACrash) {
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 60'000)}).ok());
  store_.reset();
  Sql(dir_.path() + "/data/turnbroker.db", "UPDATE meta SET v = 'x12' WHERE k = 'head'");
  auto j = OpenSqliteJournal({dir_.path() + "/data", false});
  ASSERT_TRUE(j.ok()) << j.status();
  auto s = EmbeddedStore::Open(std::move(*j), options_, &clock_, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("meta 'head' is 'x12'"));
}

TEST_F(JournalTest, AnUnreadableMetaIsAnErrorNotANewStore) {
  std::string epoch = state().epoch();
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 60'000)}).ok());
  store_.reset();
  // meta can be written but reading it fails (an integer overflow raised
  // while the row is computed): a read error, not an empty table.
  Sql(dir_.path() + "/data/turnbroker.db",
      "DROP TABLE meta;"
      "CREATE VIEW meta(k, v) AS SELECT 'epoch', abs(-9223372036854775807 - 1);"
      "CREATE TRIGGER meta_write INSTEAD OF INSERT ON meta BEGIN SELECT 1; END;");
  auto j = OpenSqliteJournal({dir_.path() + "/data", false});
  ASSERT_TRUE(j.ok()) << j.status();
  auto s = EmbeddedStore::Open(std::move(*j), options_, &clock_, nullptr);
  ASSERT_FALSE(s.ok()) << "read as a new store with epoch " << (*s)->state().epoch() << " (was "
                       << epoch << ")";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("meta"));
}

TEST_F(JournalTest, TheStoreIsReadableByItsOwnerOnly) {
  ASSERT_TRUE(Publish({MakeCredential("a", kStart + 60'000)}).ok());
  struct stat st;
  ASSERT_EQ(stat((dir_.path() + "/data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const char* file : {"turnbroker.db", "turnbroker.db-wal", "turnbroker.db-shm", "LOCK"}) {
    ASSERT_EQ(stat((dir_.path() + "/data/" + file).c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
}

}  // namespace
}  // namespace turnbroker::broker::testing
