//===- MappedFile.cpp - Read-only memory-mapped files ---------------------===//

#include "moe/Runtime/MappedFile.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace moe::runtime;

Result<MappedFile> MappedFile::open(const std::string &path) {
  auto fail = [&](const char *what, int error) {
    return Result<MappedFile>::failure(printable(path) + ": " + what + ": " +
                                       std::strerror(error));
  };
  // O_NONBLOCK keeps a FIFO from blocking the open; it is rejected below.
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return fail("cannot open", errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int error = errno;
    ::close(fd);
    return fail("cannot stat", error);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Result<MappedFile>::failure(
        printable(path) + (S_ISDIR(st.st_mode) ? ": is a directory, expected a file"
                                    : ": is not a regular file"));
  }
  MappedFile file;
  file.filePath = path;
  file.length = static_cast<size_t>(st.st_size);
  if (file.length != 0) {
    void *addr = ::mmap(nullptr, file.length, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int error = errno;
      ::close(fd);
      file.length = 0;
      return fail("cannot map", error);
    }
    file.bytes = static_cast<const uint8_t *>(addr);
  }
  ::close(fd);
  return file;
}

MappedFile::MappedFile(MappedFile &&other) noexcept
    : bytes(other.bytes), length(other.length),
      filePath(std::move(other.filePath)) {
  other.bytes = nullptr;
  other.length = 0;
}

MappedFile &MappedFile::operator=(MappedFile &&other) noexcept {
  if (this != &other) {
    reset();
    bytes = other.bytes;
    length = other.length;
    filePath = std::move(other.filePath);
    other.bytes = nullptr;
    other.length = 0;
  }
  return *this;
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() {
  if (bytes)
    ::munmap(const_cast<uint8_t *>(bytes), length);
  bytes = nullptr;
  length = 0;
}

PathKind moe::runtime::getPathKind(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return errno == ENOENT || errno == ENOTDIR ? PathKind::Missing
                                               : PathKind::Inaccessible;
  if (S_ISREG(st.st_mode))
    return PathKind::RegularFile;
  if (S_ISDIR(st.st_mode))
    return PathKind::Directory;
  return PathKind::Other;
}
