#include "turnbroker/common/channel.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>

#include "turnbroker/common/net.h"
#include "turnbroker/common/strings.h"

namespace turnbroker {

absl::StatusOr<std::string> BrokerTarget(std::string_view target, std::string_view field) {
  if (target.find(',') == target.npos || target.find(':') == target.npos ||
      target.find("://") != target.npos || target.rfind("ipv4:", 0) == 0 ||
      target.rfind("ipv6:", 0) == 0) {
    return std::string(target);
  }
  auto list = ParseHostPortList(target, field);
  if (!list.ok()) return list.status();
  std::vector<std::string> v4, v6;
  for (const HostPort& hp : *list) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int e = getaddrinfo(hp.host.c_str(), nullptr, &hints, &found); e != 0) {
      return absl::InvalidArgumentError(
          StrCat(field, ": cannot resolve '", hp.host, "': ", gai_strerror(e)));
    }
    for (addrinfo* a = found; a; a = a->ai_next) {
      char ip[INET6_ADDRSTRLEN] = {};
      if (a->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, ip, sizeof ip);
        v4.push_back(StrCat(ip, ":", hp.port));
      } else if (a->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, ip, sizeof ip);
        v6.push_back(StrCat("[", ip, "]:", hp.port));
      }
    }
    freeaddrinfo(found);
  }
  // One scheme per target: IPv4 addresses when there are any.
  std::vector<std::string>& all = v4.empty() ? v6 : v4;
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::string out = v4.empty() ? "ipv6:" : "ipv4:";
  for (size_t i = 0; i < all.size(); ++i) StrAppend(&out, i ? "," : "", all[i]);
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options) {
  auto creds = MakeChannelCredentials(options.tls);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, options.keepalive_time_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options.keepalive_timeout_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is the minimum connect timeout, not
  // a backoff: left at gRPC's 20 s so a distant TLS broker can connect.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, options.initial_reconnect_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options.max_reconnect_backoff_ms);
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  auto target = BrokerTarget(options.target, "--broker");
  if (!target.ok()) return target.status();
  if (*target != options.target && options.tls_server_name.empty() && options.tls.enabled()) {
    // Addresses carry no name: certificates are checked against the first
    // host of the list (give every replica a certificate for it, or set the
    // server name).
    args.SetSslTargetNameOverride(ParseHostPortList(options.target, "--broker")->front().host);
  }
  return grpc::CreateCustomChannel(*target, *creds, args);
}

}  // namespace turnbroker
