#include "turnbroker/common/status.h"

#include "turnbroker/common/strings.h"

namespace turnbroker {

// absl::StatusCode and grpc::StatusCode share their numbering (both follow
// google.rpc.Code), so the conversion is a cast.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return FromCodeNumber(static_cast<int32_t>(status.error_code()), status.error_message());
}

int32_t ToCodeNumber(const absl::Status& status) { return static_cast<int32_t>(status.code()); }

absl::Status FromCodeNumber(int32_t code, std::string_view message) {
  if (code == 0) return absl::OkStatus();
  // google.rpc.Code runs 1..16 (UNAUTHENTICATED).
  if (code < 1 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(StrCat("status code ", code, ": ", message));
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      absl::string_view(message.data(), message.size()));
}

std::string StatusLine(const absl::Status& status) {
  return StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

}  // namespace turnbroker
