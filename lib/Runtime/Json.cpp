//===- Json.cpp - A small strict JSON parser ------------------------------===//
//
// Recursive descent over the input bytes; every error carries the byte offset
// at which the parser stopped.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Json.h"

#include "Utf8.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

using namespace moe::runtime;

JsonValue JsonValue::makeBool(bool b) {
  JsonValue v;
  v.valueKind = Kind::Bool;
  v.boolValue = b;
  return v;
}

JsonValue JsonValue::makeInt(int64_t i) {
  JsonValue v;
  v.valueKind = Kind::Int;
  v.intValue = i;
  return v;
}

JsonValue JsonValue::makeDouble(double d) {
  JsonValue v;
  v.valueKind = Kind::Double;
  v.doubleValue = d;
  return v;
}

JsonValue JsonValue::makeString(std::string s) {
  JsonValue v;
  v.valueKind = Kind::String;
  v.stringValue = std::move(s);
  return v;
}

JsonValue JsonValue::makeArray(std::vector<JsonValue> elements) {
  JsonValue v;
  v.valueKind = Kind::Array;
  v.arrayValue = std::move(elements);
  return v;
}

JsonValue JsonValue::makeObject(Members members) {
  JsonValue v;
  v.valueKind = Kind::Object;
  v.objectValue = std::move(members);
  return v;
}

double JsonValue::getNumber() const {
  return valueKind == Kind::Int ? static_cast<double>(intValue) : doubleValue;
}

const JsonValue *JsonValue::find(std::string_view key) const {
  if (valueKind != Kind::Object)
    return nullptr;
  for (const auto &member : objectValue)
    if (member.first == key)
      return &member.second;
  return nullptr;
}

const char *moe::runtime::jsonKindName(JsonValue::Kind kind) {
  switch (kind) {
  case JsonValue::Kind::Null:
    return "null";
  case JsonValue::Kind::Bool:
    return "a boolean";
  case JsonValue::Kind::Int:
    return "an integer";
  case JsonValue::Kind::Double:
    return "a number";
  case JsonValue::Kind::String:
    return "a string";
  case JsonValue::Kind::Array:
    return "an array";
  case JsonValue::Kind::Object:
    return "an object";
  }
  return "a value";
}

namespace {

/// The parser state: the text, the position and the first error.
class Parser {
public:
  Parser(std::string_view text, size_t baseOffset, unsigned maxDepth)
      : text(text), baseOffset(baseOffset), maxDepth(maxDepth) {}

  /// Parses the whole text as one value.
  bool parseDocument(JsonValue &out) {
    skipWhitespace();
    if (!parseValue(out, 0))
      return false;
    skipWhitespace();
    if (pos != text.size())
      return fail("unexpected characters after the JSON value");
    return true;
  }

  /// The error message of the first failure.
  std::string takeError() { return std::move(error); }

private:
  bool fail(const std::string &problem) { return failAt(pos, problem); }

  bool failAt(size_t offset, const std::string &problem) {
    if (error.empty())
      error = "invalid JSON at byte " + std::to_string(baseOffset + offset) +
              ": " + problem;
    return false;
  }

  bool atEnd() const { return pos >= text.size(); }
  unsigned char peek() const { return static_cast<unsigned char>(text[pos]); }

  void skipWhitespace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r'))
      ++pos;
  }

