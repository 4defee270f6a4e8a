// A live credential as the broker holds it: immutable, reference-counted, in
// one allocation holding the Credential's canonical protobuf encoding, with
// the fields indexes need as views into it. One record serves the live set,
// its indexes, the retained history and every Watch frame that carries it.
#ifndef TURNBROKER_BROKER_RECORD_H_
#define TURNBROKER_BROKER_RECORD_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::broker {

namespace v1 = ::turnbroker::v1;
using Revision = uint64_t;

class RecordRef;

class Record {
 public:
  // Makes a record of `credential` (already validated) written at
  // `revision`, with `issued_at_ms` in place of the credential's. Aborts only
  // if the encoding exceeds 64 KiB, which validation rules out.
  static RecordRef Create(const v1::Credential& credential, Revision revision,
                          int64_t issued_at_ms);
  static RecordRef Create(const v1::Credential& credential, Revision revision);

  Record(const Record&) = delete;
  Record& operator=(const Record&) = delete;

  Revision revision() const { return revision_; }
  int64_t expires_at_ms() const { return expires_at_ms_; }
  int64_t issued_at_ms() const;
  std::string_view realm() const { return View(realm_off_, realm_len_); }
  std::string_view username() const { return View(username_off_, username_len_); }
  std::string_view key() const { return View(key_off_, 16); }
  std::string_view subscriber() const { return View(subscriber_off_, subscriber_len_); }
  std::string_view issuer() const { return View(issuer_off_, issuer_len_); }
  bool scoped() const { return num_scopes_ > 0; }
  // Whether `farm` is one of the scopes (false for an unscoped record).
  bool HasScope(std::string_view farm) const;
  // The Credential message's encoding (field order 1..8, proto3 defaults
  // omitted).
  std::string_view credential_wire() const { return {wire_, wire_len_}; }

  // Same realm, username, key, expiry and metadata.
  bool SameAs(const Record& other) const { return credential_wire() == other.credential_wire(); }

  // Decodes into a message; without the key unless asked (operators never
  // see key material).
  void ToProto(v1::Credential* out, bool include_key) const;

  void Ref() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() const;

 private:
  Record() = default;
  std::string_view View(uint16_t off, uint16_t len) const { return {wire_ + off, len}; }

  mutable std::atomic<uint32_t> refs_{1};
  Revision revision_ = 0;
  int64_t expires_at_ms_ = 0;
  uint16_t wire_len_ = 0;
  uint16_t issued_off_ = 0;  // 0: issued_at is 0 (omitted)
  uint16_t realm_off_ = 0, realm_len_ = 0;
  uint16_t username_off_ = 0, username_len_ = 0;
  uint16_t key_off_ = 0;
  uint16_t subscriber_off_ = 0, subscriber_len_ = 0;
  uint16_t issuer_off_ = 0, issuer_len_ = 0;
  uint16_t scopes_off_ = 0;  // first scopes field's tag; they run to the end
  uint8_t num_scopes_ = 0;
  char wire_[];  // wire_len_ bytes (GNU flexible array member)
};

// An owning reference to a Record (intrusive count, 8 bytes).
class RecordRef {
 public:
  RecordRef() = default;
  RecordRef(const RecordRef& o) : p_(o.p_) {
    if (p_) p_->Ref();
  }
  RecordRef(RecordRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  RecordRef& operator=(RecordRef o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~RecordRef() {
    if (p_) p_->Unref();
  }

  // A new reference to a record someone else keeps alive.
  static RecordRef Share(const Record* record) {
    record->Ref();
    return RecordRef(record);
  }

  const Record* get() const { return p_; }
  const Record* operator->() const { return p_; }
  const Record& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  friend class Record;
  explicit RecordRef(const Record* adopted) : p_(adopted) {}
  const Record* p_ = nullptr;
};

// Appends the encoding of Event{revision, put = record} to `out`.
void AppendPutEvent(std::string* out, const Record& record, Revision revision);
size_t PutEventSize(const Record& record, Revision revision);

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_RECORD_H_
