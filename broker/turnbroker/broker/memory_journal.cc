#include "turnbroker/broker/journal.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/random.h"

namespace turnbroker::broker {
namespace {

class MemoryJournal : public Journal {
 public:
  absl::Status Recover(CredentialState* state) override {
    state->Reset(NewEpoch(), 0);
    return absl::OkStatus();
  }
  absl::Status Commit(const std::vector<Change>&, const std::vector<Revision>&, Revision) override {
    return absl::OkStatus();
  }
  std::string description() const override { return "ephemeral"; }
  bool compacts() const override { return false; }
};

}  // namespace

std::unique_ptr<Journal> NewMemoryJournal() { return std::make_unique<MemoryJournal>(); }

std::string NewEpoch() { return HexLower(RandomBytes(16)); }

}  // namespace turnbroker::broker
