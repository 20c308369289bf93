//===- Module.h - Loading, binding and running compiled modules -*- C++ -*-===//
//
// A module compiled by moe-compile is a shared object exporting a manifest
// and one C function per entry point (docs/CompiledModules.md).
// CompiledModule loads it and checks the manifest; BoundEntry binds one entry
// point's weight arguments to checkpoint tensors and runs it on float32
// [T, H] activations, optionally splitting the tokens over threads.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_MODULE_H
#define MOE_RUNTIME_MODULE_H

#include "moe/Runtime/Manifest.h"
#include "moe/Runtime/MpiWorld.h"
#include "moe/Runtime/Result.h"
#include "moe/Runtime/Safetensors.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moe::runtime {

/// The address of an entry point; it is called through the dispatch of the
/// calling convention, never with this type.
using EntryFunction = void (*)();

/// An entry point of a loaded module: its manifest entry and its address.
struct EntryPoint {
  /// The manifest entry; owned by the module.
  const ManifestEntry *spec = nullptr;
  /// The address of `spec->symbol`.
  EntryFunction function = nullptr;
};

/// A loaded module (dlopen with RTLD_NOW | RTLD_LOCAL); closed on
/// destruction, so it is held by shared_ptr by everything that calls into it.
class CompiledModule {
public:
  /// Loads the shared object at `path`, parses and validates its manifest and
  /// resolves every entry symbol. Errors read "<path>: <problem>".
  /// A GPU module's binary is loaded on CUDA device `device` (0 when not
  /// given); a CPU module refuses a device.
  static Result<std::shared_ptr<const CompiledModule>>
  load(const std::string &path, std::optional<int> device = std::nullopt);

  /// Resolves an entry symbol of a module whose code is already in the
  /// process; null when the symbol is unknown.
  using SymbolResolver = std::function<EntryFunction(const std::string &)>;

  /// A module whose code is already in this process (linked in, or provided
  /// by a test or a fuzz harness): `manifestText` is validated as load()
  /// does and every entry symbol is resolved through `resolve`. `name`
  /// stands for the path in messages.
  static Result<std::shared_ptr<const CompiledModule>>
  fromManifest(const std::string &name, std::string_view manifestText,
               const SymbolResolver &resolve);

  CompiledModule(const CompiledModule &) = delete;
  CompiledModule &operator=(const CompiledModule &) = delete;
  ~CompiledModule();

  /// The path the module was loaded from.
  const std::string &path() const { return modulePath; }
  /// The parsed manifest, with one entry per name: of an entry point's
  /// variants, the one this CPU runs (the first whose required features it
  /// has and MOE_CPU_DISABLE leaves on).
  const Manifest &manifest() const { return moduleManifest; }
  /// The entry named `name`, or the error
  /// "<path>: no entry point 'foo' (entries: forward, ...)".
  Result<EntryPoint> entry(std::string_view name) const;
  /// The function a packed weight's manifest names (ManifestArg::
  /// packingSymbol), resolved when the module was loaded; null otherwise.
  EntryFunction packingFunction(const std::string &symbol) const;

  /// Whether the module holds GPU code (Manifest::gpuApi), and the CUDA
  /// device it was loaded on.
  bool isGpu() const { return !moduleManifest.gpuApi.empty(); }
  int device() const { return gpuDevice; }

  /// The MPI world of a module compiled for expert parallelism (Manifest::
  /// mpiRanks), attached when it was loaded; null otherwise.
  const MpiWorld *mpiWorld() const { return world; }

  /// Whether the module's code runs its loops on threads itself (it links
  /// the OpenMP runtime): a run is then one call, not token slices.
  bool runsThreadsInside() const { return setThreadCount != nullptr; }
  /// The number of threads the calling thread's next calls into the module
  /// use (omp_set_num_threads: a setting of the calling thread only, so
  /// concurrent runs with different counts do not interfere). No effect when
  /// !runsThreadsInside().
  void useThreads(unsigned threads) const;

private:
  CompiledModule(std::string path, void *handle)
      : modulePath(std::move(path)), handle(handle) {}
  static Result<std::shared_ptr<const CompiledModule>>
  resolveEntries(std::shared_ptr<CompiledModule> module,
                 std::string_view manifestText, const SymbolResolver &resolve);

  std::string modulePath;
  void *handle = nullptr;
  Manifest moduleManifest;
  /// The addresses of the manifest's entries, in the same order.
  std::vector<EntryFunction> functions;
  /// The packing functions of packed weights, by symbol.
  std::map<std::string, EntryFunction> packingFunctions;
  /// omp_set_num_threads of the OpenMP runtime the module links; null when
  /// it links none.
  void (*setThreadCount)(int) = nullptr;
  int gpuDevice = 0;
  const MpiWorld *world = nullptr;
};

