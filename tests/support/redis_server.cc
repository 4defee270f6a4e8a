#include "redis_server.h"

#include <gtest/gtest.h>

namespace turnbroker::testing {

RedisServer::RedisServer(const TempDir& dir, std::vector<std::string> args, int port)
    : dir_(dir), args_(std::move(args)), port_(port ? port : FreePort()) {
  Start();
}

RedisServer::~RedisServer() = default;

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

turnbroker::RedisUrl RedisServer::redis_url() const {
  turnbroker::RedisUrl u;
  u.host = "127.0.0.1";
  u.port = static_cast<uint16_t>(port_);
  return u;
}

void RedisServer::Start() {
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_.path(),
                                   "--daemonize",
                                   "no"};
  argv.insert(argv.end(), args_.begin(), args_.end());
  process_.reset();
  process_ = std::make_unique<Subprocess>(argv, dir_.File("redis-" + std::to_string(port_) + "-" +
                                                          std::to_string(generation_++) + ".log"));
  if (!process_->WaitForOutput("Ready to accept connections", std::chrono::seconds(10))) {
    ADD_FAILURE() << "redis-server did not start:\n" << process_->Output();
  }
  // A fresh connection: the previous one died with the previous server.
  turnbroker::RedisOptions options;
  options.url = redis_url();
  options.connect_timeout_ms = 1'000;
  options.io_timeout_ms = 5'000;
  client_ = std::make_unique<turnbroker::HiredisClient>(options);
}

void RedisServer::Kill() {
  if (process_) process_->Kill();
}

turnbroker::RedisReply RedisServer::Command(std::vector<std::string> command) {
  std::string name = command.empty() ? "" : command.front();
  auto reply = client_->Command(std::move(command));
  if (!reply.ok()) {
    ADD_FAILURE() << "redis " << name << ": " << reply.status();
    return {};
  }
  return *reply;
}

std::optional<std::string> RedisServer::Get(const std::string& key) {
  auto r = Command({"GET", key});
  if (r.is_nil()) return std::nullopt;
  return r.str;
}

int64_t RedisServer::ExpiryMs(const std::string& key) {
  return Command({"PEXPIRETIME", key}).integer;
}

void RedisServer::Set(const std::string& key, const std::string& value) {
  Command({"SET", key, value});
}

std::vector<std::string> RedisServer::Keys(const std::string& pattern) {
  std::vector<std::string> out;
  for (auto& e : Command({"KEYS", pattern}).elements) out.push_back(e.str);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace turnbroker::testing
