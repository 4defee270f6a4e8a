#include "turnbroker/broker/record.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "turnbroker/broker/wire.h"

namespace turnbroker::broker {
namespace {

// Credential field numbers (proto/turnbroker/v1/broker.proto).
enum : uint32_t {
  kRealm = 1,
  kUsername = 2,
  kKey = 3,
  kExpiresAt = 4,
  kIssuedAt = 5,
  kSubscriber = 6,
  kIssuer = 7,
  kScopes = 8,
};
// Event field numbers.
enum : uint32_t { kEventRevision = 1, kEventPut = 2 };

uint16_t Offset(const std::string& wire, size_t payload_len) {
  return static_cast<uint16_t>(wire.size() - payload_len);
}

}  // namespace

RecordRef Record::Create(const v1::Credential& c, Revision revision,
                         int64_t issued_at_ms) {
  Record header;
  std::string wire;
  wire.reserve(64 + c.realm().size() + c.username().size() +
               c.subscriber().size() + c.issuer().size());
  auto put = [&](uint32_t field, const std::string& s, uint16_t* off,
                 uint16_t* len) {
    wire::PutBytes(&wire, field, s);
    *off = Offset(wire, s.size());
    if (len) *len = static_cast<uint16_t>(s.size());
  };
  put(kRealm, c.realm(), &header.realm_off_, &header.realm_len_);
  put(kUsername, c.username(), &header.username_off_, &header.username_len_);
  put(kKey, c.key(), &header.key_off_, nullptr);
  wire::PutVarintField(&wire, kExpiresAt, static_cast<uint64_t>(c.expires_at_ms()));
  wire::PutVarintField(&wire, kIssuedAt, static_cast<uint64_t>(issued_at_ms));
  put(kSubscriber, c.subscriber(), &header.subscriber_off_,
      &header.subscriber_len_);
  put(kIssuer, c.issuer(), &header.issuer_off_, &header.issuer_len_);
  header.scopes_off_ = static_cast<uint16_t>(wire.size());
  for (const auto& scope : c.scopes()) wire::PutBytesAlways(&wire, kScopes, scope);
  header.num_scopes_ = static_cast<uint8_t>(c.scopes_size());
  if (wire.size() > 0xffff) {
    std::fputs("fatal: credential encoding exceeds 64 KiB\n", stderr);
    std::abort();
  }

  void* mem = ::operator new(sizeof(Record) + wire.size());
  Record* r = new (mem) Record();
  r->wire_len_ = static_cast<uint32_t>(wire.size());
  r->revision_ = revision;
  r->expires_at_ms_ = c.expires_at_ms();
  r->issued_at_ms_ = issued_at_ms;
  r->realm_off_ = header.realm_off_, r->realm_len_ = header.realm_len_;
  r->username_off_ = header.username_off_;
  r->username_len_ = header.username_len_;
  r->key_off_ = header.key_off_;
  r->subscriber_off_ = header.subscriber_off_;
  r->subscriber_len_ = header.subscriber_len_;
  r->issuer_off_ = header.issuer_off_, r->issuer_len_ = header.issuer_len_;
  r->scopes_off_ = header.scopes_off_, r->num_scopes_ = header.num_scopes_;
  std::memcpy(r->wire_, wire.data(), wire.size());
  return RecordRef(r);
}

RecordRef Record::Create(const v1::Credential& credential, Revision revision) {
  return Create(credential, revision, credential.issued_at_ms());
}

void Record::Unref() const {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    this->~Record();
    ::operator delete(const_cast<Record*>(this));
  }
}

bool Record::HasScope(std::string_view farm) const {
  // Each scope is: tag (1 byte: field 8, wire type 2), length (1 byte: at
  // most 64), bytes.
  const char* p = wire_ + scopes_off_;
  const char* end = wire_ + wire_len_;
  while (p + 2 <= end) {
    size_t len = static_cast<unsigned char>(p[1]);
    if (std::string_view(p + 2, len) == farm) return true;
    p += 2 + len;
  }
  return false;
}

void Record::ToProto(v1::Credential* out, bool include_key) const {
  out->ParseFromArray(wire_, static_cast<int>(wire_len_));
  if (!include_key) out->clear_key();
}

size_t PutEventSize(const Record& record, Revision revision) {
  return 1 + wire::VarintSize(revision) +
         wire::BytesFieldSize(kEventPut, record.credential_wire().size());
}

void AppendPutEvent(std::string* out, const Record& record,
                    Revision revision) {
  wire::PutVarintField(out, kEventRevision, revision);
  wire::PutBytesAlways(out, kEventPut, record.credential_wire());
}

}  // namespace turnbroker::broker
