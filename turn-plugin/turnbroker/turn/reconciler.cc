#include "turnbroker/turn/reconciler.h"

namespace turnbroker::turn {

Reconciler::Reconciler(UserDb* db, const Clock* clock) : db_(db), clock_(clock) {}

absl::Status Reconciler::Begin(bool proof_of_revocation) {
  End();
  auto managed = db_->LoadManaged(clock_->NowMs());
  if (!managed.ok()) return managed.status();
  unseen_.reserve(managed->size());
  for (ManagedKey& k : *managed) unseen_.emplace(std::move(k.member), k.expires_at_ms);
  proof_ = proof_of_revocation;
  active_ = true;
  return absl::OkStatus();
}

void Reconciler::Seen(const std::vector<std::string>& members) {
  if (!active_ || unseen_.empty()) return;
  for (const std::string& m : members) unseen_.erase(m);
}

absl::StatusOr<Reconciliation> Reconciler::Finish(const LegacyIndex& legacy,
                                                  bool queue_cancellations,
                                                  UserDb::Transaction* txn) {
  Reconciliation out;
  const int64_t now = clock_->NowMs();
  std::vector<ManagedKey> unseen;
  for (const auto& [member, expires] : unseen_) {
    // Expired meanwhile: Redis dropped the key itself; pruning forgets it.
    if (expires <= now || legacy.Contains(member)) continue;
    unseen.push_back(ManagedKey{member, expires});
  }
  if (proof_) {
    for (ManagedKey& k : unseen) {
      txn->Remove(k.member);
      if (queue_cancellations) txn->QueueCancellation(k.member, k.expires_at_ms);
      out.removed.push_back(std::move(k));
    }
    return out;
  }
  std::vector<std::string> members;
  members.reserve(unseen.size());
  for (const ManagedKey& k : unseen) members.push_back(k.member);
  auto owners = db_->LoadOwners(members);
  if (!owners.ok()) return owners.status();
  for (size_t i = 0; i < unseen.size(); ++i) {
    txn->Retire(unseen[i].member, unseen[i].expires_at_ms);
    out.retained.push_back(LegacyKey{std::move(unseen[i].member), unseen[i].expires_at_ms,
                                     std::move((*owners)[i].issuer),
                                     std::move((*owners)[i].subscriber)});
  }
  return out;
}

void Reconciler::End() {
  active_ = false;
  proof_ = false;
  unseen_.clear();
}

}  // namespace turnbroker::turn