  static std::string describe(unsigned char c) {
    if (c >= 0x20 && c < 0x7f) {
      std::string s = "'";
      s += static_cast<char>(c);
      return s + "'";
    }
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "byte 0x%02x", c);
    return buffer;
  }

  bool parseValue(JsonValue &out, unsigned depth) {
    if (atEnd())
      return fail("unexpected end of input, expected a value");
    unsigned char c = peek();
    switch (c) {
    case '{':
      return parseObject(out, depth + 1);
    case '[':
      return parseArray(out, depth + 1);
    case '"': {
      std::string s;
      if (!parseString(s))
        return false;
      out = JsonValue::makeString(std::move(s));
      return true;
    }
    case 't':
      return parseLiteral("true", JsonValue::makeBool(true), out);
    case 'f':
      return parseLiteral("false", JsonValue::makeBool(false), out);
    case 'n':
      return parseLiteral("null", JsonValue(), out);
    default:
      if (c == '-' || (c >= '0' && c <= '9'))
        return parseNumber(out);
      return fail("unexpected " + describe(c) + ", expected a value");
    }
  }

  bool parseLiteral(std::string_view word, JsonValue value, JsonValue &out) {
    if (text.substr(pos, word.size()) != word)
      return fail("invalid literal, expected '" + std::string(word) + "'");
    pos += word.size();
    out = std::move(value);
    return true;
  }

  /// Parses the elements of a `{...}` or `[...]` after its opening bracket:
  /// zero or more `parseElement()` calls separated by ',' up to `close`.
  template <typename ParseElement>
  bool parseSequence(char close, ParseElement parseElement) {
    std::string expected = std::string("',' or '") + close + "'";
    skipWhitespace();
    if (!atEnd() && peek() == close) {
      ++pos;
      return true;
    }
    while (true) {
      skipWhitespace();
      if (!parseElement())
        return false;
      skipWhitespace();
      if (atEnd())
        return fail("unexpected end of input, expected " + expected);
      if (peek() == ',') {
        ++pos;
        continue;
      }
      if (peek() == close) {
        ++pos;
        return true;
      }
      return fail("unexpected " + describe(peek()) + ", expected " + expected);
    }
  }

  bool checkDepth(unsigned depth) {
    if (depth > maxDepth)
      return fail("nesting deeper than " + std::to_string(maxDepth) +
                  " levels");
    return true;
  }

  bool parseObject(JsonValue &out, unsigned depth) {
    if (!checkDepth(depth))
      return false;
    ++pos; // '{'
    JsonValue::Members members;
    std::vector<size_t> keyOffsets;
    auto parseMember = [&]() {
      if (atEnd())
        return fail("unexpected end of input, expected an object key");
      if (peek() != '"')
        return fail("unexpected " + describe(peek()) +
                    ", expected a string object key");
      keyOffsets.push_back(pos);
      std::string key;
      if (!parseString(key))
        return false;
      skipWhitespace();
      if (atEnd() || peek() != ':')
        return fail("expected ':' after an object key");
      ++pos;
      skipWhitespace();
      JsonValue value;
      if (!parseValue(value, depth))
        return false;
      members.emplace_back(std::move(key), std::move(value));
      return true;
    };
    if (!parseSequence('}', parseMember))
      return false;
    // Reject duplicate keys, reporting the later occurrence.
    std::vector<size_t> order(members.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (members[a].first != members[b].first)
        return members[a].first < members[b].first;
      return a < b;
    });
    for (size_t i = 1; i < order.size(); ++i)
      if (members[order[i]].first == members[order[i - 1]].first)
        return failAt(keyOffsets[order[i]],
                      "duplicate object key \"" +
                          printable(members[order[i]].first) + "\"");
    out = JsonValue::makeObject(std::move(members));
    return true;
  }

  bool parseArray(JsonValue &out, unsigned depth) {
    if (!checkDepth(depth))
      return false;
    ++pos; // '['
    std::vector<JsonValue> elements;
    auto parseElement = [&]() {
      JsonValue value;
      if (!parseValue(value, depth))
        return false;
      elements.push_back(std::move(value));
      return true;
    };
    if (!parseSequence(']', parseElement))
      return false;
    out = JsonValue::makeArray(std::move(elements));
    return true;
  }

  static void appendUtf8(std::string &s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  /// Reads the four hex digits of a \u escape at `pos`.
  bool parseHex4(uint32_t &out) {
    if (text.size() - pos < 4)
      return fail("unexpected end of input in a \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      unsigned char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        digit = c - 'A' + 10;
      else
        return fail("invalid hex digit " + describe(c) + " in a \\u escape");
      out = out * 16 + digit;
      ++pos;
    }
    return true;
  }

  /// Validates and copies one UTF-8 encoded code point starting at `pos`.
  bool copyUtf8(std::string &s) {
    size_t length = 0, errorOffset = 0;
    uint32_t cp = 0;
    switch (detail::decodeUtf8(text, pos, length, cp, errorOffset)) {
    case detail::Utf8Error::None:
      s.append(text.data() + pos, length);
      pos += length;
      return true;
    case detail::Utf8Error::BadLead:
      return fail("invalid UTF-8 lead byte in a string");
    case detail::Utf8Error::Truncated:
      return fail("truncated UTF-8 sequence in a string");
    case detail::Utf8Error::BadContinuation:
      return failAt(errorOffset,
                    "invalid UTF-8 continuation byte in a string");
    case detail::Utf8Error::Overlong:
      return fail("overlong UTF-8 sequence in a string");
    case detail::Utf8Error::BadCodePoint:
      return fail("invalid UTF-8 code point in a string");
    }
    return fail("invalid UTF-8 in a string");
  }

  bool parseString(std::string &out) {
    ++pos; // opening quote
    while (true) {
      if (atEnd())
        return fail("unexpected end of input inside a string");
      unsigned char c = peek();
      if (c == '"') {
        ++pos;
        return true;
      }
      if (c < 0x20)
        return fail("unescaped control character " + describe(c) +
                    " in a string");
      if (c >= 0x80) {
        if (!copyUtf8(out))
          return false;
        continue;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos;
        continue;
      }
      size_t escape = pos;
      ++pos;
      if (atEnd())
        return fail("unexpected end of input in an escape sequence");
      c = peek();
      ++pos;
      switch (c) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp;
        if (!parseHex4(cp))
          return false;
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return failAt(escape, "unpaired low surrogate in a \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (text.substr(pos, 2) != "\\u")
            return failAt(escape, "unpaired high surrogate in a \\u escape");
          size_t second = pos;
          pos += 2;
          uint32_t low;
          if (!parseHex4(low))
            return false;
          if (low < 0xdc00 || low > 0xdfff)
            return failAt(second,
                          "expected a low surrogate after a high surrogate");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        // The byte is quoted through describe(): a raw newline or ESC would
        // break the one-line message or reach the terminal.
        return failAt(escape, "invalid escape sequence: '\\' followed by " +
                                  describe(c));
      }
    }
  }

  /// The decimal exponent of a well-formed JSON number written as 0.dddd x
  /// 10^m with a non-zero first digit d: 1 for 1.5, 3 for 100, -2 for
  /// 0.001, 0 for zero. |value| >= 1 exactly when m > 0. Saturates far
  /// outside the range of a double.
  static int64_t decimalMagnitude(std::string_view number) {
    constexpr int64_t kSaturation = int64_t(1) << 40;
    if (number[0] == '-')
      number.remove_prefix(1);
    size_t mantissaEnd = std::min(number.find_first_of("eE"), number.size());
    std::string_view mantissa = number.substr(0, mantissaEnd);
    size_t point = std::min(mantissa.find('.'), mantissa.size());
    std::string_view integer = mantissa.substr(0, point);
    std::string_view fraction =
        point < mantissa.size() ? mantissa.substr(point + 1) : "";
    int64_t magnitude;
    // JSON integer parts have no leading zero unless they are "0".
    if (integer != "0") {
      magnitude = static_cast<int64_t>(integer.size());
    } else {
      size_t firstDigit = fraction.find_first_not_of('0');
      if (firstDigit == std::string_view::npos)
        return 0;
      magnitude = -static_cast<int64_t>(firstDigit);
    }
    int64_t exponent = 0;
    if (mantissaEnd < number.size()) {
      size_t k = mantissaEnd + 1;
      bool negative = false;
      if (number[k] == '+' || number[k] == '-')
        negative = number[k++] == '-';
      for (; k < number.size(); ++k)
        exponent = std::min(kSaturation, exponent * 10 + (number[k] - '0'));
      if (negative)
        exponent = -exponent;
    }
    return std::clamp(magnitude + exponent, -2 * kSaturation, 2 * kSaturation);
  }

  bool parseNumber(JsonValue &out) {
    size_t start = pos;
    auto isDigit = [&]() { return !atEnd() && peek() >= '0' && peek() <= '9'; };
    if (peek() == '-')
      ++pos;
    if (!isDigit())
      return fail("expected a digit in a number");
    if (peek() == '0') {
      ++pos;
      if (isDigit())
        return failAt(start, "leading zeros are not allowed in a number");
    } else {
      while (isDigit())
        ++pos;
    }
    bool integral = true;
    if (!atEnd() && peek() == '.') {
      integral = false;
      ++pos;
      if (!isDigit())
        return fail("expected a digit after the decimal point");
      while (isDigit())
        ++pos;
    }
    if (!atEnd() && (peek() == 'e' || peek() == 'E')) {
      integral = false;
      ++pos;
      if (!atEnd() && (peek() == '+' || peek() == '-'))
        ++pos;
      if (!isDigit())
        return fail("expected a digit in the exponent");
      while (isDigit())
        ++pos;
    }
    const char *first = text.data() + start;
    const char *last = text.data() + pos;
    if (integral) {
      int64_t i;
      auto [ptr, ec] = std::from_chars(first, last, i);
      if (ec == std::errc() && ptr == last) {
        out = JsonValue::makeInt(i);
        return true;
      }
    }
    double d;
    auto [ptr, ec] = std::from_chars(first, last, d);
    if (ec == std::errc::result_out_of_range) {
      // Tiny magnitudes underflow to zero; huge ones are an error. The sign
      // of the exponent alone does not tell: 1000...0e-10 is huge.
      std::string_view number(first, last - first);
      if (decimalMagnitude(number) > 0)
        return failAt(start, "number out of the range of a double");
      out = JsonValue::makeDouble(number[0] == '-' ? -0.0 : 0.0);
      return true;
    }
    if (ec != std::errc() || ptr != last)
      return failAt(start, "malformed number");
    out = JsonValue::makeDouble(d);
    return true;
  }

  std::string_view text;
  size_t baseOffset;
  unsigned maxDepth;
  size_t pos = 0;
  std::string error;
};

} // namespace

std::string moe::runtime::jsonEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

Result<JsonValue> moe::runtime::parseJson(std::string_view text,
                                          size_t baseOffset,
                                          unsigned maxDepth) {
  Parser parser(text, baseOffset, maxDepth);
  JsonValue value;
  if (!parser.parseDocument(value))
    return Result<JsonValue>::failure(parser.takeError());
  return value;
}
