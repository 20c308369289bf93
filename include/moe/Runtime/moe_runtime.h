/*===- moe_runtime.h - C API of the MoE-MLIR runtime --------------*- C -*-===//
 *
 * A plain C interface over moe::runtime (include/moe/Runtime/Module.h) for
 * callers outside C++, e.g. Python through ctypes: opaque handles, integers,
 * pointers and NUL-terminated strings only.
 *
 *   moe_module *m = moe_module_load("layer.so");
 *   moe_checkpoint *c = moe_checkpoint_open("ckpt/");
 *   moe_entry *e = moe_entry_bind(m, "forward", c);
 *   moe_module_free(m);      // the entry keeps what it needs alive
 *   moe_checkpoint_free(c);
 *   if (moe_entry_run_f32(e, x, tokens, hidden, y, 4) != 0)
 *     fprintf(stderr, "%s\n", moe_last_error());
 *   moe_entry_free(e);
 *
 * Functions that fail return NULL or -1 and set a one-line message that
 * moe_last_error() returns on the same thread, and a status code that
 * moe_last_status() returns (MOE_STATUS_OK after a call that succeeded).
 *
 *===----------------------------------------------------------------------===*/

#ifndef MOE_RUNTIME_MOE_RUNTIME_H
#define MOE_RUNTIME_MOE_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded compiled module (a shared object made by moe-compile). */
typedef struct moe_module moe_module;
/** An open safetensors checkpoint (file, sharded index or directory). */
typedef struct moe_checkpoint moe_checkpoint;
/** An entry point of a module with its weights bound to a checkpoint. */
typedef struct moe_entry moe_entry;

/** The version of this C API: a caller checks moe_api_version() against
 *  the MOE_API_VERSION it was compiled with. It grows when functions are
 *  added or change. */
#define MOE_API_VERSION 4

/** The kind of failure of the last call on a thread (moe_last_status()):
 *  a caller driving a GPU tells "no GPU here" from "the GPU failed". */
typedef enum moe_status {
  /** The last call succeeded. */
  MOE_STATUS_OK = 0,
  /** A bad argument, file, checkpoint, module or input. */
  MOE_STATUS_ERROR = 1,
  /** No CUDA driver, no GPU, or no such device. */
  MOE_STATUS_CUDA_UNAVAILABLE = 2,
  /** A CUDA call failed: out of device memory, a kernel launch, a copy. */
  MOE_STATUS_CUDA_ERROR = 3,
} moe_status;

/** The project's version, "MAJOR.MINOR.PATCH" (static storage). */
const char *moe_version(void);
/** The MOE_API_VERSION of the library. */
int moe_api_version(void);

/** The message of the last failed call on this thread ("" if none failed);
 *  valid until the next failing call on this thread. */
const char *moe_last_error(void);
/** The status of the last call on this thread: MOE_STATUS_OK if it
 *  succeeded, else the kind of its failure (its message: moe_last_error()). */
moe_status moe_last_status(void);

/** Loads the module at `path`; NULL on error. */
moe_module *moe_module_load(const char *path);
/** Loads the module at `path` with its GPU code on CUDA device `device`
 *  (moe_cuda_device_count()); a module compiled for the CPU refuses a
 *  device. NULL on error (no driver, no such device, a GPU binary the
 *  device cannot load: moe_last_error() says which). */
moe_module *moe_module_load_on_device(const char *path, int device);
/** Where the module's code runs: "cpu" or "cuda" (static storage); NULL on
 *  error. */
const char *moe_module_target(const moe_module *module);
/** Releases a module; entries bound from it stay valid. NULL is ignored. */
void moe_module_free(moe_module *module);
/** The number of entry points of `module`, or -1 on error. */
int64_t moe_module_num_entries(const moe_module *module);
/** The name of entry point `index` (owned by the module), or NULL. */
const char *moe_module_entry_name(const moe_module *module, int64_t index);

/** Opens the checkpoint at `path`; NULL on error. */
moe_checkpoint *moe_checkpoint_open(const char *path);
/** Releases a checkpoint; entries bound to it stay valid. NULL is ignored. */
void moe_checkpoint_free(moe_checkpoint *checkpoint);

/** Binds the weights of the entry `entry_name` of `module` to `checkpoint`,
 *  checking every shape and dtype; NULL on error. */
moe_entry *moe_entry_bind(const moe_module *module, const char *entry_name,
                          const moe_checkpoint *checkpoint);
/** Releases an entry. NULL is ignored. */
void moe_entry_free(moe_entry *entry);
/** The hidden size H of the entry's (first) input [T, H], or -1 on error. */
int64_t moe_entry_hidden_size(const moe_entry *entry);
/** The hidden size of the entry's (first) result [T, H], or -1 on error. */
int64_t moe_entry_output_size(const moe_entry *entry);
/** 1 when the entry may split its tokens over threads, 0 if not, -1 on
 *  error. */