/// A row-major float32 matrix of rows x cols that the caller owns.
struct MatrixRef {
  /// The first element; may be null when rows * cols == 0.
  const float *data = nullptr;
  /// The number of rows (tokens).
  int64_t rows = 0;
  /// The number of columns (the hidden size).
  int64_t cols = 0;
};

/// A writable row-major buffer that the caller owns for one result, with
/// the result's element type (BoundEntry::resultType).
struct OutputRef {
  /// The first element; may be null when the shape has no elements.
  void *data = nullptr;
  /// The shape of the buffer: [T, H] for a token result, the result's
  /// static shape for the others (BoundEntry::resultShape).
  std::vector<int64_t> shape;
};

/// An entry point whose weights are bound to checkpoint tensors, ready to
/// run. It keeps the module and the checkpoint alive. The runtime supports
/// entries whose inputs are float32 [T, H] (T dynamic, H static), whose other
/// arguments are weights, and whose results are float32 [T, H] token results
/// or tensors of a static shape (f32, i32 or i64: routing statistics).
class BoundEntry {
public:
  /// Binds the weights of the entry `entryName` of `module` to the tensors of
  /// `checkpoint`, checking every shape and dtype before anything runs.
  /// Errors are one line, e.g. "weight 'w' (argument 1 of 'forward'):
  /// checkpoint shape [8, 32] does not match [8, 64]".
  static Result<BoundEntry> bind(std::shared_ptr<const CompiledModule> module,
                                 std::string_view entryName,
                                 std::shared_ptr<const Checkpoint> checkpoint);

  /// The manifest entry.
  const ManifestEntry &spec() const { return *entryPoint.spec; }
  /// The entry's name.
  const std::string &name() const { return entryPoint.spec->name; }
  /// The number of input arguments.
  size_t numInputs() const { return inputArgs.size(); }
  /// The hidden size H of input `index` ([T, H]).
  int64_t inputHiddenSize(size_t index) const;
  /// The number of results.
  size_t numResults() const { return entryPoint.spec->results.size(); }
  /// Whether result `index` is a float32 [T, H] token result (else it has a
  /// static shape).
  bool isTokenResult(size_t index) const;
  /// The hidden size H of token result `index` ([T, H]).
  int64_t resultHiddenSize(size_t index) const;
  /// The shape of result `index` for `tokens` tokens.
  std::vector<int64_t> resultShape(size_t index, int64_t tokens) const;
  /// The bytes weight argument `argIndex` is bound to: in the checkpoint
  /// mapping, or a copy the entry owns (null for inputs); device memory for
  /// a GPU module.
  const void *weightData(size_t argIndex) const {
    return weights[argIndex].data;
  }
  /// The size in bytes of weightData(argIndex).
  size_t weightSize(size_t argIndex) const {
    return weights[argIndex].numBytes;
  }
  /// True when weight argument `argIndex` is a copy the entry owns (a stack
  /// of "{e}" tensors, or a tensor not aligned in the checkpoint).
  bool ownsWeight(size_t argIndex) const {
    return weights[argIndex].owned != nullptr ||
           weights[argIndex].onDevice != nullptr;
  }
  /// Seconds spent in the module's packing functions while binding (0 when
  /// no weight is packed): a once-per-module cost, never per call.
  double packingSeconds() const { return packSeconds; }
  /// The bytes of checkpoint tensors binding read (under expert parallelism
  /// only the rank's window of each expert tensor).
  uint64_t checkpointBytesRead() const { return bytesRead; }
  /// The number of weights bound through a packing function.
  size_t numPackedWeights() const { return packedWeights; }
  /// The element type of result `index`.
  ElementType resultType(size_t index) const {
    return entryPoint.spec->results[index].type;
  }

  /// Checks that a rows x cols float32 matrix fits input `index`; the error
  /// reads "input of 'forward' must be [T, 64] float32, got [3, 5]".
  Status checkInput(size_t index, int64_t rows, int64_t cols) const;

  /// The number of threads run() uses for `tokens` tokens when asked for
  /// `threads`: 1 when the module runs its loops on threads itself, or the
  /// entry is not token-parallel or has a result that is not per token;
  /// else at most one thread per token.
  unsigned threadsFor(int64_t tokens, unsigned threads) const;

  /// Checks that a call passes numInputs() inputs and numResults()
  /// outputs; the error reads "'forward' takes 1 input, got 2".
  Status checkCounts(uint64_t givenInputs, uint64_t givenOutputs) const;
  /// Runs the entry: `inputs` are its input arguments in order (all with the
  /// same number of tokens T) and `outputs` receive its results, each with
  /// the shape resultShape(i, T). A module that runs its loops on threads
  /// is called once with `threads` threads; otherwise a token-parallel entry
  /// is called on `threadsFor(T, threads)` contiguous slices of the tokens
  /// concurrently.
  Status run(const std::vector<MatrixRef> &inputs,
             const std::vector<OutputRef> &outputs,
             unsigned threads = 1) const;

