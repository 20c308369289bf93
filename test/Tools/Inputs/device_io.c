/* Runs a device-io CUDA module (moe-compile --pipeline-options=device-io)
 * through the C API on device buffers and a stream of the driver named by
 * MOE_CUDA_DRIVER, as a PyTorch caller would: one call, then one captured
 * into a CUDA graph and replayed. Prints each step's outcome; the stand-in
 * driver (Runtime/Inputs/fake_cuda.c) fails a call that waits or
 * allocates outside the stream's order while the stream is captured.
 *
 *   device_io <device-io module> <host-io module> <checkpoint> <tokens>
 */
#include "moe/Runtime/moe_runtime.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

static void *driver;
static void *symbol(const char *name) {
  void *found = dlsym(driver, name);
  if (!found) {
    fprintf(stderr, "no %s in the driver\n", name);
    exit(1);
  }
  return found;
}

static void report(const char *step, int rc) {
  if (rc == 0)
    printf("%s: ok\n", step);
  else
    printf("%s: %s (status %d)\n", step, moe_last_error(),
           (int)moe_last_status());
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: device_io <device-io module> <host-io module> "
                    "<checkpoint> <tokens>\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  long long tokens = atoll(argv[4]);
  moe_checkpoint *checkpoint = moe_checkpoint_open(argv[3]);
  moe_module *module = moe_module_load(argv[1]);
  moe_module *hostModule = moe_module_load(argv[2]);
  if (!checkpoint || !module || !hostModule) {
    fprintf(stderr, "%s\n", moe_last_error());
    return 1;
  }
  moe_entry *entry = moe_entry_bind(module, "forward", checkpoint);
  moe_entry *hostEntry = moe_entry_bind(hostModule, "forward", checkpoint);
  if (!entry || !hostEntry) {
    fprintf(stderr, "%s\n", moe_last_error());
    return 1;
  }
  printf("device io: %d, host io: %d\n", moe_entry_device_io(entry),
         moe_entry_device_io(hostEntry));
  long long hidden = moe_entry_hidden_size(entry);

  driver = dlopen(getenv("MOE_CUDA_DRIVER"), RTLD_NOW | RTLD_LOCAL);
  if (!driver) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  CUresult (*memAlloc)(CUdeviceptr *, size_t) = symbol("cuMemAlloc_v2");
  CUresult (*memFree)(CUdeviceptr) = symbol("cuMemFree_v2");
  CUresult (*streamCreate)(void **, unsigned) = symbol("cuStreamCreate");
  CUresult (*streamDestroy)(void *) = symbol("cuStreamDestroy_v2");
  CUresult (*streamSynchronize)(void *) = symbol("cuStreamSynchronize");
  CUresult (*beginCapture)(void *, int) = symbol("cuStreamBeginCapture_v2");
  CUresult (*endCapture)(void *, void **) = symbol("cuStreamEndCapture");
  CUresult (*instantiate)(void **, void *, unsigned long long) =
      symbol("cuGraphInstantiateWithFlags");
  CUresult (*graphLaunch)(void *, void *) = symbol("cuGraphLaunch");
  CUresult (*graphExecDestroy)(void *) = symbol("cuGraphExecDestroy");
  CUresult (*graphDestroy)(void *) = symbol("cuGraphDestroy");

  size_t bytes = (size_t)(tokens * hidden) * sizeof(float);
  CUdeviceptr x = 0, y = 0;
  void *stream = NULL;
  if (memAlloc(&x, bytes ? bytes : 1) || memAlloc(&y, bytes ? bytes : 1) ||
      streamCreate(&stream, 1)) {
    fprintf(stderr, "the driver failed\n");
    return 1;
  }
  const void *inputs[] = {(const void *)(size_t)x};
  void *outputs[] = {(void *)(size_t)y};

  /* The wrong calls, each one line. */
  float hostX[1] = {0}, hostY[1] = {0};
  const float *hostInputs[] = {hostX};
  void *hostOutputs[] = {hostY};
  report("host buffers",
         moe_entry_run(entry, hostInputs, 1, 0, hostOutputs, 1, 1));
  report("host module",
         moe_entry_run_cuda(hostEntry, inputs, 1, tokens, outputs, 1, stream));
  report("two inputs",
         moe_entry_run_cuda(entry, inputs, 2, tokens, outputs, 1, stream));
  const void *noInputs[] = {NULL};
  report("null input",
         moe_entry_run_cuda(entry, noInputs, 1, tokens, outputs, 1, stream));
  report("negative tokens",
         moe_entry_run_cuda(entry, inputs, 1, -1, outputs, 1, stream));

  /* A first call outside a capture makes the TMA descriptors; the caller
   * waits for its stream. */
  report("call",
         moe_entry_run_cuda(entry, inputs, 1, tokens, outputs, 1, stream));
  printf("synchronize: %d\n", streamSynchronize(stream));

  /* The same call captured into a graph, then replayed twice. */
  void *graph = NULL, *exec = NULL;
  printf("begin capture: %d\n", beginCapture(stream, 0));
  report("captured call",
         moe_entry_run_cuda(entry, inputs, 1, tokens, outputs, 1, stream));
  printf("end capture: %d\n", endCapture(stream, &graph));
  printf("instantiate: %d\n", instantiate(&exec, graph, 0));
  printf("replay: %d\n", graphLaunch(exec, stream));
  printf("replay: %d\n", graphLaunch(exec, stream));
  printf("synchronize: %d\n", streamSynchronize(stream));

  graphExecDestroy(exec);
  graphDestroy(graph);

  /* A host-io call makes its own stream and waits for it: no capture. */
  float *hostIn = calloc((size_t)(tokens * hidden) + 1, sizeof(float));
  float *hostOut = calloc((size_t)(tokens * hidden) + 1, sizeof(float));
  const float *hostIns[] = {hostIn};
  void *hostOuts[] = {hostOut};
  printf("begin capture: %d\n", beginCapture(stream, 0));
  report("captured host-io call",
         moe_entry_run(hostEntry, hostIns, 1, tokens, hostOuts, 1, 1));
  printf("end capture: %d\n", endCapture(stream, &graph));
  graphDestroy(graph);
  free(hostIn);
  free(hostOut);
  streamDestroy(stream);
  memFree(x);
  memFree(y);
  moe_entry_free(entry);
  moe_entry_free(hostEntry);
  moe_module_free(module);
  moe_module_free(hostModule);
  moe_checkpoint_free(checkpoint);
  int (*live)(void) = (int (*)(void))dlsym(driver, "fake_cuda_live");
  if (live)
    printf("alive: %d\n", live());
  return 0;
}
