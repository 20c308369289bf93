//===- Npy.cpp - Reading and writing .npy arrays --------------------------===//
//
// The header is a Python dict literal; only the subset numpy writes is
// accepted: quoted keys, a quoted descr, True/False and a tuple of integers.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Npy.h"

#include "moe/Runtime/Allocation.h"
#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/DType.h"
#include "moe/Runtime/MappedFile.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

using namespace moe::runtime;

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
/// numpy aligns the start of the data to this many bytes.
constexpr size_t kHeaderAlignment = 64;

/// Formats a shape as a Python tuple: "()", "(5,)", "(2, 3)".
std::string formatTuple(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1)
    s += ",";
  return s + ")";
}

/// The byte size of `shape` with `itemSize`-byte elements, or false when
/// the shape is not representable (CheckedArithmetic.h).
bool byteSize(const std::vector<int64_t> &shape, uint64_t itemSize,
              uint64_t &out) {
  std::optional<int64_t> bytes = checkedByteSize(shape, itemSize);
  if (!bytes)
    return false;
  out = static_cast<uint64_t>(*bytes);
  return true;
}

/// One value of the header dict.
struct HeaderValue {
  enum class Kind { String, Bool, Tuple } kind = Kind::String;
  std::string text;
  bool flag = false;
  std::vector<int64_t> tuple;
};

/// Parses the header dict literal; problems are reported in `error`.
class HeaderParser {
public:
  explicit HeaderParser(std::string_view text) : text(text) {}

  /// Parses the dict into its three fields.
  bool parse(std::string &descr, bool &fortranOrder,
             std::vector<int64_t> &shape) {
    skipSpace();
    if (!expect('{'))
      return false;
    bool seenDescr = false, seenOrder = false, seenShape = false;
    while (true) {
      skipSpace();
      if (peekIs('}')) {
        ++pos;
        break;
      }
      std::string key;
      if (!parseString(key))
        return false;
      skipSpace();
      if (!expect(':'))
        return false;
      skipSpace();
      HeaderValue value;
      if (!parseValue(value))
        return false;
      if (key == "descr") {
        if (seenDescr)
          return fail("duplicate key 'descr'");
        if (value.kind != HeaderValue::Kind::String)
          return fail("'descr' is not a string");
        seenDescr = true;
        descr = value.text;
      } else if (key == "fortran_order") {
        if (seenOrder)
          return fail("duplicate key 'fortran_order'");
        if (value.kind != HeaderValue::Kind::Bool)
          return fail("'fortran_order' is not True or False");
        seenOrder = true;
        fortranOrder = value.flag;
      } else if (key == "shape") {
        if (seenShape)
          return fail("duplicate key 'shape'");
        if (value.kind != HeaderValue::Kind::Tuple)
          return fail("'shape' is not a tuple of integers");
        seenShape = true;
        shape = value.tuple;
      } else {
        return fail("unexpected key '" + printable(key) + "'");
      }
      skipSpace();
      if (peekIs(',')) {
        ++pos;
        continue;
      }
      if (!expect('}'))
        return false;
      break;
    }
    skipSpace();
    if (pos != text.size())
      return fail("unexpected characters after the dict");
    if (!seenDescr)
      return fail("missing key 'descr'");
    if (!seenOrder)
      return fail("missing key 'fortran_order'");
    if (!seenShape)
      return fail("missing key 'shape'");
    return true;
  }

  /// The first problem found.
  const std::string &getError() const { return error; }

private:
  bool fail(const std::string &problem) {
    if (error.empty())
      error = problem;
    return false;
  }

  bool peekIs(char c) const { return pos < text.size() && text[pos] == c; }

