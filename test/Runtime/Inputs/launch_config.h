/* CUlaunchAttribute and CUlaunchConfig as cuda.h lays them out, for the
 * C stand-ins of the driver (fake_cuda.c) and their test launchers, which
 * do not include cuda.h: what cuLaunchKernelEx takes. */
#ifndef MOE_TEST_RUNTIME_INPUTS_LAUNCH_CONFIG_H
#define MOE_TEST_RUNTIME_INPUTS_LAUNCH_CONFIG_H

/* CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION (value: int) and
 * CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION (value: x, y, z). */
enum {
  LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4,
  LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6
};

struct LaunchAttribute {
  int id;
  char pad[4];
  union {
    char bytes[64];
    int value;
    unsigned cluster[3];
    void *alignment;
  } value;
};

struct LaunchConfig {
  unsigned gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes;
  void *stream;
  struct LaunchAttribute *attributes;
  unsigned numAttributes;
};

#endif
