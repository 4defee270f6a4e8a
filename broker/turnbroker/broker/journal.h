// Durability under the embedded store: an append-only log of changes, with
// compaction of what no longer matters. Used by the commit thread only.
#ifndef TURNBROKER_BROKER_JOURNAL_H_
#define TURNBROKER_BROKER_JOURNAL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/broker/state.h"

namespace turnbroker::broker {

class Journal {
 public:
  virtual ~Journal() = default;

  // Loads the journal into `state` (empty, not yet serving): its epoch (made
  // and recorded if the journal is new), head revision, every change that
  // still matters, and the contiguous recent suffix as resumable history.
  virtual absl::Status Recover(CredentialState* state) = 0;

  // In one transaction: appends `changes` (consecutive revisions ending at
  // `head`) and deletes the rows of `dead` revisions. Durable when it returns
  // OK (per the journal's sync setting); on error nothing of it happened.
  virtual absl::Status Commit(const std::vector<Change>& changes, const std::vector<Revision>& dead,
                              Revision head) = 0;

  virtual std::string description() const = 0;
  // Whether dead revisions are worth reporting (false for memory).
  virtual bool compacts() const = 0;
};

// Memory only: a new epoch every start, nothing survives a restart.
std::unique_ptr<Journal> NewMemoryJournal();

struct SqliteJournalOptions {
  std::string data_dir;
  // fsync each commit (survives power loss); off: survives a crash of the
  // broker, not of the OS.
  bool fsync = true;
  // Give an existing store a new epoch when it is opened: after restoring a
  // backup (or a host crash under fsync off) the head may be older than
  // revisions watchers have seen, and the same revisions would be reused for
  // other changes. With a new epoch every watcher resyncs from a snapshot
  // that is no proof of revocation, so nothing still valid is dropped.
  bool new_epoch = false;
};
// The durable journal: SQLite in WAL mode in `data_dir`/turnbroker.db.
absl::StatusOr<std::unique_ptr<Journal>> OpenSqliteJournal(const SqliteJournalOptions& options);

// A new random epoch: 128 bits, hex.
std::string NewEpoch();

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_JOURNAL_H_
