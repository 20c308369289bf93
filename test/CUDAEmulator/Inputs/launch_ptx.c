/* Runs one kernel of a PTX file through the CUDA emulator's driver API:
 *   launch_ptx FILE KERNEL GRID BLOCK WORDS
 * The kernel takes one pointer, to WORDS zeroed 32-bit words of device
 * memory; afterwards they are printed, or the launch's error. */
#include <stdio.h>
#include <stdlib.h>

typedef int CUresult;
CUresult cuInit(unsigned);
CUresult cuModuleLoadData(void **, const void *);
CUresult cuModuleGetFunction(void **, void *, const char *);
CUresult cuMemAlloc_v2(unsigned long long *, size_t);
CUresult cuMemFree_v2(unsigned long long);
CUresult cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned,
                        unsigned, unsigned, unsigned, void *, void **, void **);
CUresult cuModuleUnload(void *);

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: launch_ptx FILE KERNEL GRID BLOCK WORDS\n");
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
  CUresult result =
      cuLaunchKernel(function, (unsigned)atoi(argv[3]), 1, 1,
                     (unsigned)atoi(argv[4]), 1, 1, 0, 0, params, 0);
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
