//===- FuzzSupport.h - Shared helpers of the fuzz harnesses -----*- C++ -*-===//
//
// The harnesses assert invariants, not only "no crash": FUZZ_CHECK prints
// what broke and aborts, which libFuzzer reports as a finding. Inputs that
// the parsers read from files are written to in-memory files (memfd) and
// opened through /proc/self/fd, as the tools would open them from disk.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FUZZ_FUZZSUPPORT_H
#define MOE_FUZZ_FUZZSUPPORT_H

#include "moe/Runtime/Result.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

/// Aborts with a message when `cond` does not hold.
#define FUZZ_CHECK(cond, message)                                              \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "invariant broken at %s:%d: %s\n", __FILE__,        \
                   __LINE__, std::string(message).c_str());                    \
      std::abort();                                                            \
    }                                                                          \
  } while (false)

namespace moe::fuzz {

/// Checks that an error message is one non-empty printable line.
inline void checkOneLine(const std::string &message) {
  FUZZ_CHECK(!message.empty(), "empty error message");
  FUZZ_CHECK(runtime::isPrintable(message),
             "error message with unescaped bytes: " +
                 runtime::printable(message));
}

/// A file in memory (memfd) whose content is replaced by each write().
class MemoryFile {
public:
  /// Creates the file; `name` appears in /proc but not in the path.
  explicit MemoryFile(const char *name);
  ~MemoryFile();
  MemoryFile(const MemoryFile &) = delete;
  MemoryFile &operator=(const MemoryFile &) = delete;

  /// Replaces the content with `bytes`.
  void write(std::string_view bytes);
  /// The path that opens the file.
  const std::string &path() const { return filePath; }

private:
  int fd = -1;
  std::string filePath;
};

/// A private directory for an input made of several files (a sharded
/// checkpoint), removed with its files on destruction.
class ScratchDirectory {
public:
  ScratchDirectory();
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory &) = delete;
  ScratchDirectory &operator=(const ScratchDirectory &) = delete;

  /// The directory.
  const std::string &path() const { return dirPath; }
  /// Writes `bytes` to the file `name` of the directory; returns its path.
  std::string write(const std::string &name, std::string_view bytes);

private:
  std::string dirPath;
  std::vector<std::string> files;
};

} // namespace moe::fuzz

#endif // MOE_FUZZ_FUZZSUPPORT_H
