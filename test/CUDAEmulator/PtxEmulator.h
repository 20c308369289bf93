/* A PTX interpreter for the CUDA stand-in driver (test/Runtime/Inputs/
 * fake_cuda.c built with FAKE_CUDA_EMULATOR): it runs the kernels the
 * compiler emits, on the CPU, over the stand-in's device memory (host
 * memory), so that the CUDA path's numbers can be compared with the
 * reference without a GPU. It covers the PTX the MoE pipelines emit
 * (integer and f32 arithmetic, bf16 conversions, global/shared/local
 * memory, bar.sync, mma.sync m16n8k16, wgmma m64nNk16 from 128-byte
 * swizzled shared-memory descriptors, TMA tile loads and mbarriers,
 * griddepcontrol, thread block clusters: distributed shared memory,
 * remote mbarrier arrivals, multicast TMA loads, barrier.cluster), and
 * stops with one line naming anything else. docs/Testing.md, "The CUDA
 * emulator", says what it models and what it does not. */

#ifndef MOE_TEST_CUDAEMULATOR_PTXEMULATOR_H
#define MOE_TEST_CUDAEMULATOR_PTXEMULATOR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parses NUL-terminated PTX text; null with the reason in `error`. */
void *ptxemu_load(const char *ptx, char *error, size_t errorSize);
void ptxemu_unload(void *module);
/* The kernel `name` of `module`, or null. */
void *ptxemu_function(void *module, const char *name);
/* A launch with its parameters copied (kernelParams as cuLaunchKernel
 * takes them), to run now or later (a graph's replay). */
void *ptxemu_prepare(void *function, const unsigned grid[3],
                     const unsigned block[3], unsigned dynamicShared,
                     void **params);
/* Marks a prepared launch programmatic (cuLaunchKernelEx with programmatic
 * stream serialization): its threads may touch global memory only after
 * their griddepcontrol.wait. */
void ptxemu_set_programmatic(void *launch);
/* Launches a prepared launch's blocks in clusters of cluster[0] x
 * cluster[1] x cluster[2] (cuLaunchKernelEx's cluster dimension): each
 * cluster's CTAs run together and share their shared memory. */
void ptxemu_set_cluster(void *launch, const unsigned cluster[3]);
/* Runs a prepared launch: 0, or 1 with the reason in `error`. */
int ptxemu_run(void *launch, char *error, size_t errorSize);
void ptxemu_release(void *launch);
/* The instructions one block may run before its launch fails (an endless
 * loop; 2^36 by default). */
void ptxemu_set_step_limit(unsigned long long steps);
/* Device memory the kernels may touch (the stand-in's allocations). */
void ptxemu_track(void *pointer, size_t bytes);
void ptxemu_untrack(void *pointer);
/* The tensor map layout the stand-in's cuTensorMapEncodeTiled writes. */
void ptxemu_encode_tensor_map(void *map, int type, unsigned rank, void *address,
                              const unsigned long long *dims,
                              const unsigned long long *strides,
                              const unsigned *box, int swizzle, int oob);

#ifdef __cplusplus
}
#endif

#endif
