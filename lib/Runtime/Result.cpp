//===- Result.cpp - Value-or-error results of the runtime -----------------===//
//
// printable() is what keeps hostile names from reaching a terminal: besides
// the C0 controls and DEL it escapes bytes that are not well-formed UTF-8,
// the C1 controls (U+0080..U+009F: 8-bit CSI and friends), and the code
// points that reorder or break a displayed line (bidirectional overrides and
// isolates, U+2028/U+2029).
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Result.h"

#include "Utf8.h"

#include <cstdint>
#include <cstdio>

namespace {

void appendEscapedByte(std::string &out, unsigned char byte) {
  char escaped[8];
  std::snprintf(escaped, sizeof(escaped), "\\x%02x", byte);
  out += escaped;
}

/// Code points that change how a line is laid out on a terminal.
bool isLayoutControl(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

} // namespace

std::string moe::runtime::printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    auto byte = static_cast<unsigned char>(text[pos]);
    if (byte < 0x80) {
      if (byte >= 0x20 && byte != 0x7f)
        out += static_cast<char>(byte);
      else
        appendEscapedByte(out, byte);
      ++pos;
      continue;
    }
    uint32_t cp = 0;
    size_t length = 0, errorOffset = 0;
    if (detail::decodeUtf8(text, pos, length, cp, errorOffset) !=
        detail::Utf8Error::None)
      length = 0;
    if (length == 0 || isLayoutControl(cp)) {
      // Escape every byte of a layout control, one byte of malformed input.
      size_t count = length == 0 ? 1 : length;
      for (size_t i = 0; i < count; ++i)
        appendEscapedByte(out, static_cast<unsigned char>(text[pos + i]));
      pos += count;
      continue;
    }
    out.append(text.data() + pos, length);
    pos += length;
  }
  return out;
}

bool moe::runtime::isPrintable(std::string_view text) {
  return printable(text) == text;
}
