#include "turnbroker/ctl/command_line.h"

#include <cstdio>

#include "turnbroker/common/flags.h"

namespace turnbroker::ctl {

CtlCommandLine::CtlCommandLine(CLI::App* app) {
  app->description(
      "turnbrokerctl: operate a turn-broker (publish, revoke, get, list, watch, status; "
      "secret add|activate|retire|list for approach 1).\n"
      "Exit codes: 0 ok, 1 the broker refused (reason on stderr), 2 usage, 3 broker "
      "unreachable.");
  app->require_subcommand(1);
  // TLS from TURNBROKERCTL_TLS_*: TURNBROKER_TLS_* are the broker's own
  // (server certificate), often set in the same shell or container.
  AddBrokerClientFlags(*app, &channel_, "TURNBROKER_BROKER", "TURNBROKERCTL_",
                       "publisher or operator; secret-admin for `secret`");
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

  watch_
      ->add_option("--kind", watch_kinds_,
                   "Record kinds: credential (default), secret (shared secrets, approach 1; "
                   "their bytes are never printed) (repeatable)")
      ->check(CLI::IsMember({"credential", "secret"}));

  status_ = app->add_subcommand("status", "Broker status and health");

  // Approach 1 (docs/approach1.md): the rotation of a realm's shared secret.
  SecretArgs& sa = secret_args_;
  secret_ = app->add_subcommand(
      "secret", "Shared secrets of approach 1: add (stage), activate, retire, list");
  secret_->require_subcommand(1);
  secret_add_ = secret_->add_subcommand(
      "add", "Stage a new secret: every TURN node starts accepting it; agents do not use it yet");
  secret_activate_ = secret_->add_subcommand(
      "activate",
      "Make agents mint with it (refused until every TURN sync acknowledged it, or the "
      "broker's --secret-stage-grace passed); the active one becomes SUPERSEDED");
  secret_retire_ =
      secret_->add_subcommand("retire",
                              "Remove it everywhere (not the ACTIVE one; a SUPERSEDED one once its "
                              "credentials' longest lifetime has passed, or with --force)");
  secret_list_ = secret_->add_subcommand(
      "list", "The known secrets, one a line, with the TURN syncs that acknowledged each");
  for (CLI::App* verb : {secret_add_, secret_activate_, secret_retire_}) {
    verb->add_option("--realm", sa.realm, "TURN realm")->required();
    verb->add_option("--id", sa.id, "Secret id: 1..64 of [A-Za-z0-9._-]")->required();
  }
  secret_list_->add_option("--realm", sa.realm, "Only this realm");
  secret_add_->add_option("--secret-file", sa.secret_file,
                          "Read the secret from this file (e.g. a static-auth-secret being "
                          "migrated) instead of generating 256 random bits");
  secret_add_->add_option("--not-before", sa.not_before,
                          "Agents do not mint with it before: Unix seconds or RFC 3339 UTC");
  secret_add_->add_option("--expires-in", sa.expires_in_s,
                          "It expires this many seconds from now (default: never)");
  for (CLI::App* verb : {secret_add_, secret_list_}) {
    verb->add_flag("--show-secret", sa.show_secret,
                   "Print the secret's bytes (never printed otherwise)");
  }
  secret_retire_->add_flag("--force", sa.force,
                           "Retire a SUPERSEDED secret now: credentials minted with it are "
                           "then refused");
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
  if (*watch_) {
    for (const std::string& kind : watch_kinds_) {
      watch_args_.request.add_kinds(kind == "secret" ? v1::RECORD_KIND_SHARED_SECRET
                                                     : v1::RECORD_KIND_LONG_TERM_CREDENTIAL);
    }
    return Watch(broker, watch_args_, out);
  }
  if (*status_) return Status(broker, out);
  if (*secret_add_) return SecretAdd(broker, secret_args_, Clock::System(), out);
  if (*secret_activate_) return SecretActivate(broker, secret_args_, out);
  if (*secret_retire_) return SecretRetire(broker, secret_args_, out);
  if (*secret_list_) return SecretList(broker, secret_args_, Clock::System(), out);
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
