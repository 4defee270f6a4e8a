// A broker in the test's own process, over real gRPC sockets: started on
// 127.0.0.1 at a free port, with a plaintext channel to it. For the tests
// that need BrokerServer's internals (its store, its state) beside the wire.
#ifndef TURNBROKER_TESTS_BROKER_IN_PROCESS_BROKER_H_
#define TURNBROKER_TESTS_BROKER_IN_PROCESS_BROKER_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "turnbroker/broker/server.h"
#include "turnbroker/common/channel.h"

namespace turnbroker::testing {

struct InProcessBroker {
  std::unique_ptr<broker::BrokerServer> server;
  std::shared_ptr<grpc::Channel> channel;
};

// Starts `options` (its listen address replaced) into `out`; a failure
// fails the test (call it under ASSERT_NO_FATAL_FAILURE, or from SetUp).
inline void StartInProcessBroker(broker::BrokerOptions options, InProcessBroker* out) {
  options.listen = {"127.0.0.1", 0};
  auto s = broker::BrokerServer::Start(options);
  ASSERT_TRUE(s.ok()) << s.status();
  out->server = std::move(*s);
  auto ch = MakeChannel(ChannelOptions{"127.0.0.1:" + std::to_string(out->server->port())});
  ASSERT_TRUE(ch.ok()) << ch.status();
  out->channel = *ch;
}

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_BROKER_IN_PROCESS_BROKER_H_
