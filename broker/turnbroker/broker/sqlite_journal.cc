// The durable journal: one SQLite database in WAL mode.
//
//   meta(k, v)               format, epoch, head (as of the last compaction;
//                            the newest log row is newer)
//   log(revision, event)     Event encodings; rows of revisions that no longer
//                            hold anything live are deleted once they fall out
//                            of the retained history (compaction)
//
// One connection belongs to the commit thread; a second one, on its own
// thread, checkpoints the WAL so commits never wait for it. A lock file keeps
// a second broker off the same directory. The directory is 0700 and the
// files 0600: they hold every live credential's key.
//
// Every failure is a status (nothing here throws): a write that fails (disk
// full, I/O error) is rolled back and reported, and the next commit tries
// again.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "turnbroker/broker/journal.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::broker {
namespace {

constexpr char kFormat[] = "1";
constexpr int64_t kCheckpointIntervalMs = 500;

// DATA_LOSS when the file is damaged (retrying cannot help), else
// UNAVAILABLE (a full disk, an I/O error: the next commit tries again).
absl::Status SqliteError(sqlite3* db, std::string_view what) {
  std::string message = StrCat("sqlite: ", what, ": ", db ? sqlite3_errmsg(db) : "cannot open");
  int code = db ? (sqlite3_extended_errcode(db) & 0xff) : SQLITE_CANTOPEN;
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return absl::DataLossError(message);
  return absl::UnavailableError(message);
}

// A prepared statement, finalized on destruction.
class Statement {
 public:
  Statement() = default;
  ~Statement() { Reset(); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void Reset() {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
  }
  absl::Status Prepare(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
      return SqliteError(db, sql);
    return absl::OkStatus();
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = StrCat("sqlite: ", sql, ": ", err ? err : "?");
    sqlite3_free(err);
    return absl::UnavailableError(msg);
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3*> OpenDb(const std::string& path, bool fsync) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    absl::Status s = SqliteError(db, StrCat("open ", path));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 10'000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA wal_autocheckpoint=0",
                             "PRAGMA cache_size=-2048", "PRAGMA temp_store=MEMORY",
                             fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"}) {
    if (auto s = Exec(db, pragma); !s.ok()) {
      sqlite3_close(db);
      return s;
    }
  }
  return db;
}

class SqliteJournal : public Journal {
 public:
  SqliteJournal(std::string dir, int lock_fd, sqlite3* db, bool fsync, bool new_epoch)
      : dir_(std::move(dir)), lock_fd_(lock_fd), db_(db), fsync_(fsync), new_epoch_(new_epoch) {}

  ~SqliteJournal() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
    insert_.Reset(), delete_.Reset(), set_head_.Reset();
    // A clean close folds the WAL into the database.
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_close(db_);
    close(lock_fd_);
  }

  absl::Status Init() {
    if (auto s = Exec(db_,
                      "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL)"
                      " WITHOUT ROWID;"
                      "CREATE TABLE IF NOT EXISTS log(revision INTEGER PRIMARY KEY,"
                      " event BLOB NOT NULL);");
        !s.ok())
      return s;
    if (auto s = insert_.Prepare(db_, "INSERT INTO log(revision, event) VALUES(?, ?)"); !s.ok())
      return s;
    if (auto s = delete_.Prepare(db_, "DELETE FROM log WHERE revision = ?"); !s.ok()) return s;
    if (auto s = set_head_.Prepare(db_, "INSERT OR REPLACE INTO meta(k, v) VALUES('head', ?)");
        !s.ok())
      return s;
    auto checkpoint_db = OpenDb(Path(), fsync_);
    if (!checkpoint_db.ok()) return checkpoint_db.status();
    checkpointer_ = std::thread([this, db = *checkpoint_db] { CheckpointLoop(db); });
    return absl::OkStatus();
  }

