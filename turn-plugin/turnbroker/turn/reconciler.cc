#include "turnbroker/turn/reconciler.h"

namespace turnbroker::turn {

Reconciler::Reconciler(UserDb* db, const Clock* clock) : db_(db), clock_(clock) {}

absl::Status Reconciler::Begin(bool proof_of_revocation) {
  End();
  auto managed = db_->LoadManaged(clock_->NowMs());
  if (!managed.ok()) return managed.status();
  unseen_.reserve(managed->size());
  for (ManagedKey& k : *managed) {
    std::string member = k.member;
    unseen_.insert_or_assign(std::move(member), std::move(k));
  }
  proof_ = proof_of_revocation;
  active_ = true;
  return absl::OkStatus();
}

void Reconciler::Seen(const std::vector<std::string>& members) {
  if (!active_ || unseen_.empty()) return;
  for (const std::string& m : members) unseen_.erase(m);
}

Reconciliation Reconciler::Finish(const LegacyIndex& legacy, bool queue_cancellations,
                                  UserDb::Transaction* txn) {
  Reconciliation out;
  const int64_t now = clock_->NowMs();
  for (auto& [member, key] : unseen_) {
    // Expired meanwhile: Redis dropped the key itself; pruning forgets it.
    if (key.expires_at_ms <= now || legacy.Contains(member)) continue;
    if (proof_) {
      txn->Remove(member);
      if (queue_cancellations) txn->QueueCancellation(member, key.expires_at_ms);
      out.removed.push_back(std::move(key));
    } else {
      txn->Retire(member, key.expires_at_ms);
      out.retained.push_back(
          LegacyKey{member, key.expires_at_ms, std::move(key.issuer), std::move(key.subscriber)});
    }
  }
  return out;
}

void Reconciler::End() {
  active_ = false;
  proof_ = false;
  unseen_.clear();
}

}  // namespace turnbroker::turn
