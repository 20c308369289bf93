//===- Safetensors.cpp - Validated safetensors checkpoints ----------------===//
//
// Header validation follows the safetensors format: an 8-byte little-endian
// header length N, N bytes of JSON, then the data buffer that every tensor's
// data_offsets are relative to.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Safetensors.h"

#include "moe/Runtime/Allocation.h"
#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/Json.h"

#include <algorithm>
#include <map>
#include <optional>

using namespace moe::runtime;

int64_t TensorView::numElements() const {
  // Checkpoint validation only hands out representable shapes.
  return checkedNumElements(shape).value_or(0);
}

std::string moe::runtime::formatShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Result<std::vector<float>> moe::runtime::readAsF32(const TensorView &tensor) {
  std::string where = printable(tensor.file) + ": tensor '" +
                      printable(tensor.name) + "'";
  if (!isConvertibleToF32(tensor.dtype))
    return Result<std::vector<float>>::failure(
        where + " has dtype " + dtypeName(tensor.dtype) +
        ", which does not convert to f32");
  size_t count = tensor.numBytes / dtypeSize(tensor.dtype);
  Status fits = checkAllocation(uint64_t(count) * sizeof(float),
                                where + " decoded to f32");
  if (!fits)
    return fits;
  std::vector<float> values(count);
  Status status =
      convertToF32(tensor.dtype, tensor.data, values.size(), values.data());
  if (!status)
    return Result<std::vector<float>>::failure(printable(tensor.file) + ": " +
                                               status.error());
  return values;
}