  void skipSpace() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' ||
                                 text[pos] == '\n' || text[pos] == '\r'))
      ++pos;
  }

  bool expect(char c) {
    if (!peekIs(c))
      return fail(std::string("expected '") + c + "' at byte " +
                  std::to_string(pos) + " of the header");
    ++pos;
    return true;
  }

  bool parseString(std::string &out) {
    if (!peekIs('\'') && !peekIs('"'))
      return fail("expected a quoted string at byte " + std::to_string(pos) +
                  " of the header");
    char quote = text[pos++];
    size_t start = pos;
    while (pos < text.size() && text[pos] != quote) {
      if (text[pos] == '\\' || text[pos] == '\n')
        return fail("unsupported character in a header string");
      ++pos;
    }
    if (pos == text.size())
      return fail("unterminated string in the header");
    out.assign(text.substr(start, pos - start));
    ++pos;
    return true;
  }

  bool parseValue(HeaderValue &value) {
    if (peekIs('\'') || peekIs('"')) {
      value.kind = HeaderValue::Kind::String;
      return parseString(value.text);
    }
    if (text.substr(pos, 4) == "True") {
      pos += 4;
      value.kind = HeaderValue::Kind::Bool;
      value.flag = true;
      return true;
    }
    if (text.substr(pos, 5) == "False") {
      pos += 5;
      value.kind = HeaderValue::Kind::Bool;
      value.flag = false;
      return true;
    }
    if (peekIs('('))
      return parseTuple(value);
    return fail("unsupported value at byte " + std::to_string(pos) +
                " of the header");
  }

  bool parseTuple(HeaderValue &value) {
    value.kind = HeaderValue::Kind::Tuple;
    ++pos; // '('
    bool trailingComma = false;
    while (true) {
      skipSpace();
      if (peekIs(')')) {
        ++pos;
        break;
      }
      if (pos >= text.size() || text[pos] < '0' || text[pos] > '9')
        return fail("'shape' is not a tuple of non-negative integers");
      int64_t d = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        int digit = text[pos] - '0';
        if (d > (INT64_MAX - digit) / 10)
          return fail("'shape' has a dimension too large");
        d = d * 10 + digit;
        ++pos;
      }
      if (peekIs('L')) // Written by Python 2.
        ++pos;
      value.tuple.push_back(d);
      skipSpace();
      trailingComma = false;
      if (peekIs(',')) {
        ++pos;
        trailingComma = true;
        continue;
      }
      if (!expect(')'))
        return false;
      break;
    }
    if (value.tuple.size() == 1 && !trailingComma)
      return fail("'shape' is a parenthesized integer, not a tuple");
    return true;
  }

  std::string_view text;
  size_t pos = 0;
  std::string error;
};

} // namespace

