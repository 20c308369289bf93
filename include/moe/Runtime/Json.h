//===- Json.h - A small strict JSON parser ----------------------*- C++ -*-===//
//
// Parses RFC 8259 JSON into a JsonValue tree for the checkpoint headers and
// index files. Strict: one value, no comments, no trailing commas, no
// duplicate object keys, valid UTF-8, no lone surrogates, bounded nesting.
// Integers that fit int64 stay integers; other numbers become doubles. The
// runtime does not link LLVM, so llvm::json is not an option here.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_JSON_H
#define MOE_RUNTIME_JSON_H

#include "moe/Runtime/Result.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe::runtime {

/// One JSON value: null, a boolean, a number, a string, an array or an object.
class JsonValue {
public:
  /// The kinds of JSON values; numbers are split into Int and Double.
  enum class Kind { Null, Bool, Int, Double, String, Array, Object };
  /// Object members in document order.
  using Members = std::vector<std::pair<std::string, JsonValue>>;

  /// Creates null.
  JsonValue() = default;
  /// Creates a boolean.
  static JsonValue makeBool(bool b);
  /// Creates an integer.
  static JsonValue makeInt(int64_t i);
  /// Creates a double.
  static JsonValue makeDouble(double d);
  /// Creates a string.
  static JsonValue makeString(std::string s);
  /// Creates an array.
  static JsonValue makeArray(std::vector<JsonValue> elements);
  /// Creates an object.
  static JsonValue makeObject(Members members);

  /// The kind of this value.
  Kind kind() const { return valueKind; }
  /// True for null.
  bool isNull() const { return valueKind == Kind::Null; }
  /// True for true and false.
  bool isBool() const { return valueKind == Kind::Bool; }
  /// True for numbers that were written as integers and fit int64.
  bool isInt() const { return valueKind == Kind::Int; }
  /// True for any number.
  bool isNumber() const {
    return valueKind == Kind::Int || valueKind == Kind::Double;
  }
  /// True for strings.
  bool isString() const { return valueKind == Kind::String; }
  /// True for arrays.
  bool isArray() const { return valueKind == Kind::Array; }
  /// True for objects.
  bool isObject() const { return valueKind == Kind::Object; }

  /// The boolean; only valid for Bool.
  bool getBool() const { return boolValue; }
  /// The integer; only valid for Int.
  int64_t getInt() const { return intValue; }
  /// The number as a double; valid for Int and Double.
  double getNumber() const;
  /// The string; only valid for String.
  const std::string &getString() const { return stringValue; }
  /// The elements; only valid for Array.
  const std::vector<JsonValue> &getArray() const { return arrayValue; }
  /// The members in document order; only valid for Object.
  const Members &getObject() const { return objectValue; }
  /// The member named `key` of an object, or null when absent or not an object.
  const JsonValue *find(std::string_view key) const;

private:
  Kind valueKind = Kind::Null;
  bool boolValue = false;
  int64_t intValue = 0;
  double doubleValue = 0.0;
  std::string stringValue;
  std::vector<JsonValue> arrayValue;
  Members objectValue;
};

/// The default bound on the nesting of arrays and objects.
constexpr unsigned kDefaultJsonMaxDepth = 64;

/// Parses `text` as exactly one JSON value surrounded by optional whitespace.
/// Errors read "invalid JSON at byte N: <problem>", N being the offset in
/// `text` plus `baseOffset` (the position of `text` in its file).
Result<JsonValue> parseJson(std::string_view text, size_t baseOffset = 0,
                            unsigned maxDepth = kDefaultJsonMaxDepth);

/// Escapes `text` as the contents of a JSON string: '"' and '\\' with a
/// backslash, control characters as \u00XX; other bytes are kept.
std::string jsonEscape(std::string_view text);

/// The name of a JSON kind as used in error messages ("an object", ...).
const char *jsonKindName(JsonValue::Kind kind);

} // namespace moe::runtime

#endif // MOE_RUNTIME_JSON_H