namespace {

/// Finds `name` in a vector of tensors sorted by name.
const TensorView *findSorted(const std::vector<TensorView> &tensors,
                             std::string_view name) {
  auto it = std::lower_bound(
      tensors.begin(), tensors.end(), name,
      [](const TensorView &t, std::string_view n) { return t.name < n; });
  if (it == tensors.end() || it->name != name)
    return nullptr;
  return &*it;
}

void sortByName(std::vector<TensorView> &tensors) {
  std::sort(
      tensors.begin(), tensors.end(),
      [](const TensorView &a, const TensorView &b) { return a.name < b.name; });
}

/// Reads a non-negative JSON integer.
bool getNonNegative(const JsonValue &value, uint64_t &out) {
  if (!value.isInt() || value.getInt() < 0)
    return false;
  out = static_cast<uint64_t>(value.getInt());
  return true;
}

std::string describeValue(const JsonValue &value) {
  if (value.isInt())
    return std::to_string(value.getInt());
  return jsonKindName(value.kind());
}

/// A tensor entry before its bytes are located.
struct Entry {
  TensorView view;
  uint64_t begin = 0;
  uint64_t end = 0;
};

/// Validates one tensor entry of a header; `bufferSize` is the size of the
/// data buffer. Returns the problem, or an empty string.
std::string parseEntry(const std::string &name, const JsonValue &value,
                       uint64_t bufferSize, Entry &entry) {
  std::string where = "tensor '" + printable(name) + "': ";
  if (!value.isObject())
    return where + "entry is " + jsonKindName(value.kind()) +
           ", expected an object";
  for (const auto &member : value.getObject())
    if (member.first != "dtype" && member.first != "shape" &&
        member.first != "data_offsets")
      return where + "unexpected key \"" + printable(member.first) + "\"";

  const JsonValue *dtype = value.find("dtype");
  if (!dtype)
    return where + "missing \"dtype\"";
  if (!dtype->isString())
    return where + "dtype is " + jsonKindName(dtype->kind()) +
           ", expected a string";
  std::optional<DType> parsed = parseDType(dtype->getString());
  if (!parsed)
    return where + "unknown dtype '" + printable(dtype->getString()) +
           "' (expected one of " + supportedDTypeNames() + ")";

  const JsonValue *shape = value.find("shape");
  if (!shape)
    return where + "missing \"shape\"";
  if (!shape->isArray())
    return where + "shape is " + jsonKindName(shape->kind()) +
           ", expected an array";
  std::vector<int64_t> dims;
  const std::vector<JsonValue> &shapeElements = shape->getArray();
  for (size_t i = 0; i < shapeElements.size(); ++i) {
    uint64_t d;
    if (!getNonNegative(shapeElements[i], d))
      return where + "shape[" + std::to_string(i) + "] is " +
             describeValue(shapeElements[i]) +
             ", expected a non-negative integer";
    dims.push_back(static_cast<int64_t>(d));
  }
  // Even an empty tensor needs representable strides (CheckedArithmetic.h).
  std::optional<int64_t> byteSize = checkedByteSize(dims, dtypeSize(*parsed));
  if (!byteSize)
    return where + "shape " + formatShape(dims) + " has too many elements";
  uint64_t numBytes = static_cast<uint64_t>(*byteSize);

  const JsonValue *offsets = value.find("data_offsets");
  if (!offsets)
    return where + "missing \"data_offsets\"";
  uint64_t begin, end;
  if (!offsets->isArray() || offsets->getArray().size() != 2 ||
      !getNonNegative(offsets->getArray()[0], begin) ||
      !getNonNegative(offsets->getArray()[1], end))
    return where + "data_offsets must be [begin, end] with non-negative "
                   "integers";
  std::string range =
      "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
  if (begin > end)
    return where + "data_offsets " + range + " end before they begin";
  if (end > bufferSize)
    return where + "data_offsets " + range + " exceed the data buffer of " +
           std::to_string(bufferSize) + " bytes";
  if (end - begin != numBytes)
    return where + "data_offsets " + range + " hold " +
           std::to_string(end - begin) + " bytes but " + dtypeName(*parsed) +
           " " + formatShape(dims) + " needs " + std::to_string(numBytes) +
           " bytes";

  entry.view.name = name;
  entry.view.dtype = *parsed;
  entry.view.shape = std::move(dims);
  entry.view.numBytes = static_cast<size_t>(numBytes);
  entry.begin = begin;
  entry.end = end;
  return std::string();
}

/// Rejects tensors whose byte ranges intersect; empty tensors never do.
std::string checkOverlaps(const std::vector<Entry> &entries) {
  std::vector<const Entry *> order;
  for (const Entry &e : entries)
    if (e.begin != e.end)
      order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry *a, const Entry *b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const Entry *reach = nullptr; // The entry reaching furthest so far.
  for (const Entry *e : order) {
    if (reach && e->begin < reach->end) {
      auto range = [](const Entry *x) {
        return "[" + std::to_string(x->begin) + ", " + std::to_string(x->end) +
               ")";
      };
      return "tensors '" + printable(reach->view.name) + "' " + range(reach) +
             " and '" + printable(e->view.name) + "' " + range(e) +
             " overlap in the data buffer";
    }
    if (!reach || e->end > reach->end)
      reach = e;
  }
  return std::string();
}

/// Joins a directory and a relative path.
std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty())
    return name;
  if (dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

/// The directory part of `path` ("" for a bare file name).
std::string parentPath(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return std::string();
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

bool endsWith(const std::string &s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// True when a shard file name from an index stays inside the checkpoint
/// directory: relative, and no ".." component.
bool isContainedRelativePath(const std::string &name) {
  if (name.empty() || name[0] == '/')
    return false;
  // A NUL would end the name that open() sees early, after the ".." check
  // saw the whole string.
  if (name.find('\0') != std::string::npos)
    return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string::npos)
      slash = name.size();
    if (name.compare(start, slash - start, "..") == 0 && slash - start == 2)
      return false;
    start = slash + 1;
  }
  return true;
}

} // namespace

