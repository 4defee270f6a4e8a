// String building over std::string_view. (Debian's Abseil is built with
// ABSL_OPTION_USE_STD_STRING_VIEW=0, so absl::StrCat does not take
// std::string_view; see docs/toolchain.md.)
#ifndef TURNBROKER_COMMON_STRINGS_H_
#define TURNBROKER_COMMON_STRINGS_H_

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace turnbroker {
namespace strings_internal {

inline void Append(std::string* out, std::string_view v) { out->append(v); }
inline void Append(std::string* out, const char* v) { out->append(v); }
inline void Append(std::string* out, const std::string& v) { out->append(v); }
inline void Append(std::string* out, absl::string_view v) { out->append(v.data(), v.size()); }
inline void Append(std::string* out, char c) { out->push_back(c); }
inline void Append(std::string* out, bool b) { out->append(b ? "true" : "false"); }
template <typename T>
requires(std::integral<T> && !std::same_as<T, char> &&
         !std::same_as<T, bool>) void Append(std::string* out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
template <std::floating_point T>
void Append(std::string* out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

}  // namespace strings_internal

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  (strings_internal::Append(out, args), ...);
}

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  StrAppend(&out, args...);
  return out;
}

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_STRINGS_H_
