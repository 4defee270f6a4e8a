// libFuzzer target: the HTTP/1.1 request parser every HTTP endpoint uses
// (common/http_server.h), fed in pieces as a socket would deliver them.
// Invariants: it never consumes more than it is given, a complete request
// never has a body beyond the limit, and a pipelined rest parses on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "turnbroker/common/http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte chooses the piece size (1..256), the rest is the stream.
  size_t piece = static_cast<size_t>(data[0]) + 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  turnbroker::HttpLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_body_bytes = 512;
  limits.max_headers = 16;
  turnbroker::HttpRequestParser parser(limits);
  std::string pending;
  size_t pos = 0;
  int requests = 0;
  while (pos < stream.size() || !pending.empty()) {
    if (pos < stream.size()) {
      size_t n = std::min(piece, stream.size() - pos);
      pending.append(stream.substr(pos, n));
      pos += n;
    }
    size_t used = 0;
    auto r = parser.Feed(pending, &used);
    if (used > pending.size()) std::abort();
    pending.erase(0, used);
    if (r == turnbroker::HttpRequestParser::Result::kDone) {
      const auto& req = parser.request();
      if (req.body.size() > limits.max_body_bytes) std::abort();
      if (req.method.empty() || req.path.empty()) std::abort();
      (void)turnbroker::HttpJsonError(400, req.path, req.method);
      parser.Reset();
      if (++requests > 64) break;
    } else if (r == turnbroker::HttpRequestParser::Result::kError) {
      const auto& e = parser.error();
      if (e.status < 400 || e.status > 599 || e.message.empty()) std::abort();
      (void)turnbroker::HttpJsonError(e.status, e.message, e.field);
      break;
    } else if (used == 0 && pos >= stream.size()) {
      break;  // needs more than there is
    }
  }
  return 0;
}
