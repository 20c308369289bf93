//===- OutputFile.h - Outputs written aside, renamed into place -*- C++ -*-===//
//
// A tool's output is written to a temporary file in the directory of its
// final path and renamed over that path only once everything succeeded, so a
// failed run leaves no partial or empty file and an existing file is never
// truncated in place (truncating a file that is also mapped, e.g. the loaded
// module, kills the process with SIGBUS). Tools also refuse an output path
// that is one of their inputs (isSameFile).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_OUTPUTFILE_H
#define MOE_RUNTIME_OUTPUTFILE_H

#include "moe/Runtime/Result.h"

#include <string>

namespace moe::runtime {

/// An output being written: a temporary file next to `path()` that commit()
/// renames to `path()`; removed on destruction unless committed.
class PendingOutput {
public:
  /// Creates the temporary file "<dir>/.<name>.XXXXXX" next to `path`, so
  /// that an unwritable directory fails before any work. Fails when `path` is
  /// a directory.
  static Result<PendingOutput> create(const std::string &path);

  PendingOutput(PendingOutput &&other) noexcept;
  PendingOutput &operator=(PendingOutput &&other) noexcept;
  PendingOutput(const PendingOutput &) = delete;
  PendingOutput &operator=(const PendingOutput &) = delete;
  ~PendingOutput();

  /// The final path.
  const std::string &path() const { return finalPath; }
  /// The temporary file to write the output to.
  const std::string &tempPath() const { return temporaryPath; }
  /// Renames the temporary file to the final path, with the permissions of a
  /// newly created file (0666 less the umask).
  Status commit();

private:
  PendingOutput() = default;
  void discard();

  std::string finalPath;
  std::string temporaryPath;
};

/// True when `a` and `b` name the same file: the same inode when both exist,
/// else the same canonical directory and name. Symbolic links are followed.
bool isSameFile(const std::string &a, const std::string &b);

} // namespace moe::runtime

#endif // MOE_RUNTIME_OUTPUTFILE_H
