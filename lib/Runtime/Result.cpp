//===- Result.cpp - Value-or-error results of the runtime -----------------===//

#include "moe/Runtime/Result.h"

#include <cstdio>

std::string moe::runtime::printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      out += c;
      continue;
    }
    char escaped[8];
    std::snprintf(escaped, sizeof(escaped), "\\x%02x", byte);
    out += escaped;
  }
  return out;
}
