/* Runs one kernel of a PTX file through the CUDA emulator's driver API:
 *   launch_ptx FILE KERNEL GRID BLOCK WORDS [programmatic | cluster N]
 * The kernel takes one pointer, to WORDS zeroed 32-bit words of device
 * memory; afterwards they are printed, or the launch's error. With
 * `programmatic`, it is launched by cuLaunchKernelEx with programmatic
 * stream serialization; with `cluster N`, by cuLaunchKernelEx in clusters
 * of N CTAs along x. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../Runtime/Inputs/launch_config.h"

typedef int CUresult;
CUresult cuInit(unsigned);
CUresult cuModuleLoadData(void **, const void *);
CUresult cuModuleGetFunction(void **, void *, const char *);
CUresult cuMemAlloc_v2(unsigned long long *, size_t);
CUresult cuMemFree_v2(unsigned long long);
CUresult cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned,
                        unsigned, unsigned, unsigned, void *, void **, void **);
CUresult cuModuleUnload(void *);
CUresult cuLaunchKernelEx(const struct LaunchConfig *, void *, void **,
                          void **);

int main(int argc, char **argv) {
  int programmatic = argc == 7 && strcmp(argv[6], "programmatic") == 0;
  int clustered = argc == 8 && strcmp(argv[6], "cluster") == 0;
  if (argc != 6 && !programmatic && !clustered) {
    fprintf(stderr, "usage: launch_ptx FILE KERNEL GRID BLOCK WORDS "
                    "[programmatic | cluster N]\n");
    return 2;
  }
  FILE *file = fopen(argv[1], "rb");
  if (!file)
    return 2;
  static char text[1 << 20];
  size_t length = fread(text, 1, sizeof text - 1, file);
  fclose(file);
  text[length] = 0;
  void *module, *function;
  cuInit(0);
  if (cuModuleLoadData(&module, text)) {
    printf("load failed\n");
    return 1;
  }
  if (cuModuleGetFunction(&function, module, argv[2])) {
    printf("no kernel %s\n", argv[2]);
    return 1;
  }
  size_t words = (size_t)atoi(argv[5]);
  unsigned long long buffer;
  cuMemAlloc_v2(&buffer, words * 4);
  void *params[] = {&buffer};
  unsigned grid = (unsigned)atoi(argv[3]), block = (unsigned)atoi(argv[4]);
  CUresult result;
  if (programmatic || clustered) {
    struct LaunchAttribute attribute = {
        LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, {0}, {{0}}};
    attribute.value.value = 1;
    if (clustered) {
      attribute.id = LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
      attribute.value.cluster[0] = (unsigned)atoi(argv[7]);
      attribute.value.cluster[1] = attribute.value.cluster[2] = 1;
    }
    struct LaunchConfig config = {grid, 1, 1, block, 1, 1, 0, 0, &attribute,
                                  1};
    result = cuLaunchKernelEx(&config, function, params, 0);
  } else {
    result = cuLaunchKernel(function, grid, 1, 1, block, 1, 1, 0, 0, params, 0);
  }
  if (result) {
    printf("launch failed: %d\n", result);
    return 1;
  }
  const unsigned *values = (const unsigned *)(size_t)buffer;
  for (size_t i = 0; i < words; ++i)
    printf("%u%s", values[i], i + 1 < words ? " " : "\n");
  cuMemFree_v2(buffer);
  cuModuleUnload(module);
  return 0;
}
