// What the eP-CSCF benchmark programs share: the stack they measure (child
// processes and free ports from tests/support/process.h) and the HTTP load
// generator, used for the agent's requests and for the HTTP floor.
#ifndef TURNBROKER_BENCH_PCSCF_BENCH_SUPPORT_H_
#define TURNBROKER_BENCH_PCSCF_BENCH_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "percentiles.h"
#include "process.h"

namespace turnbroker::bench {

// A pcscf-turn-agent (realm example.org) publishing to the broker at
// `broker_address`, on a free loopback port, its output in `log_path`;
// returned once its /healthz answers 200 (in shared-secret mode: once it can
// mint). `extra_args` are added to its command line (e.g. --issuer NAME).
// Exits the program with the log if it does not start.
struct AgentProcess {
  std::unique_ptr<testing::Subprocess> process;
  int port = 0;
};
AgentProcess StartAgent(const std::string& broker_address, const std::string& log_path,
                        int http_threads, const std::string& mode = "per-credential",
                        const std::vector<std::string>& extra_args = {});

// An ephemeral turn-broker and a pcscf-turn-agent publishing to it, on free
// loopback ports, logs in `dir`; stopped when destroyed.
struct AgentStack {
  std::unique_ptr<testing::Subprocess> broker;
  std::unique_ptr<testing::Subprocess> agent;
  std::string broker_address;  // HOST:PORT
  int agent_port = 0;
};
// `mode`: the agent's --mode. For "shared-secret" a secret is added and
// activated at the broker (AddSecret, ActivateSecret) and the stack is
// returned once the agent's /healthz says it can mint. Exits the program
// with the logs if a part does not start. `extra_agent_args` are added to
// the agent's command line (e.g. --kamailio-evapi).
AgentStack StartAgentStack(const testing::TempDir& dir, int http_threads,
                           const std::string& mode = "per-credential",
                           const std::vector<std::string>& extra_agent_args = {});

// Open-loop HTTP load over keep-alive connections (open_loop.h): request k
// is scheduled at t0 + k / rate and sent by connection k % connections (so a connection
// that is still waiting sends late: that shows in `latency`).
struct HttpLoad {
  std::string host;
  int port = 0;
  double rate = 2000, duration_s = 10, warmup_s = 1;
  int connections = 16;
  // The floor: GET of an unknown path, answered 404 without minting or
  // publishing. Otherwise POST /v1/credentials with a new IMPU each, 201.
  bool floor = false;
};
struct HttpLoadResult {
  // ms; a request without the expected answer after the warm-up is lost.
  Percentiles service;  // send -> answer
  Percentiles latency;  // schedule -> answer
  long sent = 0, errors = 0;
  double elapsed_s = 0;
  struct TraceLine {
    long k;
    double scheduled_ms, sent_ms, service_ms;
  };
  std::vector<TraceLine> trace;  // with `trace`, measured requests in order
  int64_t t0_us = 0;             // the first request's scheduled time, MonotonicMicros
                                 // (CLOCK_MONOTONIC)
};
HttpLoadResult RunHttpLoad(const HttpLoad& load, bool trace = false);

// The HTTP floor and the gRPC floor (GetStatus on the stack's broker, when
// known) at the same rate, printed as one line each; returns the HTTP one.
struct Floors {
  HttpLoadResult http;
  std::optional<Percentiles> grpc;  // µs
};
Floors MeasureFloors(const HttpLoad& load, const std::string& broker_address);
void PrintFloors(const Floors& floors);

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_PCSCF_BENCH_SUPPORT_H_