  absl::Status Recover(CredentialState* state) override {
    auto format = Meta("format");
    if (!format.ok()) return format.status();
    auto stored_epoch = Meta("epoch");
    if (!stored_epoch.ok()) return stored_epoch.status();
    std::string epoch = *std::move(stored_epoch);
    if (epoch.empty()) {
      epoch = NewEpoch();
      if (auto s = Exec(db_, "BEGIN"); !s.ok()) return s;
      absl::Status s = SetMeta("format", kFormat);
      if (s.ok()) s = SetMeta("epoch", epoch);
      if (s.ok()) s = SetMeta("head", "0");
      if (s.ok()) s = Exec(db_, "COMMIT");
      if (!s.ok()) {
        Exec(db_, "ROLLBACK").IgnoreError();
        return s;
      }
      LogInfo("store created").Kv("dir", dir_).Kv("epoch", epoch);
      state->Reset(epoch, 0);
      return absl::OkStatus();
    }
    if (*format != kFormat) {
      return absl::FailedPreconditionError(StrCat("--data-dir: ", Path(), " has store format '",
                                                  *format, "', this broker reads format ",
                                                  kFormat));
    }
    if (new_epoch_) {
      std::string renewed = NewEpoch();
      if (auto s = SetMeta("epoch", renewed); !s.ok()) {
        return absl::UnavailableError(
            StrCat("--new-epoch: cannot record the new epoch: ", s.message()));
      }
      LogWarn("store given a new epoch (--new-epoch): watchers resync from a snapshot")
          .Kv("dir", dir_)
          .Kv("previous_epoch", epoch)
          .Kv("epoch", renewed);
      epoch = std::move(renewed);
    }
    auto head_text = Meta("head");
    if (!head_text.ok()) return head_text.status();
    Revision head = 0;
    if (!head_text->empty()) {
      const char* end = head_text->data() + head_text->size();
      auto [p, ec] = std::from_chars(head_text->data(), end, head);
      if (ec != std::errc() || p != end) {
        return absl::DataLossError(
            StrCat("--data-dir: ", Path(), ": meta 'head' is '", *head_text, "', not a revision"));
      }
    }
    {
      Statement q;
      if (auto s = q.Prepare(db_, "SELECT MAX(revision) FROM log"); !s.ok()) return s;
      if (sqlite3_step(q.get()) == SQLITE_ROW)
        head = std::max<Revision>(head, static_cast<Revision>(sqlite3_column_int64(q.get(), 0)));
    }
    state->Reset(epoch, 0);

    // The history that can be replayed is the contiguous run of rows that
    // ends at the head (compaction only ever deletes below it).
    Revision suffix_start = head + 1;
    {
      Statement q;
      if (auto s = q.Prepare(db_, "SELECT revision FROM log ORDER BY revision DESC"); !s.ok())
        return s;
      Revision expected = head;
      size_t limit = state->options().history_max_events;
      while (sqlite3_step(q.get()) == SQLITE_ROW && limit-- > 0) {
        Revision r = static_cast<Revision>(sqlite3_column_int64(q.get(), 0));
        if (r != expected) break;
        suffix_start = r;
        --expected;
      }
    }
    Statement q;
    if (auto s = q.Prepare(db_, "SELECT revision, event FROM log ORDER BY revision"); !s.ok())
      return s;
    size_t rows = 0;
    int64_t last_at_ms = 0;
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      Revision revision = static_cast<Revision>(sqlite3_column_int64(q.get(), 0));
      const void* blob = sqlite3_column_blob(q.get(), 1);
      int size = sqlite3_column_bytes(q.get(), 1);
      v1::Event event;
      if (!event.ParseFromArray(blob, size) || event.revision() != revision) {
        return absl::DataLossError(
            StrCat("--data-dir: ", Path(), ": log row ", revision, " is corrupt"));
      }
      Change change;
      change.revision = revision;
      int64_t at_ms = 0;
      if (event.has_put()) {
        // Records hold at most 64 KiB (validation keeps credentials far
        // smaller): a larger one was not written by a broker.
        if (event.put().ByteSizeLong() > 0xffff) {
          return absl::DataLossError(StrCat("--data-dir: ", Path(), ": log row ", revision,
                                            " is corrupt (a credential over 64 KiB)"));
        }
        change.put = Record::Create(event.put(), revision);
        at_ms = event.put().issued_at_ms();
      } else if (event.has_revoke()) {
        auto rc = std::make_shared<RevocationChange>();
        rc->revocation = event.revoke();
        rc->event_wire.assign(static_cast<const char*>(blob), size);
        at_ms = rc->revocation.revoked_at_ms();
        change.revoke = std::move(rc);
      } else if (event.has_secret() || event.has_secret_retired()) {
        v1::SharedSecret secret;
        if (event.has_secret()) {
          secret = event.secret();
          at_ms =
              std::max({secret.added_at_ms(), secret.activated_at_ms(), secret.superseded_at_ms()});
        } else {
          secret.set_realm(event.secret_retired().realm());
          secret.set_id(event.secret_retired().id());
          at_ms = last_at_ms;
        }
        change.secret = MakeSecretChange(std::move(secret), event.has_secret_retired(), revision);
      } else {
        continue;  // a kind of record this broker does not know
      }
      last_at_ms = at_ms;
      state->Recover(change, at_ms, revision >= suffix_start);
      ++rows;
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, "reading the log");
    state->Reset(epoch, head);
    LogInfo("store recovered")
        .Kv("dir", dir_)
        .Kv("epoch", epoch)
        .Kv("head", head)
        .Kv("rows", rows)
        .Kv("live", state->stats().live)
        .Kv("secrets", state->stats().secrets)
        .Kv("history_from", suffix_start);
    return absl::OkStatus();
  }

