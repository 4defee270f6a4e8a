// Protocol Buffers wire encoding by hand, for the hot paths that must not pay
// for message objects: records keep their Credential's encoding, and Watch
// frames are concatenations of pre-encoded events. Tests check every byte
// against the generated parser.
#ifndef TURNBROKER_BROKER_WIRE_H_
#define TURNBROKER_BROKER_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace turnbroker::broker::wire {

enum WireType : uint32_t { kVarint = 0, kLengthDelimited = 2 };

inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void PutTag(std::string* out, uint32_t field, WireType type) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | type);
}

// A varint field; proto3 omits zero.
inline void PutVarintField(std::string* out, uint32_t field, uint64_t v) {
  if (v == 0) return;
  PutTag(out, field, kVarint);
  PutVarint(out, v);
}

// A length-delimited field (string, bytes, message); proto3 omits empty
// strings, so callers that must keep an empty message call PutBytesAlways.
inline void PutBytesAlways(std::string* out, uint32_t field, std::string_view bytes) {
  PutTag(out, field, kLengthDelimited);
  PutVarint(out, bytes.size());
  out->append(bytes);
}
inline void PutBytes(std::string* out, uint32_t field, std::string_view bytes) {
  if (!bytes.empty()) PutBytesAlways(out, field, bytes);
}

// Size of a length-delimited field carrying `payload` bytes.
inline size_t BytesFieldSize(uint32_t field, size_t payload) {
  return VarintSize(static_cast<uint64_t>(field) << 3) + VarintSize(payload) + payload;
}

// Writes into a buffer the caller sized exactly (see BytesFieldSize).
class Writer {
 public:
  explicit Writer(char* out) : begin_(out), p_(out) {}
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void Tag(uint32_t field, WireType type) { Varint((static_cast<uint64_t>(field) << 3) | type); }
  void Bytes(std::string_view b) {
    std::memcpy(p_, b.data(), b.size());
    p_ += b.size();
  }
  size_t size() const { return static_cast<size_t>(p_ - begin_); }

 private:
  char* begin_;
  char* p_;
};

}  // namespace turnbroker::broker::wire

#endif  // TURNBROKER_BROKER_WIRE_H_
