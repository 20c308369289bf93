/* The GPU queries of the C API: the API version, the CUDA devices or the
 * error that says why there are none, and each call's status code
 * (moe_last_status). */
#include "moe/Runtime/moe_runtime.h"

#include <stdio.h>

int main(int argc, char **argv) {
  printf("api: %d (header %d)\n", moe_api_version(), MOE_API_VERSION);
  /* A module path: load it on device 0, then on device 5. */
  for (int i = 1; i < argc; ++i) {
    moe_module *module = moe_module_load_on_device(argv[i], 0);
    if (module)
      printf("module: %s (status %d)\n", moe_module_target(module),
             (int)moe_last_status());
    else
      printf("module error: %s (status %d)\n", moe_last_error(),
             (int)moe_last_status());
    /* While it is loaded on device 0, the same file on another device. */
    moe_module *other = moe_module_load_on_device(argv[i], 1);
    printf("device 1: %s (status %d)\n", other ? "loaded" : moe_last_error(),
           (int)moe_last_status());
    moe_module_free(other);
    moe_module_free(module);
    module = moe_module_load_on_device(argv[i], 5);
    printf("device 5: %s (status %d)\n", module ? "loaded" : moe_last_error(),
           (int)moe_last_status());
    moe_module_free(module);
  }
  int count = moe_cuda_device_count();
  if (count < 0) {
    printf("count error: %s (status %d)\n", moe_last_error(),
           (int)moe_last_status());
    return 0;
  }
  printf("count: %d\n", count);
  for (int device = 0; device <= count; ++device) {
    const char *line = moe_cuda_device_describe(device);
    printf("device %d: %s (status %d)\n", device, line ? line : moe_last_error(),
           (int)moe_last_status());
  }
  return 0;
}
