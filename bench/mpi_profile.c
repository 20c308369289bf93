/* An MPI profiling shim (the standard PMPI interface) for
   bench/expert_parallel.py: preloaded into every rank, it times each
   MPI_Alltoallv of a compiled layer in two parts, the wait for the other
   ranks to arrive (a barrier first: load imbalance) and the exchange
   itself, counts the bytes it sends to other ranks, and when the process
   exits writes one JSON line per rank to $MOE_MPI_PROFILE/rank-N.json (at
   exit, not in MPI_Finalize: the runtime calls the library's MPI_Finalize
   directly). Nothing in the project links it. */

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double wait_seconds;
static double exchange_seconds;
static long long exchange_calls;
static long long bytes_to_others;
static int world_rank = -1;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int MPI_Alltoallv(const void *sendbuf, const int sendcounts[],
                  const int sdispls[], MPI_Datatype sendtype, void *recvbuf,
                  const int recvcounts[], const int rdispls[],
                  MPI_Datatype recvtype, MPI_Comm comm) {
  int rank, size, type_size;
  PMPI_Comm_rank(comm, &rank);
  PMPI_Comm_size(comm, &size);
  if (world_rank < 0)
    PMPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  PMPI_Type_size(sendtype, &type_size);
  for (int p = 0; p < size; ++p)
    if (p != rank)
      bytes_to_others += (long long)sendcounts[p] * type_size;
  double arrive = now();
  PMPI_Barrier(comm);
  double start = now();
  wait_seconds += start - arrive;
  int result = PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf,
                              recvcounts, rdispls, recvtype, comm);
  exchange_seconds += now() - start;
  ++exchange_calls;
  return result;
}

__attribute__((destructor)) static void write_profile(void) {
  const char *dir = getenv("MOE_MPI_PROFILE");
  if (!dir || world_rank < 0)
    return;
  char path[4096];
  snprintf(path, sizeof(path), "%s/rank-%d.json", dir, world_rank);
  FILE *file = fopen(path, "w");
  if (!file)
    return;
  fprintf(file,
          "{\"rank\": %d, \"alltoallv_calls\": %lld, \"wait_seconds\": %.9f, "
          "\"alltoallv_seconds\": %.9f, \"bytes_to_others\": %lld}\n",
          world_rank, exchange_calls, wait_seconds, exchange_seconds,
          bytes_to_others);
  fclose(file);
}
