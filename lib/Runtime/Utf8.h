//===- Utf8.h - Decoding one UTF-8 sequence ---------------------*- C++ -*-===//
//
// Internal to the runtime library: the JSON parser validates strings with
// it, printable() uses it to tell well-formed text from bytes to escape.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_UTF8_H
#define MOE_RUNTIME_UTF8_H

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace moe::runtime::detail {

/// Why a byte sequence is not well-formed UTF-8.
enum class Utf8Error {
  None,
  BadLead,         ///< not a lead byte of a 2- to 4-byte sequence
  Truncated,       ///< the text ends inside the sequence
  BadContinuation, ///< a byte after the lead is not 10xxxxxx
  Overlong,        ///< a longer encoding than the code point needs
  BadCodePoint,    ///< a surrogate or a code point past U+10FFFF
};

/// Decodes the multi-byte sequence starting at text[pos] (a byte >= 0x80):
/// on success sets `length` (2 to 4) and `codePoint`; on failure
/// `errorOffset` is the offset of the offending byte.
inline Utf8Error decodeUtf8(std::string_view text, size_t pos, size_t &length,
                            uint32_t &codePoint, size_t &errorOffset) {
  auto at = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = at(pos);
  errorOffset = pos;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
    codePoint = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    codePoint = lead & 0x0f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    codePoint = lead & 0x07;
  } else {
    return Utf8Error::BadLead;
  }
  if (text.size() - pos < length)
    return Utf8Error::Truncated;
  for (size_t i = 1; i < length; ++i) {
    if ((at(pos + i) & 0xc0) != 0x80) {
      errorOffset = pos + i;
      return Utf8Error::BadContinuation;
    }
    codePoint = (codePoint << 6) | (at(pos + i) & 0x3f);
  }
  if ((length == 3 && codePoint < 0x800) ||
      (length == 4 && codePoint < 0x10000))
    return Utf8Error::Overlong;
  if ((codePoint >= 0xd800 && codePoint <= 0xdfff) || codePoint > 0x10ffff)
    return Utf8Error::BadCodePoint;
  return Utf8Error::None;
}

} // namespace moe::runtime::detail

#endif // MOE_RUNTIME_UTF8_H
