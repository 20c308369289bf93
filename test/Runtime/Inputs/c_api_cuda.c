/* The GPU queries of the C API: the API version, the CUDA devices or the
 * error that says why there are none. */
#include "moe/Runtime/moe_runtime.h"

#include <stdio.h>

int main(void) {
  printf("api: %d (header %d)\n", moe_api_version(), MOE_API_VERSION);
  int count = moe_cuda_device_count();
  if (count < 0) {
    printf("count error: %s\n", moe_last_error());
    return 0;
  }
  printf("count: %d\n", count);
  for (int device = 0; device <= count; ++device) {
    const char *line = moe_cuda_device_describe(device);
    printf("device %d: %s\n", device, line ? line : moe_last_error());
  }
  return 0;
}