  /// Whether the entry takes and returns device memory (a GPU module
  /// compiled with device-io: Manifest::gpuDeviceIO); run() refuses it.
  bool takesDeviceMemory() const;
  /// Enqueues the entry on `stream` (a CUstream of the module's device;
  /// null: the legacy default stream) and returns without waiting:
  /// `inputs` are device addresses of its float32 [tokens, H] inputs,
  /// `outputs` of buffers for its results (resultShape(r, tokens), row
  /// major, of resultType(r)), all on the module's device. The results are
  /// there when the stream reaches the call's end; the call allocates its
  /// working buffers in the stream's order and makes no host wait, so a
  /// stream being captured into a CUDA graph captures it (after a first
  /// call outside the capture, which makes the TMA descriptors). Only for
  /// takesDeviceMemory() entries.
  Status runOnDevice(const std::vector<const void *> &inputs, int64_t tokens,
                     const std::vector<void *> &outputs, void *stream) const;

private:
  struct FreeDeleter {
    void operator()(void *p) const { std::free(p); }
  };
  /// Frees device memory on the CUDA device it was allocated on.
  struct DeviceDeleter {
    DeviceDeleter() : device(0) {}
    explicit DeviceDeleter(int device) : device(device) {}
    void operator()(void *p) const;
    int device;
  };
  /// The bytes a weight argument is bound to.
  struct WeightBuffer {
    /// The first byte: into the checkpoint mapping, or `owned`; for a GPU
    /// module, `onDevice`.
    const void *data = nullptr;
    /// The size in bytes.
    size_t numBytes = 0;
    /// The aligned copy, when one was needed.
    std::unique_ptr<void, FreeDeleter> owned;
    /// The device copy of a GPU module's weight.
    std::unique_ptr<void, DeviceDeleter> onDevice;
  };

  BoundEntry() = default;
  Status bindWeight(size_t argIndex);
  /// Binds the checkpoint tensor (or stack) of weight `arg` with `shape`
  /// to `buffer`; `argument` names the argument in errors.
  Status bindTensor(const ManifestArg &arg, const std::vector<int64_t> &shape,
                    const std::string &argument, WeightBuffer &buffer) const;
  /// Binds an MXFP4 weight of `shape` ([..., N, K]): decodes
  /// `<name>_blocks` and `<name>_scales` into a bf16 buffer.
  /// An f32 weight the checkpoint stores as U8 e8m0 exponents.
  Status bindE8m0(const ManifestArg &arg, const std::vector<int64_t> &shape,
                  const std::string &argument, WeightBuffer &buffer) const;
  Status bindMxfp4(const ManifestArg &arg, const std::vector<int64_t> &shape,
                   const std::string &argument, WeightBuffer &buffer) const;
  /// Packs `source` (bound with arg.packingShape) into the buffer of
  /// argument `argIndex` with the module's packing function.
  Status pack(size_t argIndex, const WeightBuffer &source);
  /// Copies weight `argIndex` to the GPU module's device, once: its bytes
  /// are then device memory.
  Status upload(size_t argIndex);
  /// An owned buffer of `shape` with `itemSize`-byte elements for a weight
  /// decoded when bound (numBytes 0, the shared empty address, when the
  /// shape is empty).
  static Status allocateDecoded(const std::vector<int64_t> &shape,
                                size_t itemSize, const std::string &context,
                                WeightBuffer &buffer);
  /// Gives `buffer` an owned, 64-byte aligned, uninitialized copy of
  /// `numBytes`.
  /// Under expert parallelism: fails on every rank unless all ranks bound
  /// the same entry of the same layer to the same checkpoint (a hash of the
  /// signature and of the weights every rank holds, compared over MPI).
  Status checkSameOnEveryRank(const MpiWorld &world) const;
  static Status allocateOwned(size_t numBytes, const std::string &context,
                              WeightBuffer &buffer);
  Status runSlice(const std::vector<MatrixRef> &inputs,
                  const std::vector<OutputRef> &outputs, int64_t begin,
                  int64_t end) const;
  std::string inputLabel(size_t index) const;
  /// "output 1 of 'forward'" (no number when there is one result).
  std::string outputLabel(size_t index) const;
  /// Refuses token counts no working buffer can hold: compiled code
  /// allocates its own (at least an f32 score per token) and cannot report
  /// a failure.
  static Status checkWorkingMemory(int64_t tokens);

  std::shared_ptr<const CompiledModule> module;
  std::shared_ptr<const Checkpoint> checkpoint;
  EntryPoint entryPoint;
  /// The argument index of each input, in order.
  std::vector<size_t> inputArgs;
  /// One buffer per argument; empty for inputs.
  std::vector<WeightBuffer> weights;
  double packSeconds = 0;
  /// Accumulated by the const binding helpers as they read tensors.
  mutable uint64_t bytesRead = 0;
  size_t packedWeights = 0;
};

} // namespace moe::runtime

#endif // MOE_RUNTIME_MODULE_H