Result<SafetensorsFile> SafetensorsFile::open(const std::string &path) {
  Result<MappedFile> mapped = MappedFile::open(path);
  if (!mapped)
    return mapped.status();
  SafetensorsFile file(mapped.take());
  auto fail = [&](const std::string &problem) {
    return Result<SafetensorsFile>::failure(printable(path) + ": " + problem);
  };

  const uint8_t *bytes = file.mapping.data();
  uint64_t size = file.mapping.size();
  if (size < 8)
    return fail("file is " + std::to_string(size) +
                " bytes, too short for the 8-byte header length");
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | bytes[i];
  // Past the limit the "length" is most likely not one (a text file, say):
  // its value, the file's first 8 bytes, is not printed.
  if (headerSize > kMaxSafetensorsHeaderSize)
    return fail("header length (the first 8 bytes, not shown) exceeds the "
                "limit of " +
                std::to_string(kMaxSafetensorsHeaderSize) +
                " bytes; not a safetensors file?");
  if (headerSize > size - 8)
    return fail("header length " + std::to_string(headerSize) +
                " exceeds the " + std::to_string(size - 8) +
                " bytes after the 8-byte length");
  uint64_t bufferSize = size - 8 - headerSize;
  const uint8_t *buffer = bytes + 8 + headerSize;

  std::string_view headerText(reinterpret_cast<const char *>(bytes + 8),
                              static_cast<size_t>(headerSize));
  Result<JsonValue> header = parseJson(headerText, /*baseOffset=*/8);
  if (!header)
    return fail(header.error());
  if (!header->isObject())
    return fail(std::string("header is ") + jsonKindName(header->kind()) +
                ", expected a JSON object");

  std::vector<Entry> entries;
  for (const auto &member : header->getObject()) {
    if (member.first == "__metadata__") {
      if (!member.second.isObject())
        return fail(std::string("__metadata__ is ") +
                    jsonKindName(member.second.kind()) +
                    ", expected an object of strings");
      for (const auto &item : member.second.getObject()) {
        if (!item.second.isString())
          return fail("__metadata__ value '" + printable(item.first) + "' is " +
                      jsonKindName(item.second.kind()) + ", expected a string");
        file.metadataList.emplace_back(item.first, item.second.getString());
      }
      continue;
    }
    Entry entry;
    std::string problem =
        parseEntry(member.first, member.second, bufferSize, entry);
    if (!problem.empty())
      return fail(problem);
    entry.view.data = buffer + entry.begin;
    entry.view.file = path;
    entries.push_back(std::move(entry));
  }
  std::string overlap = checkOverlaps(entries);
  if (!overlap.empty())
    return fail(overlap);

  file.tensorList.reserve(entries.size());
  for (Entry &entry : entries)
    file.tensorList.push_back(std::move(entry.view));
  sortByName(file.tensorList);
  return file;
}

const TensorView *SafetensorsFile::find(std::string_view name) const {
  return findSorted(tensorList, name);
}

Result<Checkpoint> Checkpoint::open(const std::string &path) {
  PathKind kind = getPathKind(path);
  if (kind == PathKind::Directory) {
    std::string single = joinPath(path, kSingleFileName);
    std::string index = joinPath(path, kIndexFileName);
    if (getPathKind(single) == PathKind::Missing &&
        getPathKind(index) == PathKind::Missing)
      return Result<Checkpoint>::failure(printable(path) +
                                         ": directory holds neither " +
                                         kSingleFileName + " nor " +
                                         kIndexFileName);
    Result<Checkpoint> checkpoint = getPathKind(single) != PathKind::Missing
                                        ? openFile(single)
                                        : openIndex(index);
    if (checkpoint)
      checkpoint->rootPath = path;
    return checkpoint;
  }
  if (kind == PathKind::RegularFile && endsWith(path, ".json"))
    return openIndex(path);
  // Anything else goes to the mapping, which reports missing, unreadable and
  // irregular paths.
  return openFile(path);
}

Result<Checkpoint> Checkpoint::openFile(const std::string &path) {
  Result<SafetensorsFile> file = SafetensorsFile::open(path);
  if (!file)
    return file.status();
  Checkpoint checkpoint;
  checkpoint.rootPath = path;
  checkpoint.tensorList = file->tensors();
  checkpoint.fileList.push_back(file.take());
  return checkpoint;
}

