//===- MappedFile.h - Read-only memory-mapped files -------------*- C++ -*-===//
//
// A whole regular file mapped read-only (mmap) for zero-copy access to
// checkpoint data. The mapping lives as long as the MappedFile and stays at
// the same address when the object is moved.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_MAPPEDFILE_H
#define MOE_RUNTIME_MAPPEDFILE_H

#include "moe/Runtime/Result.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace moe::runtime {

/// A regular file mapped read-only into memory; unmapped on destruction.
class MappedFile {
public:
  /// Maps the regular file at `path`; errors read "<path>: <problem>".
  static Result<MappedFile> open(const std::string &path);

  MappedFile(MappedFile &&other) noexcept;
  MappedFile &operator=(MappedFile &&other) noexcept;
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  ~MappedFile();

  /// The first byte of the file (null for an empty file).
  const uint8_t *data() const { return bytes; }
  /// The size of the file in bytes.
  size_t size() const { return length; }
  /// The path the file was opened with.
  const std::string &path() const { return filePath; }

private:
  MappedFile() = default;
  void reset();

  const uint8_t *bytes = nullptr;
  size_t length = 0;
  std::string filePath;
};

/// The outcome of probing a path: Missing when it does not exist,
/// Inaccessible when it cannot be inspected (permissions, ...).
enum class PathKind { Missing, Inaccessible, RegularFile, Directory, Other };

/// Classifies `path`, following symbolic links.
PathKind getPathKind(const std::string &path);

} // namespace moe::runtime

#endif // MOE_RUNTIME_MAPPEDFILE_H
