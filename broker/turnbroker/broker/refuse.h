// A streaming call refused before it starts (role, bad request, too many
// watchers, shutting down): a reactor that finishes at once with the status
// and deletes itself when gRPC is done with it. (A unary call is refused
// through its DefaultReactor.)
#ifndef TURNBROKER_BROKER_REFUSE_H_
#define TURNBROKER_BROKER_REFUSE_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "turnbroker/common/status.h"

namespace turnbroker::broker {

// `Reactor` is a gRPC server reactor type, e.g.
// grpc::ServerWriteReactor<grpc::ByteBuffer>. `status` must not be OK.
template <typename Reactor>
Reactor* Refuse(const absl::Status& status) {
  class Refused final : public Reactor {
   public:
    explicit Refused(grpc::Status s) { this->Finish(std::move(s)); }
    void OnDone() override { delete this; }
  };
  return new Refused(ToGrpcStatus(status));
}

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_REFUSE_H_
