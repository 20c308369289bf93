//===- Workspace.cpp - Buffers of compiled code, reused across calls ------===//

#include "Workspace.h"

#include "moe/Runtime/Allocation.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace moe::runtime {
namespace {

/// Blocks below this come from malloc's heap anyway: no cache.
constexpr uint64_t kMinCachedBytes = 256 * 1024;

/// Eight classes per power of two: at most 25% more than asked for.
uint64_t sizeClass(uint64_t bytes) {
  // The smallest power of two >= bytes / 8; bytes > 4 * power, so rounding
  // up to a multiple of it adds less than a quarter.
  uint64_t power = 1;
  while (power < bytes / 8)
    power <<= 1;
  return (bytes + power - 1) / power * power;
}

class Cache {
public:
  void *allocate(uint64_t bytes) {
    if (bytes < kMinCachedBytes)
      return std::malloc(bytes ? bytes : 1);
    uint64_t rounded = sizeClass(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = idle.find(rounded);
      if (it != idle.end() && !it->second.empty()) {
        void *block = it->second.back();
        it->second.pop_back();
        idleBytes -= rounded;
        return block;
      }
    }
    void *block = std::malloc(rounded);
    if (block) {
      std::lock_guard<std::mutex> lock(mutex);
      sizes[block] = rounded;
    }
    return block;
  }

  void release(void *block) {
    if (!block)
      return;
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = sizes.find(block);
      if (it != sizes.end()) {
        uint64_t rounded = it->second;
        if (idleBytes + rounded <= limit()) {
          idle[rounded].push_back(block);
          idleBytes += rounded;
          return;
        }
        sizes.erase(it);
      }
    }
    std::free(block);
  }

  size_t cachedBytes() {
    std::lock_guard<std::mutex> lock(mutex);
    return idleBytes;
  }

private:
  /// At most a quarter of what one allocation may take (physical memory and
  /// the process limits) sits idle.
  static uint64_t limit() {
    static const uint64_t bytes = maxAllocationBytes() / 4;
    return bytes;
  }

  std::mutex mutex;
  std::unordered_map<void *, uint64_t> sizes;
  std::map<uint64_t, std::vector<void *>> idle;
  uint64_t idleBytes = 0;
};

Cache &cache() {
  // Never destroyed: modules may release blocks during process exit.
  static Cache *instance = new Cache();
  return *instance;
}

} // namespace

void *workspaceAllocate(uint64_t bytes) { return cache().allocate(bytes); }

void workspaceFree(void *block) { cache().release(block); }

size_t workspaceCachedBytes() { return cache().cachedBytes(); }

} // namespace moe::runtime
