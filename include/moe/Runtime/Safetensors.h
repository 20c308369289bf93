//===- Safetensors.h - Validated safetensors checkpoints --------*- C++ -*-===//
//
// Opens Hugging Face checkpoints: one .safetensors file, a directory holding
// model.safetensors, or a sharded checkpoint described by
// model.safetensors.index.json. Files are mapped read-only and every header
// is validated before any tensor is handed out (docs/Runtime.md lists the
// rules).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_SAFETENSORS_H
#define MOE_RUNTIME_SAFETENSORS_H

#include "moe/Runtime/DType.h"
#include "moe/Runtime/MappedFile.h"
#include "moe/Runtime/Result.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe::runtime {

/// The largest safetensors header accepted, in bytes (as the reference
/// implementation).
constexpr uint64_t kMaxSafetensorsHeaderSize = 100000000;

/// A tensor of a checkpoint: its dtype, shape and bytes inside a mapped file.
struct TensorView {
  /// The tensor name from the header.
  std::string name;
  /// The element type.
  DType dtype = DType::F32;
  /// The dimensions, row-major.
  std::vector<int64_t> shape;
  /// The first byte of the row-major little-endian data; not necessarily
  /// aligned to the element size.
  const void *data = nullptr;
  /// The size of the data in bytes (numElements() * dtypeSize(dtype)).
  size_t numBytes = 0;
  /// The path of the file that holds the tensor.
  std::string file;

  /// The number of elements (the product of the shape).
  int64_t numElements() const;
};

/// Formats a shape as "[2, 3]".
std::string formatShape(const std::vector<int64_t> &shape);

/// Decodes a floating-point tensor (F32, F16, BF16, F64, F8_E4M3, F8_E5M2)
/// into a new f32 vector; errors name the tensor's file.
Result<std::vector<float>> readAsF32(const TensorView &tensor);

/// One validated .safetensors file, mapped read-only.
class SafetensorsFile {
public:
  /// Maps and validates the file at `path`.
  static Result<SafetensorsFile> open(const std::string &path);

  /// The path the file was opened with.
  const std::string &path() const { return mapping.path(); }
  /// The whole file as mapped; every tensor's bytes lie in its data buffer,
  /// after the 8-byte length and the header.
  const uint8_t *fileData() const { return mapping.data(); }
  /// The size of the file in bytes.
  size_t fileSize() const { return mapping.size(); }
  /// The tensors, sorted by name.
  const std::vector<TensorView> &tensors() const { return tensorList; }
  /// The tensor named `name`, or null.
  const TensorView *find(std::string_view name) const;
  /// The "__metadata__" string map, in header order.
  const std::vector<std::pair<std::string, std::string>> &metadata() const {
    return metadataList;
  }

private:
  explicit SafetensorsFile(MappedFile mapping) : mapping(std::move(mapping)) {}

  MappedFile mapping;
  std::vector<TensorView> tensorList;
  std::vector<std::pair<std::string, std::string>> metadataList;
};

/// A checkpoint: every tensor of one or more safetensors files, by name.
class Checkpoint {
public:
  /// The file name looked up in a checkpoint directory first.
  static constexpr const char *kSingleFileName = "model.safetensors";
  /// The file name looked up in a checkpoint directory second.
  static constexpr const char *kIndexFileName = "model.safetensors.index.json";

  /// Opens `path`: a .safetensors file, a sharded index (a file whose name
  /// ends in ".json"), or a directory holding model.safetensors or, failing
  /// that, model.safetensors.index.json.
  static Result<Checkpoint> open(const std::string &path);

  /// The path the checkpoint was opened with.
  const std::string &path() const { return rootPath; }
  /// The files that make up the checkpoint (one, or the shards in the order
  /// they first appear in the index).
  const std::vector<SafetensorsFile> &files() const { return fileList; }
  /// Every tensor, sorted by name.
  const std::vector<TensorView> &tensors() const { return tensorList; }
  /// Every file the checkpoint was read from: the index of a sharded
  /// checkpoint, then the safetensors files.
  std::vector<std::string> sourcePaths() const;
  /// The tensor named `name`, or null.
  const TensorView *find(std::string_view name) const;
  /// The tensor named `name`, or the error "<path>: no tensor named '<name>'".
  Result<const TensorView *> lookup(std::string_view name) const;

private:
  Checkpoint() = default;
  static Result<Checkpoint> openFile(const std::string &path);
  static Result<Checkpoint> openIndex(const std::string &indexPath);

  std::string rootPath;
  /// The index file of a sharded checkpoint; empty otherwise.
  std::string indexPath;
  std::vector<SafetensorsFile> fileList;
  std::vector<TensorView> tensorList;
};

} // namespace moe::runtime

#endif // MOE_RUNTIME_SAFETENSORS_H
