#include "turnbroker/broker/record.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "turnbroker/broker/wire.h"

namespace turnbroker::broker {
namespace {

using C = v1::Credential;
constexpr uint32_t kRealm = C::kRealmFieldNumber;
constexpr uint32_t kUsername = C::kUsernameFieldNumber;
constexpr uint32_t kKey = C::kKeyFieldNumber;
constexpr uint32_t kExpiresAt = C::kExpiresAtMsFieldNumber;
constexpr uint32_t kIssuedAt = C::kIssuedAtMsFieldNumber;
constexpr uint32_t kSubscriber = C::kSubscriberFieldNumber;
constexpr uint32_t kIssuer = C::kIssuerFieldNumber;
constexpr uint32_t kScopes = C::kScopesFieldNumber;
constexpr uint32_t kEventRevision = v1::Event::kRevisionFieldNumber;
constexpr uint32_t kEventPut = v1::Event::kPutFieldNumber;
// The sizes below count these varint fields' tags as one byte each.
static_assert(kExpiresAt < 16 && kIssuedAt < 16 && kEventRevision < 16);

}  // namespace

RecordRef Record::Create(const v1::Credential& c, Revision revision, int64_t issued_at_ms) {
  // Size first, then encode straight into the record's own allocation.
  size_t size =
      wire::BytesFieldSize(kRealm, c.realm().size()) +
      wire::BytesFieldSize(kUsername, c.username().size()) +
      wire::BytesFieldSize(kKey, c.key().size()) +
      (c.expires_at_ms() ? 1 + wire::VarintSize(c.expires_at_ms()) : 0) +
      (issued_at_ms ? 1 + wire::VarintSize(issued_at_ms) : 0) +
      (c.subscriber().empty() ? 0 : wire::BytesFieldSize(kSubscriber, c.subscriber().size())) +
      (c.issuer().empty() ? 0 : wire::BytesFieldSize(kIssuer, c.issuer().size()));
  for (const auto& scope : c.scopes()) size += wire::BytesFieldSize(kScopes, scope.size());
  if (size > 0xffff) {
    std::fputs("fatal: credential encoding exceeds 64 KiB\n", stderr);
    std::abort();
  }
  void* mem = ::operator new(sizeof(Record) + size);
  Record* r = new (mem) Record();
  r->revision_ = revision;
  r->expires_at_ms_ = c.expires_at_ms();
  wire::Writer w(r->wire_);
  auto put = [&](uint32_t field, const std::string& v, uint16_t* off, uint16_t* len) {
    if (v.empty()) return;
    w.Tag(field, wire::kLengthDelimited);
    w.Varint(v.size());
    *off = static_cast<uint16_t>(w.size());
    if (len) *len = static_cast<uint16_t>(v.size());
    w.Bytes(v);
  };
  put(kRealm, c.realm(), &r->realm_off_, &r->realm_len_);
  put(kUsername, c.username(), &r->username_off_, &r->username_len_);
  put(kKey, c.key(), &r->key_off_, nullptr);
  if (c.expires_at_ms()) {
    w.Tag(kExpiresAt, wire::kVarint);
    w.Varint(static_cast<uint64_t>(c.expires_at_ms()));
  }
  if (issued_at_ms) {
    w.Tag(kIssuedAt, wire::kVarint);
    r->issued_off_ = static_cast<uint16_t>(w.size());
    w.Varint(static_cast<uint64_t>(issued_at_ms));
  }
  put(kSubscriber, c.subscriber(), &r->subscriber_off_, &r->subscriber_len_);
  put(kIssuer, c.issuer(), &r->issuer_off_, &r->issuer_len_);
  r->scopes_off_ = static_cast<uint16_t>(w.size());
  for (const auto& scope : c.scopes()) {
    w.Tag(kScopes, wire::kLengthDelimited);
    w.Varint(scope.size());
    w.Bytes(scope);
  }
  r->num_scopes_ = static_cast<uint8_t>(c.scopes_size());
  r->wire_len_ = static_cast<uint16_t>(w.size());
  return RecordRef(r);
}

int64_t Record::issued_at_ms() const {
  if (issued_off_ == 0) return 0;
  uint64_t v = 0;
  for (int shift = 0, i = issued_off_; shift < 64; shift += 7, ++i) {
    uint8_t b = static_cast<uint8_t>(wire_[i]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return static_cast<int64_t>(v);
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
  // Revision 0 is omitted like any proto3 default, as AppendPutEvent does
  // (found by fuzz/record_fuzzer.cc).
  return (revision ? 1 + wire::VarintSize(revision) : 0) +
         wire::BytesFieldSize(kEventPut, record.credential_wire().size());
}

void AppendPutEvent(std::string* out, const Record& record, Revision revision) {
  wire::PutVarintField(out, kEventRevision, revision);
  wire::PutBytesAlways(out, kEventPut, record.credential_wire());
}

}  // namespace turnbroker::broker
