// How turnbrokerctl prints what the broker answered: one object a line, as
// key=value pairs or as JSON (--json).
#ifndef TURNBROKER_CTL_OUTPUT_H_
#define TURNBROKER_CTL_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::ctl {

using json = nlohmann::ordered_json;  // keeps fields in the order written

// A credential's fields, without its key (never printed).
json CredentialJson(const v1::Credential& credential);
// One event of a Watch stream: revision, type and what it names (never
// key material nor secret bytes).
json EventJson(const v1::Event& event);
// A shared secret's fields (approach 1); its bytes only if `show_secret`.
json SecretJson(const v1::SharedSecret& secret, bool show_secret);
// "STAGED", "ACTIVE", "SUPERSEDED".
std::string SecretStateText(v1::SecretState state);
// key=value pairs on one line; an empty value or one with a space is quoted.
std::string KeyValueLine(const json& object);

// Prints one object a line on `out`.
class Printer {
 public:
  Printer(std::ostream* out, bool json) : out_(out), json_(json) {}
  void Print(const json& object) const;

 private:
  std::ostream* out_;
  bool json_;
};

}  // namespace turnbroker::ctl

#endif  // TURNBROKER_CTL_OUTPUT_H_
