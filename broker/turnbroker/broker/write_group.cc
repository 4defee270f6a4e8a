#include "turnbroker/broker/write_group.h"

#include <algorithm>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::broker {

absl::Status PushWrite(std::deque<WriteOp>& queue, WriteOp op, bool stopping, size_t max_queue) {
  if (stopping) return absl::UnavailableError("broker is shutting down");
  if (queue.size() >= max_queue) {
    return absl::ResourceExhaustedError(
        StrCat("commit queue full (", max_queue, " requests); retry with backoff"));
  }
  queue.push_back(std::move(op));
  return absl::OkStatus();
}

void TakeGroup(std::deque<WriteOp>& queue, size_t max_credentials, std::vector<WriteOp>* group) {
  size_t weight = 0;
  while (!queue.empty() && weight < max_credentials) {
    if (auto* p = std::get_if<PublishOp>(&queue.front()))
      weight += std::max(1, p->request->credentials_size());
    else
      weight += 1;
    group->push_back(std::move(queue.front()));
    queue.pop_front();
  }
}

PlannedGroup PlanGroup(GroupPlanner& planner, const std::vector<WriteOp>& group) {
  PlannedGroup out;
  for (const WriteOp& op : group) {
    if (auto* p = std::get_if<PublishOp>(&op)) {
      out.published.push_back(planner.Publish(*p->request));
    } else if (auto* r = std::get_if<RevokeOp>(&op)) {
      out.revoked.push_back(r->minted_until_ms != 0
                                ? planner.RevokeMinted(*r->request, r->minted_until_ms)
                                : planner.Revoke(*r->request, r->only_issuer));
    } else {
      out.secrets.push_back(planner.Secret(std::get<SecretOp>(op).command));
    }
  }
  return out;
}

void AnswerGroup(std::vector<WriteOp>& group, PlannedGroup& planned, const std::string& epoch) {
  size_t pi = 0, ri = 0, si = 0;
  for (WriteOp& op : group) {
    if (auto* p = std::get_if<PublishOp>(&op)) {
      auto& r = planned.published[pi++];
      if (r.ok()) r->set_epoch(epoch);
      p->done(std::move(r));
    } else if (auto* rv = std::get_if<RevokeOp>(&op)) {
      auto& r = planned.revoked[ri++];
      if (r.ok()) r->set_epoch(epoch);
      rv->done(std::move(r));
    } else {
      auto& r = planned.secrets[si++];
      if (r.ok()) r->set_epoch(epoch);
      std::get<SecretOp>(op).done(std::move(r));
    }
  }
}

bool HasActivation(const std::vector<WriteOp>& group) {
  for (const WriteOp& op : group) {
    if (auto* s = std::get_if<SecretOp>(&op); s && s->command.kind == SecretCommand::kActivate)
      return true;
  }
  return false;
}

void FailGroup(std::vector<WriteOp>& group, const absl::Status& error) {
  for (WriteOp& op : group) std::visit([&](auto& o) { o.done(error); }, op);
}

CommitMetrics::CommitMetrics(MetricsRegistry* r)
    : commit_seconds(r->AddHistogram(
          "turnbroker_store_commit_seconds",
          "Time to commit one group: durable on disk, or written to Redis and confirmed")),
      commit_groups(r->AddCounter("turnbroker_store_commit_groups_total", "Commit groups written")),
      changes(r->AddCounter("turnbroker_store_changes_total", "Changes (revisions) committed")),
      expired(r->AddCounter("turnbroker_store_expired_total", "Credentials removed at expiry")),
      queue(r->AddGauge("turnbroker_store_queue_depth", "Requests waiting for the commit thread")) {
}

void CommitMetrics::Committed(int64_t start_us, size_t n) {
  commit_seconds->ObserveMicros(MonotonicMicros() - start_us);
  commit_groups->Inc();
  changes->Inc(n);
}

}  // namespace turnbroker::broker
