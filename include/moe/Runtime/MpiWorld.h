//===- MpiWorld.h - The MPI world of expert-parallel modules ----*- C++ -*-===//
//
// A module compiled for expert parallelism (moe-shard-experts) calls MPI
// itself and links the MPI library (docs/ExpertParallelism.md). The
// runtime reaches that same library through the module, so that it links
// no MPI of its own: it initializes MPI once per process, checks the size
// of MPI_COMM_WORLD, and offers what a driver such as moe-run needs around
// the calls (gathering results on rank 0, agreeing on what runs).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_MPIWORLD_H
#define MOE_RUNTIME_MPIWORLD_H

#include "moe/Runtime/Result.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moe::runtime {

/// The first expert rank `rank` of `R` owns: floor(rank E / R) (rank `R`
/// gives E, the end of the last rank's).
int64_t expertOwnedStart(int64_t numExperts, int64_t numRanks, int64_t rank);

/// The first expert of the window of ceil(E / R) experts rank `rank` of `R`
/// holds: min(floor(rank E / R), E - ceil(E / R)).
int64_t expertWindowStart(int64_t numExperts, int64_t numRanks, int64_t rank);

/// MPI_COMM_WORLD of this process, initialized (MPI_THREAD_SERIALIZED) by
/// the first module that needs it and finalized at exit.
class MpiWorld {
public:
  /// The world through the MPI library (`library`: "OpenMPI" or "MPICH")
  /// that the module loaded as `moduleHandle` links; errors name `path`.
  static Result<const MpiWorld *> attach(void *moduleHandle,
                                         const std::string &library,
                                         const std::string &path);

  /// The world attached in this process, or null (before any, or when
  /// the attach failed): once MPI is initialized, a failing process must
  /// end the job (abort()) rather than exit, or the others may wait for it.
  static const MpiWorld *current();

  int rank() const { return worldRank; }
  int size() const { return worldSize; }

  /// Rank 0 receives every rank's `bytes` (any size, rank 0's included)
  /// concatenated in rank order into `gathered`; other ranks' `gathered`
  /// is left empty. A collective.
  Status gather(const void *bytes, size_t size,
                std::vector<uint8_t> &gathered) const;

  /// Whether every rank passed the same `value`. A collective.
  Result<bool> allAgree(uint64_t value) const;

  /// Ends every rank of the world (MPI_Abort) with `code`.
  [[noreturn]] void abort(int code) const;

  /// The MPI functions and handles (MpiWorld.cpp).
  struct Library;

private:
  const Library *library = nullptr;
  int worldRank = 0;
  int worldSize = 1;
};

} // namespace moe::runtime

#endif // MOE_RUNTIME_MPIWORLD_H
