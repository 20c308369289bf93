/* The machine's exchange limit for bench/expert_parallel.py: every rank
   sends BYTES to every other rank with MPI_Alltoall, REPEAT times after a
   warm-up; prints one JSON line (rank 0) with the bytes each rank sent to
   the others per second.

   usage: mpirun -np R mpi_bandwidth BYTES REPEAT */

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long bytes = argc > 1 ? atol(argv[1]) : 1 << 20;
  int repeat = argc > 2 ? atoi(argv[2]) : 50;
  if (bytes < 1 || repeat < 1)
    MPI_Abort(MPI_COMM_WORLD, 2);
  char *send = malloc((size_t)bytes * size), *recv = malloc((size_t)bytes * size);
  memset(send, rank, (size_t)bytes * size);
  MPI_Alltoall(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE,
               MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  double start = MPI_Wtime();
  for (int i = 0; i < repeat; ++i)
    MPI_Alltoall(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE,
                 MPI_COMM_WORLD);
  double seconds = MPI_Wtime() - start, slowest;
  MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("{\"bytes_per_pair\": %ld, \"ranks\": %d, \"gbs_per_rank\": %.4f}\n",
           bytes, size,
           (double)bytes * (size - 1) * repeat / slowest / 1e9);
  free(send);
  free(recv);
  MPI_Finalize();
  return 0;
}
