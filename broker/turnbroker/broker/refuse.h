// A streaming call refused before it starts (role, bad request, too many
// watchers, shutting down): a reactor that finishes at once with the status
// and deletes itself when gRPC is done with it. (A unary call is refused
// through its DefaultReactor.) And the log line of every refused call.
#ifndef TURNBROKER_BROKER_REFUSE_H_
#define TURNBROKER_BROKER_REFUSE_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/common/tls.h"

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

// The caller in log lines: "<name> [as <issuer>] <address>".
inline std::string CallerName(const Peer& peer, std::string_view address) {
  return StrCat(PeerLogName(peer), " ", address);
}

// Logs a refused call with its caller ("call refused", docs/security.md).
inline void LogRefused(std::string_view method, const Peer& peer, std::string_view address,
                       const absl::Status& status) {
  LogInfo("call refused")
      .Kv("method", method)
      .Kv("client", CallerName(peer, address))
      .Kv("error", status);
}

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_REFUSE_H_
