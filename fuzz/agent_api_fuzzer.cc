// libFuzzer target: the agent's whole request path without sockets, as
// pcscf-turn-agent runs it: bytes -> HttpRequestParser -> AgentApi (routing,
// JSON bodies, query parameters) -> Issuer -> Publisher, over a broker that
// acknowledges at once. Invariants: every answer is a known status with a
// JSON body for errors, and no password leaves in an error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>

#include "turnbroker/common/http_server.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/agent_api.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/pcscf/issuer.h"
#include "turnbroker/pcscf/publisher.h"

namespace {

using namespace turnbroker;
using namespace turnbroker::pcscf;

// A broker that commits everything at once (the agent's side is fuzzed).
class AckingBroker : public BrokerClient {
 public:
  void Publish(v1::PublishRequest, int64_t, Callback<v1::PublishResponse> done) override {
    v1::PublishResponse r;
    r.set_revision(++revision_);
    done(r);
  }
  void Revoke(v1::RevokeRequest, int64_t, Callback<v1::RevokeResponse> done) override {
    v1::RevokeResponse r;
    r.set_revision(++revision_);
    done(r);
  }
  void GetStatus(int64_t, Callback<v1::GetStatusResponse> done) override {
    v1::GetStatusResponse r;
    r.set_epoch("fuzz");
    r.set_revision(revision_);
    done(r);
  }

 private:
  std::atomic<uint64_t> revision_{0};
};

struct Agent {
  Agent() {
    IssuerOptions o;
    o.realm = "example.org";
    o.issuer = "pcscf-fuzz";
    o.turn_uris = {"turn:turn.example.org:3478?transport=udp"};
    o.status_interval_ms = 0;
    o.overlap_ms = -1;
    publisher = std::make_unique<Publisher>(&broker, PublisherOptions());
    issuer = std::make_unique<Issuer>(publisher.get(), o);
    api = std::make_unique<AgentApi>(issuer.get(), &metrics);
  }
  AckingBroker broker;
  MetricsRegistry metrics;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<Issuer> issuer;
  std::unique_ptr<AgentApi> api;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<Agent> agent;
  // Credentials pile up in the issuer's registry: start afresh now and then.
  if (!agent || agent->issuer->live_credentials() > 500) {
    agent.reset();
    agent = std::make_unique<Agent>();
  }
  HttpRequestParser parser;
  size_t used = 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (parser.Feed(in, &used) != HttpRequestParser::Result::kDone) return 0;
  ApiResponse r = agent->api->Handle(parser.request());
  if (r.status < 200 || r.status > 599) std::abort();
  if (r.status >= 400) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("error")) std::abort();
    // No password field in an error. (Not a substring test: a request may
    // carry the text itself, which an error echoes escaped; the 10M-run of
    // 2026-12-06 found that, docs/security.md.)
    if (j.contains("password")) std::abort();
  }
  return 0;
}
