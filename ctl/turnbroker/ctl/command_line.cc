#include "turnbroker/ctl/command_line.h"

#include <cstdio>

#include "turnbroker/common/flags.h"

namespace turnbroker::ctl {

CtlCommandLine::CtlCommandLine(CLI::App* app) {
  app->description(
      "turnbrokerctl: operate a turn-broker (publish, revoke, get, list, watch, status).\n"
      "Exit codes: 0 ok, 1 the broker refused (reason on stderr), 2 usage, 3 broker "
      "unreachable.");
  app->require_subcommand(1);
  // TLS from TURNBROKERCTL_TLS_*: TURNBROKER_TLS_* are the broker's own
  // (server certificate), often set in the same shell or container.
  AddBrokerClientFlags(*app, &channel_, "TURNBROKER_BROKER", "TURNBROKERCTL_",
                       "publisher or operator");
  app->add_option("--timeout", timeout_s_, "Deadline of each call, seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86'400.0));
  app->add_flag("--json", json_, "Print JSON objects instead of key=value lines");
  app->set_version_flag("--version", TURNBROKER_VERSION);

  PublishArgs& p = publish_args_;
  publish_ = app->add_subcommand(
      "publish", "Make a credential live (the key is computed here; the password is never sent)");
  publish_->add_option("--realm", *p.credential.mutable_realm(), "TURN realm")->required();
  publish_->add_option("--username", *p.credential.mutable_username(), "TURN username")->required();
  auto* password =
      publish_->add_option("--password", p.password, "Password ('-': read a line from stdin)");
  auto* key = publish_->add_option("--key", p.key_hex,
                                   "The long-term key as 32 hex digits, instead of --password");
  password->excludes(key);
  publish_->add_option("--ttl", p.ttl_s, "Lifetime, seconds")->required();
  publish_->add_option("--subscriber", *p.credential.mutable_subscriber(),
                       "IMPU/IMPI it is issued to");
  publish_->add_option("--issuer", *p.credential.mutable_issuer(), "Issuing eP-CSCF instance");
  publish_->add_option("--scope", p.scopes, "TURN farm allowed to serve it (repeatable)");

  RevokeArgs& r = revoke_args_;
  revoke_ = app->add_subcommand("revoke", "Revoke credentials before their expiry");
  auto* by_username = revoke_->add_option("--username", r.username, "One username");
  revoke_->add_option("--realm", r.realm, "...in this realm only");
  auto* by_subscriber =
      revoke_->add_option("--subscriber", r.subscriber, "Every credential of this IMPU/IMPI");
  auto* by_issuer = revoke_->add_option("--issuer", r.issuer, "Every credential of this eP-CSCF");
  revoke_->add_option("--reason", r.reason, "Audit text");
  by_username->excludes(by_subscriber)->excludes(by_issuer);
  by_subscriber->excludes(by_issuer);

  get_ =
      app->add_subcommand("get", "Show one live credential (fails if revoked, expired or unknown)");
  get_->add_option("--username", get_args_.username, "Username")->required();
  get_->add_option("--realm", get_args_.realm, "Realm (default: any)");

  v1::ListRequest& filter = list_args_.filter;
  list_ = app->add_subcommand("list", "List live credentials, one a line");
  list_->add_option("--realm", *filter.mutable_realm(), "Only this realm");
  list_->add_option("--subscriber", *filter.mutable_subscriber(), "Only this subscriber");
  list_->add_option("--issuer", *filter.mutable_issuer(), "Only this issuer");
  list_->add_option("--limit", list_args_.limit, "At most this many (0: all)");

  WatchArgs& w = watch_args_;
  watch_ = app->add_subcommand("watch", "Stream changes, one event a line (markers too)");
  watch_->add_option("--from", w.from, "Resume after this revision (default: snapshot)");
  watch_->add_option("--epoch", w.from_epoch, "Epoch of --from (default: the broker's current)");
  watch_->add_option("--realm", w.realms, "Only these realms (repeatable)");
  watch_->add_option("--farm", *w.request.mutable_farm(),
                     "This TURN farm's name (for scoped credentials)");
  watch_->add_flag(
      "--all-scopes", [&w](int64_t) { w.request.set_all_scopes(true); },
      "Receive scoped credentials of every farm");
  watch_->add_option("--count", w.count, "Exit after this many events");
  watch_->add_flag("--until-synced", w.until_synced, "Exit at the SYNCED marker");

  status_ = app->add_subcommand("status", "Broker status and health");
}

int CtlCommandLine::Run(std::istream* input, std::ostream* output) {
  auto channel = MakeChannel(channel_);
  if (!channel.ok()) return UsageError("turnbrokerctl", channel.status());
  auto stub = v1::CredentialBroker::NewStub(*channel);
  auto health = grpc::health::v1::Health::NewStub(*channel);
  const Broker broker{stub.get(), health.get(), static_cast<int64_t>(timeout_s_ * 1000)};
  const Printer out(output, json_);
  if (*publish_) return Publish(broker, publish_args_, Clock::System(), input, out);
  if (*revoke_) return Revoke(broker, revoke_args_, out);
  if (*get_) return Get(broker, get_args_, out);
  if (*list_) return List(broker, list_args_, out);
  if (*watch_) return Watch(broker, watch_args_, out);
  if (*status_) return Status(broker, out);
  return kUsage;
}

int RunCtl(int argc, char** argv) {
  CLI::App app;
  CtlCommandLine command_line(&app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line on stderr, like every other refusal.
    std::fprintf(stderr, "turnbrokerctl: %s\n", e.what());
    return kUsage;
  }
  return command_line.Run();
}

}  // namespace turnbroker::ctl
