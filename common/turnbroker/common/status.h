// One error vocabulary: absl::Status inside the code, grpc::Status on the
// wire, converted here and nowhere else.
#ifndef TURNBROKER_COMMON_STATUS_H_
#define TURNBROKER_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace turnbroker {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// "CODE_NAME: message", for one-line error reports.
std::string StatusLine(const absl::Status& status);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_STATUS_H_
