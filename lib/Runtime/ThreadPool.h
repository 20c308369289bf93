//===- ThreadPool.h - Persistent workers for token-parallel runs -*- C++ -*-===//
//
// Internal to the runtime library. A run split over N threads hands its
// slices to workers that live for the whole process, instead of creating N
// threads per call. Idle workers sleep on a condition variable: they never
// spin, so a descheduled worker on a loaded machine costs no busy waiting.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_THREADPOOL_H
#define MOE_RUNTIME_THREADPOOL_H

#include <functional>

namespace moe::runtime::detail {

/// Runs body(0) .. body(count - 1), the caller taking its share. The
/// process-wide workers (count - 1 of them, created the first time they are
/// needed and kept) run the others. When another call holds the workers, the
/// caller runs every index itself: concurrent runs never wait for each other
/// and never create threads. Returns when every index has run.
void parallelFor(unsigned count, const std::function<void(unsigned)> &body);

} // namespace moe::runtime::detail

#endif // MOE_RUNTIME_THREADPOOL_H