  absl::Status Commit(const std::vector<Change>& changes, const std::vector<Revision>& dead,
                      Revision head) override {
    if (auto s = Exec(db_, "BEGIN"); !s.ok()) return s;
    absl::Status status = WriteAll(changes, dead, head);
    if (status.ok()) status = Exec(db_, "COMMIT");
    if (!status.ok()) Exec(db_, "ROLLBACK").IgnoreError();
    return status;
  }

  std::string description() const override { return StrCat("durable:", dir_); }
  bool compacts() const override { return true; }

  std::string Path() const { return StrCat(dir_, "/turnbroker.db"); }

 private:
  absl::Status WriteAll(const std::vector<Change>& changes, const std::vector<Revision>& dead,
                        Revision head) {
    sqlite3_stmt* ins = insert_.get();
    for (const Change& change : changes) {
      buffer_.clear();
      if (change.put) AppendPutEvent(&buffer_, *change.put, change.revision);
      const std::string& blob = change.put      ? buffer_
                                : change.revoke ? change.revoke->event_wire
                                                : change.secret->event_wire;
      sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(change.revision));
      sqlite3_bind_blob(ins, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
      int rc = sqlite3_step(ins);
      sqlite3_reset(ins);
      if (rc != SQLITE_DONE) return SqliteError(db_, "append");
    }
    sqlite3_stmt* del = delete_.get();
    for (Revision r : dead) {
      sqlite3_bind_int64(del, 1, static_cast<sqlite3_int64>(r));
      int rc = sqlite3_step(del);
      sqlite3_reset(del);
      if (rc != SQLITE_DONE) return SqliteError(db_, "compact");
    }
    // The head is the newest row, unless compaction may delete that row:
    // then it is recorded too (one page less to write on every commit).
    if (dead.empty()) return absl::OkStatus();
    std::string h = StrCat(head);
    sqlite3_bind_text(set_head_.get(), 1, h.data(), static_cast<int>(h.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(set_head_.get());
    sqlite3_reset(set_head_.get());
    if (rc != SQLITE_DONE) return SqliteError(db_, "set head");
    return absl::OkStatus();
  }

  // The value of `key`, "" if there is none; an error if it cannot be read
  // (which must never pass for "a new store").
  absl::StatusOr<std::string> Meta(const char* key) {
    Statement q;
    if (auto s = q.Prepare(db_, "SELECT v FROM meta WHERE k = ?"); !s.ok()) return s;
    sqlite3_bind_text(q.get(), 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q.get());
    if (rc == SQLITE_DONE) return std::string();
    if (rc != SQLITE_ROW) return SqliteError(db_, StrCat("reading meta '", key, "'"));
    const unsigned char* v = sqlite3_column_text(q.get(), 0);
    return v ? std::string(reinterpret_cast<const char*>(v)) : std::string();
  }
  absl::Status SetMeta(const char* key, const std::string& value) {
    Statement q;
    if (auto s = q.Prepare(db_, "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)"); !s.ok())
      return s;
    sqlite3_bind_text(q.get(), 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.get(), 2, value.c_str(), -1, SQLITE_STATIC);
    if (sqlite3_step(q.get()) != SQLITE_DONE)
      return SqliteError(db_, StrCat("writing meta '", key, "'"));
    return absl::OkStatus();
  }

  void CheckpointLoop(sqlite3* db) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(kCheckpointIntervalMs),
                         [this] { return stopping_; })) {
      lock.unlock();
      int log_frames = 0, done_frames = 0;
      int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                         &done_frames);
      // Logged when it starts failing and when it works again, not every
      // 500 ms (a full disk can last).
      bool failing = rc != SQLITE_OK && rc != SQLITE_BUSY;
      if (failing && !checkpoint_failing_) {
        LogWarn("wal checkpoint failing; retrying").Kv("error", sqlite3_errmsg(db));
      } else if (!failing && rc == SQLITE_OK && checkpoint_failing_) {
        LogInfo("wal checkpoint works again");
      }
      if (rc != SQLITE_BUSY) checkpoint_failing_ = failing;
      lock.lock();
    }
    sqlite3_close(db);
  }

  const std::string dir_;
  const int lock_fd_;
  sqlite3* const db_;
  const bool fsync_;
  const bool new_epoch_;
  Statement insert_, delete_, set_head_;
  std::string buffer_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool checkpoint_failing_ = false;  // the checkpointer thread's
  std::thread checkpointer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> OpenSqliteJournal(const SqliteJournalOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        StrCat("--data-dir: cannot create '", options.data_dir, "': ", ec.message()));
  }
  // The store holds every live key: only the broker's user reads it. (A
  // mount point owned by someone else keeps its mode, with a warning.)
  if (chmod(options.data_dir.c_str(), 0700) != 0) {
    LogWarn("--data-dir: cannot make it 0700").Kv("dir", options.data_dir).Kv("errno", errno);
  }
  const std::string db_path = StrCat(options.data_dir, "/turnbroker.db");
  // SQLite gives the -wal and -shm files the database file's mode.
  if (int db_fd = open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); db_fd >= 0) {
    fchmod(db_fd, 0600);
    close(db_fd);
  }
  for (const char* suffix : {"-wal", "-shm"}) chmod(StrCat(db_path, suffix).c_str(), 0600);
  std::string lock_path = StrCat(options.data_dir, "/LOCK");
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(StrCat("--data-dir: cannot open '", lock_path, "'"));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        StrCat("--data-dir: '", options.data_dir, "' is in use by another broker"));
  }
  auto db = OpenDb(db_path, options.fsync);
  if (!db.ok()) {
    close(fd);
    return db.status();
  }
  auto journal =
      std::make_unique<SqliteJournal>(options.data_dir, fd, *db, options.fsync, options.new_epoch);
  if (auto s = journal->Init(); !s.ok()) return s;
  return journal;
}

}  // namespace turnbroker::broker
