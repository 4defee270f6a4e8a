#include "turnbroker/common/flags.h"

#include <cstdio>

namespace turnbroker {

int UsageError(std::string_view program, const absl::Status& status) {
  std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(program.size()), program.data(),
               static_cast<int>(status.message().size()), status.message().data());
  return 2;
}

}  // namespace turnbroker
