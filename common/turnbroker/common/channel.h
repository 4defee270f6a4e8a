// A gRPC channel to the broker, configured the same way by every client
// (turnbrokerctl, the eP-CSCF library and agent, turn-credential-sync).
#ifndef TURNBROKER_COMMON_CHANNEL_H_
#define TURNBROKER_COMMON_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "turnbroker/common/tls.h"

namespace turnbroker {

struct ChannelOptions {
  ChannelOptions() = default;
  explicit ChannelOptions(std::string target) : target(std::move(target)) {}

  // HOST:PORT, a list HOST:PORT,HOST:PORT (broker replicas: see
  // BrokerTarget), or any gRPC target URI.
  std::string target;
  TlsFiles tls;  // empty: plaintext
  // Override of the name the server certificate must carry (default: host).
  std::string tls_server_name;
  // HTTP/2 keepalive: a dead broker is noticed within about
  // keepalive_time_ms + keepalive_timeout_ms even on an idle stream.
  int keepalive_time_ms = 10'000;
  int keepalive_timeout_ms = 5'000;
  int max_receive_message_bytes = 64 << 20;
  // Reconnect backoff of the channel itself.
  int initial_reconnect_backoff_ms = 100;
  int max_reconnect_backoff_ms = 5'000;
};

// The gRPC target for `target`: a single HOST:PORT or a URI as it is (a DNS
// name with several records already gives gRPC every address); a list
// HOST:PORT,HOST:PORT resolved now into one "ipv4:" (or "ipv6:") target of
// every address, over which the channel's pick_first policy fails over from
// one broker replica to the next. INVALID_ARGUMENT names `field`.
absl::StatusOr<std::string> BrokerTarget(std::string_view target, std::string_view field);

// Errors name the flag whose file cannot be read, or `--broker`.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options);

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_CHANNEL_H_
