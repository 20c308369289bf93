//===- FuzzSupport.cpp - Shared helpers of the fuzz harnesses -------------===//

#include "FuzzSupport.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

using namespace moe::fuzz;

MemoryFile::MemoryFile(const char *name) {
  fd = memfd_create(name, MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "memfd_create failed");
  filePath = "/proc/self/fd/" + std::to_string(fd);
}

MemoryFile::~MemoryFile() { close(fd); }

void MemoryFile::write(std::string_view bytes) {
  FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate failed");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = pwrite(fd, bytes.data() + done, bytes.size() - done,
                       static_cast<off_t>(done));
    FUZZ_CHECK(n > 0, "pwrite failed");
    done += static_cast<size_t>(n);
  }
}

ScratchDirectory::ScratchDirectory() {
  const char *base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base && *base ? base : "/tmp") + "/moe-fuzz-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  FUZZ_CHECK(mkdtemp(buffer.data()), "mkdtemp failed");
  dirPath = buffer.data();
}

ScratchDirectory::~ScratchDirectory() {
  for (const std::string &file : files)
    unlink(file.c_str());
  rmdir(dirPath.c_str());
}

std::string ScratchDirectory::write(const std::string &name,
                                    std::string_view bytes) {
  std::string path = dirPath + "/" + name;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0, "cannot create " + path);
  files.push_back(path);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    FUZZ_CHECK(n > 0, "write failed");
    done += static_cast<size_t>(n);
  }
  close(fd);
  return path;
}