int moe_entry_token_parallel(const moe_entry *entry);
/** Seconds moe_entry_bind spent packing weights into the layout the
 *  module's kernels stream (its packing functions, called once per bound
 *  entry, never per run); 0 when none is packed, -1 on error. */
double moe_entry_packing_seconds(const moe_entry *entry);
/** The kernel variant of the entry that runs on this CPU (e.g.
 *  "avx512bf16", or "f32" where the CPU lacks it or MOE_CPU_DISABLE turns
 *  it off); "" when the module holds one; NULL on error. Owned by the
 *  entry. */
const char *moe_entry_variant(const moe_entry *entry);

/** Runs an entry taking one input and returning one result: `x` is a
 *  row-major float32 [tokens, hidden] array, `y` receives the float32
 *  [tokens, moe_entry_output_size(entry)] result. A token-parallel entry
 *  runs on up to `threads` threads (values below 1 mean 1). Returns 0, or -1
 *  on error. An entry may run on several threads at once. */
int moe_entry_run_f32(const moe_entry *entry, const float *x, int64_t tokens,
                      int64_t hidden, float *y, int threads);

/** The number of inputs of the entry (float32 [T, H] each), or -1 on
 *  error. */
int64_t moe_entry_num_inputs(const moe_entry *entry);
/** The hidden size H of input `index`, or -1 on error. */
int64_t moe_entry_input_size(const moe_entry *entry, int64_t index);
/** The number of results of the entry, or -1 on error. */
int64_t moe_entry_num_results(const moe_entry *entry);
/** The rank of result `index`, or -1 on error. */
int64_t moe_entry_result_rank(const moe_entry *entry, int64_t index);
/** Dimension `dim` of result `index`: -1 for the token dimension T of a
 *  [T, H] result, else its static size; -2 on error. */
int64_t moe_entry_result_dim(const moe_entry *entry, int64_t index,
                             int64_t dim);
/** The element type of result `index`: "f32", "i32" or "i64" (static
 *  storage), or NULL on error. */
const char *moe_entry_result_dtype(const moe_entry *entry, int64_t index);

/** The number of CUDA GPUs, or -1 on error: without a CUDA driver
 *  (libcuda.so.1, loaded at run time; the library never links one) or when
 *  the driver fails, moe_last_error() says why. */
int moe_cuda_device_count(void);
/** One line describing CUDA GPU `device` (0 .. moe_cuda_device_count() -
 *  1), e.g. "0: NVIDIA H200, sm_90, 140 GiB, CUDA driver 13.0"; valid until
 *  the next call on this thread; NULL on error. */
const char *moe_cuda_device_describe(int device);

/** Runs an entry with any number of inputs and results: `inputs[i]` is a
 *  row-major float32 [tokens, moe_entry_input_size(entry, i)] array,
 *  `outputs[r]` receives result r, shaped as moe_entry_result_dim says with
 *  T = tokens, of its element type. `threads` as in moe_entry_run_f32.
 *  Returns 0, or -1 on error. */
int moe_entry_run(const moe_entry *entry, const float *const *inputs,
                  int64_t num_inputs, int64_t tokens, void *const *outputs,
                  int64_t num_outputs, int threads);

/** 1 when the entry takes and returns device memory (a CUDA module
 *  compiled with `--pipeline-options=device-io`): run it with
 *  moe_entry_run_cuda, not moe_entry_run; 0 if not, -1 on error. */
int moe_entry_device_io(const moe_entry *entry);

/** Enqueues a device-io entry on the CUDA stream `stream` (a CUstream of
 *  the module's device, e.g. PyTorch's current stream; NULL: the legacy
 *  default stream) and returns without waiting. `inputs[i]` is the device
 *  address of a row-major float32 [tokens, moe_entry_input_size(entry, i)]
 *  array, `outputs[r]` that of a buffer for result r (shaped as
 *  moe_entry_result_dim says with T = tokens, of its element type), on the
 *  module's device. The results are there once the stream reaches the
 *  call's end. The call allocates its working memory in the stream's order
 *  and waits for nothing, so a stream being captured into a CUDA graph
 *  captures it, after one call outside the capture (which makes the
 *  layer's TMA descriptors). Returns 0, or -1 on error (a CUDA error may
 *  also surface at the caller's next synchronization). */
int moe_entry_run_cuda(const moe_entry *entry, const void *const *inputs,
                       int64_t num_inputs, int64_t tokens, void *const *outputs,
                       int64_t num_outputs, void *stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MOE_RUNTIME_MOE_RUNTIME_H */
