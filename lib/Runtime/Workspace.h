//===- Workspace.h - Buffers of compiled code, reused across calls -*- C++ -*-===//
//
// Compiled modules allocate their intermediate buffers (dispatched rows,
// accumulators, ...) on every call. Fresh large blocks from malloc are new
// mappings whose every page faults on first touch, which costs more than the
// matmuls at small batch sizes. The runtime therefore hands a module (through
// its exported `moe_module_allocator`, docs/CompiledModules.md) these two
// functions: large blocks are kept in a process-wide cache after release and
// handed out again for requests of the same size class.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_RUNTIME_WORKSPACE_H
#define MOE_LIB_RUNTIME_WORKSPACE_H

#include <cstddef>
#include <cstdint>

namespace moe::runtime {

/// malloc-compatible: a block of at least `bytes`, aligned for any scalar,
/// or null. Thread-safe.
void *workspaceAllocate(uint64_t bytes);

/// Releases a block of workspaceAllocate, or any block of malloc (passed on
/// to free). Null is ignored. Thread-safe.
void workspaceFree(void *block);

/// Bytes held in the cache now (for tests).
size_t workspaceCachedBytes();

} // namespace moe::runtime

#endif // MOE_LIB_RUNTIME_WORKSPACE_H
