// Protobuf logs every string field that is not UTF-8 as an error; fuzz
// inputs are full of them. Include once per target that parses protos.
#ifndef TURNBROKER_FUZZ_QUIET_PROTOBUF_H_
#define TURNBROKER_FUZZ_QUIET_PROTOBUF_H_

#include <google/protobuf/stubs/logging.h>

#include <string>

namespace turnbroker::fuzz {

inline void DropProtobufLog(google::protobuf::LogLevel, const char*, int, const std::string&) {}

// Call at the top of LLVMFuzzerTestOneInput.
inline void QuietProtobuf() {
  static bool done = (google::protobuf::SetLogHandler(&DropProtobufLog), true);
  (void)done;
}

}  // namespace turnbroker::fuzz

#endif  // TURNBROKER_FUZZ_QUIET_PROTOBUF_H_
