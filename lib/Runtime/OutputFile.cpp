//===- OutputFile.cpp - Outputs written aside, renamed into place ---------===//

#include "moe/Runtime/OutputFile.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace moe::runtime;

namespace {

/// Splits `path` into its directory ("." for a bare name) and its name.
void splitPath(const std::string &path, std::string &dir, std::string &name) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    dir = ".";
    name = path;
  } else {
    dir = slash == 0 ? "/" : path.substr(0, slash);
    name = path.substr(slash + 1);
  }
}

/// The process's umask, read without changing it for long.
mode_t currentUmask() {
  mode_t mask = umask(022);
  umask(mask);
  return mask;
}

} // namespace

Result<PendingOutput> PendingOutput::create(const std::string &path) {
  std::string dir, name;
  splitPath(path, dir, name);
  struct stat st;
  if (name.empty() || (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
    return Result<PendingOutput>::failure(
        printable(path) + ": cannot open for writing: " + std::strerror(EISDIR));
  std::string pattern = (dir == "/" ? "" : dir) + "/." + name + ".XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  int fd = mkstemp(buffer.data());
  if (fd < 0)
    return Result<PendingOutput>::failure(
        printable(path) + ": cannot open for writing: " +
        std::strerror(errno));
  ::close(fd);
  PendingOutput output;
  output.finalPath = path;
  output.temporaryPath = buffer.data();
  return output;
}

PendingOutput::PendingOutput(PendingOutput &&other) noexcept
    : finalPath(std::move(other.finalPath)),
      temporaryPath(std::move(other.temporaryPath)) {
  other.temporaryPath.clear();
}

PendingOutput &PendingOutput::operator=(PendingOutput &&other) noexcept {
  if (this != &other) {
    discard();
    finalPath = std::move(other.finalPath);
    temporaryPath = std::move(other.temporaryPath);
    other.temporaryPath.clear();
  }
  return *this;
}

PendingOutput::~PendingOutput() { discard(); }

void PendingOutput::discard() {
  if (!temporaryPath.empty())
    ::unlink(temporaryPath.c_str());
  temporaryPath.clear();
}

Status PendingOutput::commit() {
  if (temporaryPath.empty())
    return Status::failure(printable(finalPath) + ": nothing to commit");
  // mkstemp creates the file 0600; give it the mode open() would have.
  if (::chmod(temporaryPath.c_str(), 0666 & ~currentUmask()) != 0 ||
      ::rename(temporaryPath.c_str(), finalPath.c_str()) != 0) {
    int error = errno;
    discard();
    return Status::failure(printable(finalPath) + ": cannot write: " +
                           std::strerror(error));
  }
  temporaryPath.clear();
  return Status::success();
}

bool moe::runtime::isSameFile(const std::string &a, const std::string &b) {
  struct stat sa, sb;
  bool hasA = ::stat(a.c_str(), &sa) == 0;
  bool hasB = ::stat(b.c_str(), &sb) == 0;
  if (hasA && hasB)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (hasA != hasB)
    return false;
  // Neither exists: compare the canonical directories and the names.
  auto canonical = [](const std::string &path) {
    std::string dir, name;
    splitPath(path, dir, name);
    char resolved[PATH_MAX];
    if (!::realpath(dir.c_str(), resolved))
      return path;
    return std::string(resolved) + "/" + name;
  };
  return canonical(a) == canonical(b);
}
