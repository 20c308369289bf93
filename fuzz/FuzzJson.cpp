//===- FuzzJson.cpp - Fuzzing the runtime's JSON parser -------------------===//
//
// Invariants: an error is one printable line "invalid JSON at byte N: ..."
// with N inside the input; a parsed value written back as JSON parses to
// the same tree (kinds, integers, doubles bit for bit, strings, member
// order).
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "moe/Runtime/Json.h"

#include <cinttypes>
#include <cstring>

using namespace moe::runtime;
using namespace moe::fuzz;

namespace {

void writeString(const std::string &s, std::string &out) {
  out += '"' + jsonEscape(s) + '"';
}

void write(const JsonValue &value, std::string &out) {
  switch (value.kind()) {
  case JsonValue::Kind::Null:
    out += "null";
    return;
  case JsonValue::Kind::Bool:
    out += value.getBool() ? "true" : "false";
    return;
  case JsonValue::Kind::Int:
    out += std::to_string(value.getInt());
    return;
  case JsonValue::Kind::Double: {
    // An exponent keeps it a double when read back.
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%.17e", value.getNumber());
    out += buffer;
    return;
  }
  case JsonValue::Kind::String:
    writeString(value.getString(), out);
    return;
  case JsonValue::Kind::Array:
    out += '[';
    for (size_t i = 0; i < value.getArray().size(); ++i) {
      if (i)
        out += ',';
      write(value.getArray()[i], out);
    }
    out += ']';
    return;
  case JsonValue::Kind::Object:
    out += '{';
    for (size_t i = 0; i < value.getObject().size(); ++i) {
      if (i)
        out += ',';
      writeString(value.getObject()[i].first, out);
      out += ':';
      write(value.getObject()[i].second, out);
    }
    out += '}';
    return;
  }
}

bool equal(const JsonValue &a, const JsonValue &b) {
  if (a.kind() != b.kind())
    return false;
  switch (a.kind()) {
  case JsonValue::Kind::Null:
    return true;
  case JsonValue::Kind::Bool:
    return a.getBool() == b.getBool();
  case JsonValue::Kind::Int:
    return a.getInt() == b.getInt();
  case JsonValue::Kind::Double: {
    double x = a.getNumber(), y = b.getNumber();
    return std::memcmp(&x, &y, sizeof(x)) == 0;
  }
  case JsonValue::Kind::String:
    return a.getString() == b.getString();
  case JsonValue::Kind::Array:
    if (a.getArray().size() != b.getArray().size())
      return false;
    for (size_t i = 0; i < a.getArray().size(); ++i)
      if (!equal(a.getArray()[i], b.getArray()[i]))
        return false;
    return true;
  case JsonValue::Kind::Object:
    if (a.getObject().size() != b.getObject().size())
      return false;
    for (size_t i = 0; i < a.getObject().size(); ++i)
      if (a.getObject()[i].first != b.getObject()[i].first ||
          !equal(a.getObject()[i].second, b.getObject()[i].second))
        return false;
    return true;
  }
  return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  Result<JsonValue> value = parseJson(text);
  if (!value) {
    checkOneLine(value.error());
    unsigned long long offset = 0;
    FUZZ_CHECK(std::sscanf(value.error().c_str(), "invalid JSON at byte %llu:",
                           &offset) == 1,
               "unexpected error format: " + value.error());
    FUZZ_CHECK(offset <= size, "error offset past the input");
    return 0;
  }
  std::string written;
  write(*value, written);
  Result<JsonValue> again = parseJson(written);
  FUZZ_CHECK(again.ok(), "written JSON does not parse: " + again.error());
  FUZZ_CHECK(equal(*value, *again), "round trip changed the value");
  return 0;
}
