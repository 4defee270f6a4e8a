// What both stores (embedded_store.h, redis_store.h) do alike with the
// Publish and Revoke requests waiting for their commit thread: queue them
// with a bound, take them in groups, plan a group, answer it.
// Not thread-safe by itself: the queue is guarded by its store's mutex.
#ifndef TURNBROKER_BROKER_WRITE_GROUP_H_
#define TURNBROKER_BROKER_WRITE_GROUP_H_

#include <cstdint>
#include <deque>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "turnbroker/broker/planner.h"
#include "turnbroker/broker/store.h"
#include "turnbroker/common/metrics.h"

namespace turnbroker::broker {

struct PublishOp {
  const v1::PublishRequest* request;
  Store::PublishDone done;
  int64_t enqueued_ms = 0;  // monotonic; for stores with an ack deadline
};
struct RevokeOp {
  const v1::RevokeRequest* request;
  Store::RevokeDone done;
  int64_t enqueued_ms = 0;
  // A minter's revocation of an approach-1 username: its expiry (Unix ms);
  // 0 for any other revocation.
  int64_t minted_until_ms = 0;
  // A publisher's revocation: only this issuer's credentials (empty: all).
  std::string only_issuer;
};
struct SecretOp {
  SecretCommand command;
  Store::SecretDone done;
  int64_t enqueued_ms = 0;
};
using WriteOp = std::variant<PublishOp, RevokeOp, SecretOp>;

// Appends `op` unless `stopping` (UNAVAILABLE) or `queue` holds `max_queue`
// (RESOURCE_EXHAUSTED); the caller answers the error.
absl::Status PushWrite(std::deque<WriteOp>& queue, WriteOp op, bool stopping, size_t max_queue);

// Moves requests from the front of `queue` to `group` until they carry
// `max_credentials` credentials (a Revoke or a secret write counts one).
void TakeGroup(std::deque<WriteOp>& queue, size_t max_credentials, std::vector<WriteOp>* group);

// The planner's answers to a group, in the group's order.
struct PlannedGroup {
  std::vector<absl::StatusOr<v1::PublishResponse>> published;
  std::vector<absl::StatusOr<v1::RevokeResponse>> revoked;
  std::vector<absl::StatusOr<v1::SecretResponse>> secrets;
};
// Whether `group` holds an ActivateSecret (whose plan needs the syncs'
// latest reports).
bool HasActivation(const std::vector<WriteOp>& group);
PlannedGroup PlanGroup(GroupPlanner& planner, const std::vector<WriteOp>& group);

// Answers every request of `group`: its planned answer (with `epoch` when
// OK), or `error` for all when it is not OK.
void AnswerGroup(std::vector<WriteOp>& group, PlannedGroup& planned, const std::string& epoch);
void FailGroup(std::vector<WriteOp>& group, const absl::Status& error);

// The metrics both stores keep about their commits, under the same names,
// so that dashboards and alerts do not depend on the store.
struct CommitMetrics {
  explicit CommitMetrics(MetricsRegistry* registry);
  // One group of `changes` revisions committed; `start_us` is when its
  // commit began (MonotonicMicros).
  void Committed(int64_t start_us, size_t changes);

  Histogram* commit_seconds;
  Counter *commit_groups, *changes, *expired;
  Gauge* queue;
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_WRITE_GROUP_H_
