// libFuzzer target: the journal's record decoding (broker/record.h and the
// Event encoding the journal stores): any bytes decoded as an Event as
// recovery does; a valid put becomes a Record whose views and hand-made
// encodings must agree with protobuf's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "quiet_protobuf.h"
#include "turnbroker/broker/record.h"
#include "turnbroker/common/credential.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  turnbroker::fuzz::QuietProtobuf();
  using namespace turnbroker;
  using namespace turnbroker::broker;
  v1::Event event;
  if (!event.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!event.has_put()) return 0;
  const v1::Credential& c = event.put();
  // The broker makes records only of validated credentials.
  if (!ValidateCredential(c, CredentialLimits{1, INT64_MAX / 2}, 0, "put").ok()) return 0;
  RecordRef r = Record::Create(c, event.revision(), c.issued_at_ms());
  if (r->username() != c.username() || r->realm() != c.realm() || r->key() != c.key() ||
      r->subscriber() != c.subscriber() || r->issuer() != c.issuer() ||
      r->expires_at_ms() != c.expires_at_ms())
    std::abort();
  for (const auto& scope : c.scopes()) {
    if (!r->HasScope(scope)) std::abort();
  }
  v1::Credential back;
  r->ToProto(&back, /*include_key=*/true);
  if (back.username() != c.username() || back.key() != c.key()) std::abort();
  std::string wire;
  AppendPutEvent(&wire, *r, event.revision());
  if (wire.size() != PutEventSize(*r, event.revision())) std::abort();
  v1::Event decoded;
  if (!decoded.ParseFromString(wire) || decoded.revision() != event.revision() ||
      decoded.put().username() != c.username())
    std::abort();
  return 0;
}