Result<NpyArray> moe::runtime::readNpy(const std::string &path) {
  auto fail = [&](const std::string &problem) {
    return Result<NpyArray>::failure(printable(path) + ": " + problem);
  };
  Result<MappedFile> mapped = MappedFile::open(path);
  if (!mapped)
    return mapped.status();
  const uint8_t *bytes = mapped->data();
  size_t size = mapped->size();
  if (size < kMagicSize + 4)
    return fail("file is " + std::to_string(size) +
                " bytes, too short for a .npy header");
  if (std::memcmp(bytes, kMagic, kMagicSize) != 0)
    return fail("not a .npy file (bad magic)");
  unsigned major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return fail("unsupported .npy version " + std::to_string(major) + "." +
                std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
  size_t preamble = major == 1 ? 10 : 12;
  if (size < preamble)
    return fail("file is " + std::to_string(size) +
                " bytes, too short for a .npy header");
  uint64_t headerSize = bytes[8] | (uint64_t(bytes[9]) << 8);
  if (major != 1)
    headerSize |= (uint64_t(bytes[10]) << 16) | (uint64_t(bytes[11]) << 24);
  if (headerSize > size - preamble)
    return fail("header length " + std::to_string(headerSize) +
                " exceeds the " + std::to_string(size - preamble) +
                " bytes after the preamble");

  std::string descr;
  bool fortranOrder = false;
  std::vector<int64_t> shape;
  HeaderParser parser(std::string_view(
      reinterpret_cast<const char *>(bytes + preamble), headerSize));
  if (!parser.parse(descr, fortranOrder, shape))
    return fail("header: " + parser.getError());
  if (fortranOrder)
    return fail("fortran_order is True; only C-order arrays are supported");
  DType dtype;
  if (descr == "<f4")
    dtype = DType::F32;
  else if (descr == "<f2")
    dtype = DType::F16;
  else if (descr == "<f8")
    dtype = DType::F64;
  else
    return fail("unsupported dtype '" + printable(descr) +
                "' (expected '<f4', '<f2' or '<f8')");

  // The array is returned as float32: the shape must be representable at 4
  // bytes an element, not only at the file's (2 for '<f2').
  uint64_t numBytes, f32Bytes;
  if (!byteSize(shape, dtypeSize(dtype), numBytes) ||
      !byteSize(shape, sizeof(float), f32Bytes))
    return fail("shape " + formatTuple(shape) + " has too many elements");
  uint64_t dataSize = size - preamble - headerSize;
  if (dataSize != numBytes)
    return fail("data is " + std::to_string(dataSize) + " bytes but shape " +
                formatTuple(shape) + " of '" + descr + "' needs " +
                std::to_string(numBytes) + " bytes");

  size_t count = numBytes / dtypeSize(dtype);
  Status fits = checkAllocation(uint64_t(count) * sizeof(float),
                                printable(path) + ": the array as float32");
  if (!fits)
    return fits;
  NpyArray array;
  array.shape = std::move(shape);
  array.descr = descr;
  array.data.resize(count);
  Status status = convertToF32(dtype, bytes + preamble + headerSize,
                               array.data.size(), array.data.data());
  if (!status)
    return fail(status.error());
  return array;
}

Status moe::runtime::writeNpy(const std::string &path,
                              const std::vector<int64_t> &shape,
                              const float *data) {
  return writeNpy(path, shape, NpyElement::F32, data);
}

Status moe::runtime::writeNpy(const std::string &path,
                              const std::vector<int64_t> &shape,
                              NpyElement element, const void *data) {
  for (int64_t d : shape)
    if (d < 0)
      return Status::failure(printable(path) + ": cannot write shape " +
                             formatTuple(shape) + " with a negative dimension");
  const char *descr = "<f4";
  size_t itemSize = 4;
  switch (element) {
  case NpyElement::F32:
    break;
  case NpyElement::I32:
    descr = "<i4";
    break;
  case NpyElement::I64:
    descr = "<i8";
    itemSize = 8;
    break;
  }
  uint64_t numBytes;
  if (!byteSize(shape, itemSize, numBytes))
    return Status::failure(printable(path) + ": cannot write shape " + formatTuple(shape) +
                           ": too many elements");

  std::string dict = std::string("{'descr': '") + descr +
                     "', 'fortran_order': False, 'shape': " +
                     formatTuple(shape) + ", }";
  // Pad with spaces and a final newline so that the data starts aligned.
  unsigned major = 1;
  size_t preamble = 10;
  size_t unpadded = preamble + dict.size() + 1;
  size_t headerSize =
      dict.size() + 1 +
      (kHeaderAlignment - unpadded % kHeaderAlignment) % kHeaderAlignment;
  if (headerSize > 0xffff) {
    major = 2;
    preamble = 12;
    unpadded = preamble + dict.size() + 1;
    headerSize =
        dict.size() + 1 +
        (kHeaderAlignment - unpadded % kHeaderAlignment) % kHeaderAlignment;
  }
  std::string header(kMagic, kMagicSize);
  header += static_cast<char>(major);
  header += '\0';
  for (size_t i = 0; i < preamble - 8; ++i)
    header += static_cast<char>((headerSize >> (8 * i)) & 0xff);
  header += dict;
  header.append(headerSize - dict.size() - 1, ' ');
  header += '\n';

  std::FILE *file = std::fopen(path.c_str(), "wb");
  if (!file)
    return Status::failure(
        printable(path) + ": cannot open for writing: " +
        std::strerror(errno));
  bool ok = std::fwrite(header.data(), 1, header.size(), file) == header.size();
  if (ok && numBytes != 0)
    ok = std::fwrite(data, 1, numBytes, file) == numBytes;
  int writeError = ok ? 0 : errno;
  if (std::fclose(file) != 0 && ok) {
    ok = false;
    writeError = errno;
  }
  if (!ok)
    return Status::failure(printable(path) + ": write failed: " + std::strerror(writeError));
  return Status::success();
}

Status moe::runtime::writeNpy(const std::string &path, const NpyArray &array) {
  uint64_t numBytes;
  if (!byteSize(array.shape, sizeof(float), numBytes) ||
      numBytes / sizeof(float) != array.data.size())
    return Status::failure(printable(path) + ": cannot write shape " +
                           formatTuple(array.shape) + " from " +
                           std::to_string(array.data.size()) + " elements");
  return writeNpy(path, array.shape, array.data.data());
}