Result<Checkpoint> Checkpoint::openIndex(const std::string &indexPath) {
  auto fail = [&](const std::string &problem) {
    return Result<Checkpoint>::failure(printable(indexPath) + ": " + problem);
  };
  Result<MappedFile> mapped = MappedFile::open(indexPath);
  if (!mapped)
    return mapped.status();
  if (mapped->size() > kMaxSafetensorsHeaderSize)
    return fail("index file of " + std::to_string(mapped->size()) +
                " bytes exceeds the limit of " +
                std::to_string(kMaxSafetensorsHeaderSize) + " bytes");
  Result<JsonValue> index = parseJson(std::string_view(
      reinterpret_cast<const char *>(mapped->data()), mapped->size()));
  if (!index)
    return fail(index.error());
  if (!index->isObject())
    return fail(std::string("index is ") + jsonKindName(index->kind()) +
                ", expected a JSON object");
  const JsonValue *weightMap = index->find("weight_map");
  if (!weightMap)
    return fail("missing \"weight_map\"");
  if (!weightMap->isObject())
    return fail(std::string("weight_map is ") +
                jsonKindName(weightMap->kind()) + ", expected an object");

  // Open each shard once, in order of first appearance.
  std::string dir = parentPath(indexPath);
  std::vector<std::string> shardNames;
  std::map<std::string, size_t> shardIds;
  std::vector<size_t> shardOfTensor;
  for (const auto &member : weightMap->getObject()) {
    if (!member.second.isString())
      return fail("weight_map entry '" + printable(member.first) + "' is " +
                  jsonKindName(member.second.kind()) +
                  ", expected a file name");
    const std::string &shard = member.second.getString();
    if (!isPrintable(shard))
      return fail("weight_map entry '" + printable(member.first) + "' names '" +
                  printable(shard) +
                  "', a file name with control characters or malformed "
                  "UTF-8");
    if (!isContainedRelativePath(shard))
      return fail("weight_map entry '" + printable(member.first) + "' names '" +
                  printable(shard) +
                  "', which is not a relative path inside the checkpoint");
    auto inserted = shardIds.emplace(shard, shardNames.size());
    if (inserted.second)
      shardNames.push_back(shard);
    shardOfTensor.push_back(inserted.first->second);
  }

  Checkpoint checkpoint;
  checkpoint.rootPath = indexPath;
  checkpoint.indexPath = indexPath;
  for (const std::string &shard : shardNames) {
    std::string shardPath = joinPath(dir, shard);
    if (getPathKind(shardPath) == PathKind::Missing)
      return fail("weight_map names shard '" + printable(shard) +
                  "', which does not exist");
    Result<SafetensorsFile> file = SafetensorsFile::open(shardPath);
    if (!file)
      return file.status();
    checkpoint.fileList.push_back(file.take());
  }

  size_t i = 0;
  for (const auto &member : weightMap->getObject()) {
    const SafetensorsFile &file = checkpoint.fileList[shardOfTensor[i++]];
    const TensorView *tensor = file.find(member.first);
    if (!tensor)
      return fail("weight_map puts tensor '" + printable(member.first) +
                  "' in '" + printable(member.second.getString()) +
                  "', which does not hold it");
    checkpoint.tensorList.push_back(*tensor);
  }
  sortByName(checkpoint.tensorList);
  return checkpoint;
}

std::vector<std::string> Checkpoint::sourcePaths() const {
  std::vector<std::string> paths;
  if (!indexPath.empty())
    paths.push_back(indexPath);
  for (const SafetensorsFile &file : fileList)
    paths.push_back(file.path());
  return paths;
}

const TensorView *Checkpoint::find(std::string_view name) const {
  return findSorted(tensorList, name);
}

Result<const TensorView *> Checkpoint::lookup(std::string_view name) const {
  if (const TensorView *tensor = find(name))
    return tensor;
  return Result<const TensorView *>::failure(printable(rootPath) +
                                             ": no tensor named '" +
                                             printable(name) + "'");
}
