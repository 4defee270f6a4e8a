// turnbroker-probe URL: GETs http://HOST:PORT/PATH (or unix:/SOCKET:/PATH)
// and exits 0 on a 2xx answer within 2 s, 1 otherwise with the reason on
// stderr. For Kubernetes exec probes of servers on a pod's loopback; the
// image has no shell or curl.
#include <httplib.h>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("turnbroker-probe %s\n", TURNBROKER_VERSION);
    return 0;
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: turnbroker-probe http://HOST:PORT/PATH | unix:/SOCKET:/PATH\n");
    return 2;
  }
  std::string url = argv[1];
  std::string host, path;
  int port = 80;
  bool unix_socket = false;
  if (url.rfind("unix:", 0) == 0) {
    size_t colon = url.find(':', 5);
    if (colon == std::string::npos) {
      std::fprintf(stderr, "turnbroker-probe: unix:/SOCKET:/PATH expected\n");
      return 2;
    }
    host = url.substr(5, colon - 5);
    path = url.substr(colon + 1);
    unix_socket = true;
  } else if (url.rfind("http://", 0) == 0) {
    std::string rest = url.substr(7);
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    path = slash == std::string::npos ? "/" : rest.substr(slash);
    size_t colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(']') == std::string::npos) {
      host = authority.substr(0, colon);
      port = std::atoi(authority.c_str() + colon + 1);
    } else {
      host = authority;
    }
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  } else {
    std::fprintf(stderr, "turnbroker-probe: %s: only http:// and unix: URLs\n", url.c_str());
    return 2;
  }
  if (host.empty() || port <= 0 || port > 65535) {
    std::fprintf(stderr, "turnbroker-probe: %s: bad host or port\n", url.c_str());
    return 2;
  }
  httplib::Client client(host, unix_socket ? 80 : port);
  if (unix_socket) client.set_address_family(AF_UNIX);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(2, 0);
  auto res = client.Get(path);
  if (!res) {
    std::fprintf(stderr, "turnbroker-probe: %s: %s\n", url.c_str(),
                 httplib::to_string(res.error()).c_str());
    return 1;
  }
  if (res->status < 200 || res->status > 299) {
    std::fprintf(stderr, "turnbroker-probe: %s: HTTP %d\n", url.c_str(), res->status);
    return 1;
  }
  return 0;
}
