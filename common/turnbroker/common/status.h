// One error vocabulary: absl::Status inside the code, grpc::Status on the
// wire, converted here and nowhere else. A status carried inside a message
// (PublishStreamResponse.code/.message: a google.rpc.Code and its text) is
// converted here too.
#ifndef TURNBROKER_COMMON_STATUS_H_
#define TURNBROKER_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace turnbroker {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// A status as a google.rpc.Code number and message, for a reply carried in a
// message (0 and "" for OK), and back. A code outside google.rpc.Code reads
// as UNKNOWN (a peer's field is outside input).
int32_t ToCodeNumber(const absl::Status& status);
absl::Status FromCodeNumber(int32_t code, std::string_view message);

// "CODE_NAME: message", for one-line error reports.
std::string StatusLine(const absl::Status& status);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_STATUS_H_
