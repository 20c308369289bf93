//===- BoundEntry.cpp - Binding weights and running entry points ----------===//
//
// Weights are bound once: a plain tensor is used in place in the checkpoint
// mapping when it is aligned to its element size (else copied), a stack of
// "{e}" tensors is copied into one 64-byte aligned buffer. Every call builds
// fresh descriptors, so concurrent calls share only the read-only weights.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Module.h"

#include "CudaCalls.h"
#include "EntryCall.h"
#include "Mxfp4.h"
#include "ThreadPool.h"
#include "Workspace.h"
#include "moe/Runtime/Allocation.h"
#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/CudaDriver.h"

#include <algorithm>
#include <chrono>
#include <cstring>

using namespace moe::runtime;
using namespace moe::runtime::detail;

namespace {

/// The checkpoint dtype an argument type binds to.
DType checkpointDType(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return DType::F32;
  case ElementType::BF16:
    return DType::BF16;
  case ElementType::F16:
    return DType::F16;
  case ElementType::I32:
    return DType::I32;
  case ElementType::I64:
    return DType::I64;
  case ElementType::F8E4M3FN:
    return DType::F8E4M3;
  case ElementType::I8:
    return DType::I8;
  }
  return DType::F32;
}

/// The byte size of `shape` with `itemSize`-byte elements, or false when the
/// shape is not representable (CheckedArithmetic.h).
bool byteSize(const std::vector<int64_t> &shape, size_t itemSize,
              size_t &out) {
  std::optional<int64_t> bytes = checkedByteSize(shape, itemSize);
  if (!bytes)
    return false;
  out = static_cast<size_t>(*bytes);
  return true;
}

/// True for the float32 [-1, H] type of inputs and results.
bool isTokenMatrix(ElementType type, const std::vector<int64_t> &shape) {
  return type == ElementType::F32 && shape.size() == 2 && shape[0] == -1 &&
         shape[1] >= 0;
}

/// True for the static shapes of statistics results: every dimension known,
/// f32, i32 or i64.
bool isFixedResult(ElementType type, const std::vector<int64_t> &shape) {
  if (type != ElementType::F32 && type != ElementType::I32 &&
      type != ElementType::I64)
    return false;
  return std::all_of(shape.begin(), shape.end(),
                     [](int64_t dim) { return dim >= 0; });
}

/// Copies the strided elements of a descriptor of shape `sizes` to `dst` in
/// row-major order.
void copyStrided(const uint8_t *src, const std::vector<int64_t> &sizes,
                 const std::vector<int64_t> &strides, size_t itemSize,
                 uint8_t *&dst, size_t dim = 0) {
  if (dim == sizes.size()) {
    std::memcpy(dst, src, itemSize);
    dst += itemSize;
    return;
  }
  for (int64_t i = 0; i < sizes[dim]; ++i)
    copyStrided(src + i * strides[dim] * static_cast<int64_t>(itemSize), sizes,
                strides, itemSize, dst, dim + 1);
}

/// A byte range of an argument buffer.
struct ByteRange {
  const uint8_t *begin;
  const uint8_t *end;

  bool contains(const void *p) const {
    auto *byte = static_cast<const uint8_t *>(p);
    return byte == begin || (begin <= byte && byte < end);
  }
};

/// MLIR marks the descriptor of a global (memref.get_global) with this
/// `allocated` address: it must not be freed.
const void *const kMlirGlobalMarker =
    reinterpret_cast<const void *>(0xdeadbeef);

} // namespace

Result<BoundEntry>
BoundEntry::bind(std::shared_ptr<const CompiledModule> module,
                 std::string_view entryName,
                 std::shared_ptr<const Checkpoint> checkpoint) {
  Result<EntryPoint> entryPoint = module->entry(entryName);
  if (!entryPoint)
    return entryPoint.status();
  const ManifestEntry &spec = *entryPoint->spec;
  std::string where =
      printable(module->path()) + ": entry '" + printable(spec.name) + "': ";

  BoundEntry bound;
  bound.entryPoint = *entryPoint;
  bound.weights.resize(spec.args.size());
  for (size_t i = 0; i < spec.args.size(); ++i) {
    const ManifestArg &arg = spec.args[i];
    if (arg.kind != ArgKind::Input)
      continue;
    if (!isTokenMatrix(arg.type, arg.shape))
      return Result<BoundEntry>::failure(
          where + "argument " + std::to_string(i) + " is an input of type " +
          formatArgType(arg.type, arg.shape) +
          "; the runtime supports f32 [-1, H] inputs only");
    bound.inputArgs.push_back(i);
  }
  if (bound.inputArgs.empty())
    return Result<BoundEntry>::failure(
        where + "no input argument; the runtime needs an f32 [-1, H] input");
  if (spec.results.empty())
    return Result<BoundEntry>::failure(
        where + "no result; the runtime needs an f32 [-1, H] result");
  for (size_t i = 0; i < spec.results.size(); ++i) {
    const ManifestResult &result = spec.results[i];
    if (!isTokenMatrix(result.type, result.shape) &&
        !isFixedResult(result.type, result.shape))
      return Result<BoundEntry>::failure(
          where + "result " + std::to_string(i) + " has type " +
          formatArgType(result.type, result.shape) +
          "; the runtime supports f32 [-1, H] results and results of a "
          "static shape (f32, i32 or i64)");
    size_t numBytes;
    if (!isTokenMatrix(result.type, result.shape) &&
        !byteSize(result.shape, elementTypeSize(result.type), numBytes))
      return Result<BoundEntry>::failure(where + "result " + std::to_string(i) +
                                         " is too large");
  }

  bound.module = std::move(module);
  bound.checkpoint = std::move(checkpoint);
  for (size_t i = 0; i < spec.args.size(); ++i) {
    const ManifestArg &arg = spec.args[i];
    if (arg.kind != ArgKind::Weight)
      continue;
    // Arguments bound to the same tensors (e.g. layers sharing their
    // weights) share one buffer: each stack is gathered, each copy made,
    // once. Packed ones only through the same packing function: two views
    // of one fused tensor (gate and up halves) pack to different buffers.
    auto same = std::find_if(
        spec.args.begin(), spec.args.begin() + i, [&](const ManifestArg &a) {
          return a.kind == ArgKind::Weight && a.weightName == arg.weightName &&
                 a.type == arg.type && a.shape == arg.shape &&
                 a.packingSymbol == arg.packingSymbol &&
                 a.format == arg.format;
        });
    if (same != spec.args.begin() + i) {
      const WeightBuffer &first = bound.weights[same - spec.args.begin()];
      bound.weights[i].data = first.data;
      bound.weights[i].numBytes = first.numBytes;
      continue;
    }
    Status status = bound.bindWeight(i);
    if (status && bound.module->isGpu())
      status = bound.upload(i);
    if (!status)
      return status;
  }
  if (const MpiWorld *world = bound.module->mpiWorld()) {
    Status status = bound.checkSameOnEveryRank(*world);
    if (!status)
      return status.withContext(where);
  }
  return bound;
}

/// FNV-1a, 64 bits.
static uint64_t hashBytes(uint64_t hash, const void *data, size_t size) {
  const auto *bytes = static_cast<const uint8_t *>(data);
  for (size_t i = 0; i < size; ++i)
    hash = (hash ^ bytes[i]) * 0x100000001b3ULL;
  return hash;
}

Status BoundEntry::checkSameOnEveryRank(const MpiWorld &world) const {
  // What the layer computes with: the entry's signature and bindings, and
  // the weights every rank holds whole (the router, shared experts), which
  // tell checkpoints apart. The windows of experts differ by rank.
  uint64_t hash = 0xcbf29ce484222325ULL;
  auto add = [&](const std::string &text) {
    hash = hashBytes(hash, text.data(), text.size() + 1);
  };
  add(spec().name);
  for (size_t i = 0; i < spec().args.size(); ++i) {
    const ManifestArg &arg = spec().args[i];
    add(formatArgType(arg.type, arg.shape) + " " + arg.weightName + " " +
        std::to_string(arg.windowOf) + " " + arg.packingSymbol);
    if (arg.kind == ArgKind::Weight && arg.windowOf == 0 &&
        weights[i].numBytes != 0 && !module->isGpu())
      hash = hashBytes(hash, weights[i].data, weights[i].numBytes);
  }
  for (const ManifestResult &result : spec().results)
    add(formatArgType(result.type, result.shape));
  Result<bool> same = world.allAgree(hash);
  if (!same)
    return same.status();
  if (!*same)
    return Status::failure(
        "the ranks did not load the same layer and checkpoint (the entry's "
        "signature or the weights every rank holds differ between ranks)");
  return Status::success();
}

void BoundEntry::DeviceDeleter::operator()(void *p) const {
  int previousDevice = detail::currentCudaDevice();
  detail::setCurrentCudaDevice(device);
  mgpuMemFree(p, nullptr);
  // A failure to free is not the caller's (a destructor reports nothing).
  (void)detail::takeCudaError();
  detail::setCurrentCudaDevice(previousDevice);
}

Status BoundEntry::upload(size_t argIndex) {
  WeightBuffer &buffer = weights[argIndex];
  if (buffer.numBytes == 0)
    return Status::success();
  int device = module->device();
  int previousDevice = detail::currentCudaDevice();
  detail::setCurrentCudaDevice(device);
  (void)detail::takeCudaError();
  void *copy = mgpuMemAlloc(buffer.numBytes, nullptr, /*hostShared=*/false);
  if (copy) {
    buffer.onDevice =
        std::unique_ptr<void, DeviceDeleter>(copy, DeviceDeleter{device});
    mgpuMemcpy(copy, const_cast<void *>(buffer.data), buffer.numBytes, nullptr);
    mgpuStreamSynchronize(nullptr);
  }
  Status gpu = detail::takeCudaError();
  detail::setCurrentCudaDevice(previousDevice);
  if (!gpu)
    return gpu.withContext("weight '" +
                           printable(spec().args[argIndex].weightName) +
                           "' (argument " + std::to_string(argIndex) + " of '" +
                           printable(name()) + "'): uploading to CUDA device " +
                           std::to_string(device) + ": ");
  // The host copy is not needed any more.
  buffer.owned.reset();
  buffer.data = copy;
  return Status::success();
}

Status BoundEntry::allocateOwned(size_t numBytes, const std::string &context,
                                 WeightBuffer &buffer) {
  // Filled by the caller: not zeroed.
  Result<AlignedBuffer> memory =
      AlignedBuffer::allocate(numBytes, context, /*zero=*/false);
  if (!memory)
    return memory.status();
  buffer.owned.reset(memory->release());
  buffer.data = buffer.owned.get();
  buffer.numBytes = numBytes;
  return Status::success();
}

Status BoundEntry::bindWeight(size_t argIndex) {
  const ManifestArg &arg = spec().args[argIndex];
  std::string argument = "argument " + std::to_string(argIndex) + " of '" +
                         printable(name()) + "'";
  if (!arg.isPacked())
    return bindTensor(arg, arg.shape, argument, weights[argIndex]);
  // The checkpoint layout, packed once into a buffer of the entry.
  WeightBuffer source;
  Status status = bindTensor(arg, arg.packingShape, argument, source);
  if (!status)
    return status;
  return pack(argIndex, source);
}

Status BoundEntry::pack(size_t argIndex, const WeightBuffer &source) {
  const ManifestArg &arg = spec().args[argIndex];
  std::string context = "weight '" + printable(arg.weightName) +
                        "' (argument " + std::to_string(argIndex) + " of '" +
                        printable(name()) + "')";
  WeightBuffer &buffer = weights[argIndex];
  EntryFunction function = module->packingFunction(arg.packingSymbol);
  size_t numBytes = 0;
  bool isStatic = std::all_of(arg.shape.begin(), arg.shape.end(),
                              [](int64_t dim) { return dim >= 0; });
  if (!function || !isStatic ||
      !byteSize(arg.shape, elementTypeSize(arg.type), numBytes))
    return Status::failure(context + ": cannot pack into " +
                           formatArgType(arg.type, arg.shape));
  ++packedWeights;
  if (numBytes == 0) {
    buffer.data = emptyBufferAddress();
    return Status::success();
  }
  Status allocated = allocateOwned(numBytes, context, buffer);
  if (!allocated)
    return allocated;

  DescriptorBlock descriptors;
  if (!descriptors.addRowMajor(source.data, arg.packingShape) ||
      !descriptors.addRowMajor(buffer.data, arg.shape))
    return Status::failure(context + ": strides do not fit int64");
  auto start = std::chrono::steady_clock::now();
  int previousDevice = detail::currentCudaDevice();
  if (module->isGpu()) {
    detail::setCurrentCudaDevice(module->device());
    (void)detail::takeCudaError();
  }
  callPacking(function, descriptors.at(0), descriptors.at(1));
  if (module->isGpu()) {
    detail::setCurrentCudaDevice(previousDevice);
    if (Status gpu = detail::takeCudaError(); !gpu)
      return gpu.withContext(context + ": packing on CUDA device " +
                             std::to_string(module->device()) + ": ");
  }
  packSeconds += std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  return Status::success();
}

Status BoundEntry::bindTensor(const ManifestArg &arg,
                              const std::vector<int64_t> &shape,
                              const std::string &argument,
                              WeightBuffer &buffer) const {
  if (arg.format == WeightFormat::Mxfp4)
    return bindMxfp4(arg, shape, argument, buffer);
  if (arg.format == WeightFormat::E8m0)
    return bindE8m0(arg, shape, argument, buffer);
  DType dtype = checkpointDType(arg.type);
  size_t itemSize = elementTypeSize(arg.type);

  // Checks one checkpoint tensor against `shape`; `context` names it.
  auto check = [&](const std::string &tensorName, const int64_t *shapeBegin,
                   const int64_t *shapeEnd, const std::string &context,
                   const TensorView *&out) -> Status {
    Result<const TensorView *> tensor = checkpoint->lookup(tensorName);
    if (!tensor)
      return Status::failure(context + ": " + tensor.error());
    std::vector<int64_t> expected(shapeBegin, shapeEnd);
    if ((*tensor)->shape != expected)
      return Status::failure(context + ": checkpoint shape " +
                             formatShape((*tensor)->shape) +
                             " does not match " + formatShape(expected));
    // Bytes bind as they are, signed or not (MXFP4 blocks are U8).
    bool bytes = dtype == DType::I8 && (*tensor)->dtype == DType::U8;
    if ((*tensor)->dtype != dtype && !bytes)
      return Status::failure(context + ": checkpoint dtype " +
                             dtypeName((*tensor)->dtype) + " does not match " +
                             elementTypeName(arg.type));
    out = *tensor;
    return Status::success();
  };
  auto allocate = [&](size_t numBytes, const std::string &context) {
    return allocateOwned(numBytes, context, buffer);
  };

  for (int64_t dim : shape)
    if (dim < 0)
      return Status::failure("weight '" + printable(arg.weightName) + "' (" +
                             argument + "): the type " +
                             formatArgType(arg.type, shape) +
                             " has a dynamic dimension");
  const int64_t *dims = shape.data();
  const int64_t *dimsEnd = dims + shape.size();
  // Expert parallelism: the rank's window of W = shape[0] experts of the E
  // of the checkpoint tensor (or stack), from `firstExpert`.
  int64_t firstExpert = 0;
  if (arg.windowOf > 0) {
    const MpiWorld *world = module->mpiWorld();
    if (!world)
      return Status::failure("weight '" + printable(arg.weightName) + "' (" +
                             argument +
                             "): a window of experts in a module that runs "
                             "in no MPI world");
    firstExpert = expertWindowStart(arg.windowOf, world->size(), world->rank());
    // The manifest checked that the window is ceil(E / R) of E experts.
    if (firstExpert < 0 || firstExpert + shape[0] > arg.windowOf)
      return Status::failure("weight '" + printable(arg.weightName) + "' (" +
                             argument + "): a window of " +
                             std::to_string(shape[0]) + " experts from " +
                             std::to_string(firstExpert) + " exceeds its " +
                             std::to_string(arg.windowOf));
  }
  if (!arg.isStacked()) {
    std::string context =
        "weight '" + printable(arg.weightName) + "' (" + argument + ")";
    std::vector<int64_t> whole(dims, dimsEnd);
    if (arg.windowOf > 0)
      whole[0] = arg.windowOf;
    const TensorView *tensor = nullptr;
    Status status = check(arg.weightName, whole.data(),
                          whole.data() + whole.size(), context, tensor);
    if (!status)
      return status;
    // The window's experts are contiguous: a view of the tensor.
    const uint8_t *data = static_cast<const uint8_t *>(tensor->data);
    size_t numBytes = tensor->numBytes;
    if (arg.windowOf > 0) {
      size_t expertBytes = tensor->numBytes / static_cast<size_t>(arg.windowOf);
      data += static_cast<size_t>(firstExpert) * expertBytes;
      numBytes = static_cast<size_t>(shape[0]) * expertBytes;
    }
    buffer.numBytes = numBytes;
    bytesRead += numBytes;
    if (numBytes == 0) {
      buffer.data = emptyBufferAddress();
    } else if (reinterpret_cast<uintptr_t>(data) % itemSize == 0) {
      buffer.data = data; // Zero copy: in the checkpoint mapping.
    } else {
      status = allocate(numBytes, context);
      if (!status)
        return status;
      std::memcpy(buffer.owned.get(), data, numBytes);
    }
    return Status::success();
  }

  // A stack: [E, d1, ...] from the E tensors "{e}" -> 0 .. E-1 of [d1, ...]
  // (of a window, those of its experts).
  int64_t numExperts = shape[0];
  size_t expertBytes = 0;
  size_t placeholder = arg.weightName.find(kExpertPlaceholder);
  std::vector<const TensorView *> experts;
  for (int64_t e = firstExpert; e < firstExpert + numExperts; ++e) {
    std::string tensorName = arg.weightName;
    tensorName.replace(placeholder, kExpertPlaceholder.size(),
                       std::to_string(e));
    std::string context =
        "weight '" + printable(tensorName) + "' (" + argument + ", expert " +
        std::to_string(e) + " of " +
        std::to_string(arg.windowOf > 0 ? arg.windowOf : numExperts) + ")";
    const TensorView *tensor = nullptr;
    Status status = check(tensorName, dims + 1, dimsEnd, context, tensor);
    if (!status)
      return status;
    experts.push_back(tensor);
    expertBytes = tensor->numBytes;
  }
  std::string context =
      "weight '" + printable(arg.weightName) + "' (" + argument + ")";
  size_t totalBytes = 0;
  if (!byteSize(shape, itemSize, totalBytes) ||
      (numExperts != 0 && totalBytes / static_cast<size_t>(numExperts) !=
                              expertBytes))
    return Status::failure(context + ": shape " + formatShape(shape) +
                           " is too large");
  if (totalBytes == 0) {
    buffer.data = emptyBufferAddress();
    buffer.numBytes = 0;
    return Status::success();
  }
  Status status = allocate(totalBytes, context);
  if (!status)
    return status;
  bytesRead += totalBytes;
  auto *out = static_cast<uint8_t *>(buffer.owned.get());
  for (const TensorView *tensor : experts) {
    std::memcpy(out, tensor->data, tensor->numBytes);
    out += tensor->numBytes;
  }
  return Status::success();
}

Status BoundEntry::bindMxfp4(const ManifestArg &arg,
                             const std::vector<int64_t> &shape,
                             const std::string &argument,
                             WeightBuffer &buffer) const {
  std::string context =
      "weight '" + printable(arg.weightName) + "' (" + argument + ", mxfp4)";
  // The manifest checked: static [..., N, K], K a multiple of 32.
  std::vector<int64_t> scalesShape(shape.begin(), shape.end() - 1);
  scalesShape.push_back(shape.back() / 32);
  std::vector<int64_t> blocksShape = scalesShape;
  blocksShape.push_back(16);
  auto lookup = [&](const std::string &suffix,
                    const std::vector<int64_t> &expected,
                    const TensorView *&out) -> Status {
    std::string name = arg.weightName + suffix;
    Result<const TensorView *> tensor = checkpoint->lookup(name);
    if (!tensor)
      return Status::failure(context + ": " + tensor.error());
    if ((*tensor)->dtype != DType::U8)
      return Status::failure(context + ": '" + printable(name) +
                             "' is stored as " + dtypeName((*tensor)->dtype) +
                             ", expected U8");
    if ((*tensor)->shape != expected)
      return Status::failure(context + ": '" + printable(name) +
                             "' has shape " + formatShape((*tensor)->shape) +
                             ", expected " + formatShape(expected));
    out = *tensor;
    return Status::success();
  };
  const TensorView *blocks = nullptr, *scales = nullptr;
  Status status = lookup("_blocks", blocksShape, blocks);
  if (status)
    status = lookup("_scales", scalesShape, scales);
  if (!status)
    return status;
  status = allocateDecoded(shape, sizeof(uint16_t), context, buffer);
  if (!status || buffer.numBytes == 0)
    return status;
  size_t rows = 1;
  for (size_t d = 0; d + 1 < shape.size(); ++d)
    rows *= static_cast<size_t>(shape[d]);
  detail::decodeMxfp4(static_cast<const uint8_t *>(blocks->data),
                      static_cast<const uint8_t *>(scales->data), rows,
                      static_cast<size_t>(shape.back()) / 32,
                      static_cast<uint16_t *>(buffer.owned.get()));
  return Status::success();
}

Status BoundEntry::bindE8m0(const ManifestArg &arg,
                            const std::vector<int64_t> &shape,
                            const std::string &argument,
                            WeightBuffer &buffer) const {
  std::string context =
      "weight '" + printable(arg.weightName) + "' (" + argument + ", e8m0)";
  Result<const TensorView *> tensor = checkpoint->lookup(arg.weightName);
  if (!tensor)
    return Status::failure(context + ": " + tensor.error());
  if ((*tensor)->dtype != DType::U8)
    return Status::failure(context + ": stored as " +
                           dtypeName((*tensor)->dtype) + ", expected U8");
  if ((*tensor)->shape != shape)
    return Status::failure(context + ": checkpoint shape " +
                           formatShape((*tensor)->shape) + " does not match " +
                           formatShape(shape));
  Status status = allocateDecoded(shape, sizeof(float), context, buffer);
  if (!status || buffer.numBytes == 0)
    return status;
  detail::decodeE8m0(static_cast<const uint8_t *>((*tensor)->data),
                     buffer.numBytes / sizeof(float),
                     static_cast<float *>(buffer.owned.get()));
  return Status::success();
}

Status BoundEntry::allocateDecoded(const std::vector<int64_t> &shape,
                                   size_t itemSize, const std::string &context,
                                   WeightBuffer &buffer) {
  size_t numBytes = 0;
  if (!byteSize(shape, itemSize, numBytes))
    return Status::failure(context + ": shape " + formatShape(shape) +
                           " is too large");
  if (numBytes == 0) {
    buffer.data = emptyBufferAddress();
    buffer.numBytes = 0;
    return Status::success();
  }
  return allocateOwned(numBytes, context, buffer);
}

int64_t BoundEntry::inputHiddenSize(size_t index) const {
  return spec().args[inputArgs[index]].shape[1];
}

bool BoundEntry::isTokenResult(size_t index) const {
  const ManifestResult &result = spec().results[index];
  return isTokenMatrix(result.type, result.shape);
}

int64_t BoundEntry::resultHiddenSize(size_t index) const {
  return spec().results[index].shape[1];
}

std::vector<int64_t> BoundEntry::resultShape(size_t index,
                                             int64_t tokens) const {
  std::vector<int64_t> shape = spec().results[index].shape;
  if (isTokenResult(index))
    shape[0] = tokens;
  return shape;
}

std::string BoundEntry::inputLabel(size_t index) const {
  std::string label = "input ";
  if (inputArgs.size() > 1)
    label += std::to_string(index) + " ";
  return label + "of '" + printable(name()) + "'";
}

std::string BoundEntry::outputLabel(size_t index) const {
  std::string label = "output ";
  if (numResults() > 1)
    label += std::to_string(index) + " ";
  return label + "of '" + printable(name()) + "'";
}

Status BoundEntry::checkWorkingMemory(int64_t tokens) {
  return checkAllocation(checkedMul(tokens, sizeof(float)).value_or(INT64_MAX),
                         "the working memory of " + std::to_string(tokens) +
                             " tokens");
}

Status BoundEntry::checkInput(size_t index, int64_t rows, int64_t cols) const {
  int64_t hidden = inputHiddenSize(index);
  if (rows < 0 || cols != hidden)
    return Status::failure(inputLabel(index) + " must be [T, " +
                           std::to_string(hidden) + "] float32, got [" +
                           std::to_string(rows) + ", " + std::to_string(cols) +
                           "]");
  return Status::success();
}

unsigned BoundEntry::threadsFor(int64_t tokens, unsigned threads) const {
  // A module that runs its loops on threads (or on a GPU) gets the whole
  // batch.
  if (module->runsThreadsInside() || module->isGpu() || !spec().tokenParallel ||
      threads <= 1 || tokens <= 1)
    return 1;
  // A result of a static shape covers all tokens: it cannot be split.
  for (size_t i = 0; i < numResults(); ++i)
    if (!isTokenResult(i))
      return 1;
  return static_cast<unsigned>(
      std::min<int64_t>(static_cast<int64_t>(threads), tokens));
}

Status BoundEntry::checkCounts(uint64_t givenInputs,
                               uint64_t givenOutputs) const {
  std::string entry = "'" + printable(name()) + "'";
  if (givenInputs != numInputs())
    return Status::failure(entry + " takes " + std::to_string(numInputs()) +
                           (numInputs() == 1 ? " input" : " inputs") +
                           ", got " + std::to_string(givenInputs));
  if (givenOutputs != numResults())
    return Status::failure(entry + " has " + std::to_string(numResults()) +
                           (numResults() == 1 ? " result" : " results") +
                           ", got " + std::to_string(givenOutputs) +
                           (givenOutputs == 1 ? " output" : " outputs"));
  return Status::success();
}

Status BoundEntry::run(const std::vector<MatrixRef> &inputs,
                       const std::vector<OutputRef> &outputs,
                       unsigned threads) const {
  std::string entry = "'" + printable(name()) + "'";
  if (takesDeviceMemory())
    return Status::failure(entry + " takes device memory (its module was "
                                   "compiled with device-io): run it on "
                                   "device buffers (moe_entry_run_cuda)");
  Status counts = checkCounts(inputs.size(), outputs.size());
  if (!counts)
    return counts;
  int64_t tokens = inputs[0].rows;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Status status = checkInput(i, inputs[i].rows, inputs[i].cols);
    if (!status)
      return status;
    if (inputs[i].rows != tokens)
      return Status::failure(inputLabel(i) + " has " +
                             std::to_string(inputs[i].rows) +
                             " tokens, input 0 has " + std::to_string(tokens));
    size_t numBytes;
    if (!byteSize({inputs[i].rows, inputs[i].cols}, sizeof(float), numBytes))
      return Status::failure(inputLabel(i) + " is too large");
    if (numBytes != 0 && !inputs[i].data)
      return Status::failure(inputLabel(i) + " is a null pointer");
  }
  // E.g. T = 2^40 with H = 0, refused before the call.
  Status fits = checkWorkingMemory(tokens);
  if (!fits)
    return fits;
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::vector<int64_t> shape = resultShape(i, tokens);
    std::string label = outputLabel(i);
    if (outputs[i].shape != shape)
      return Status::failure(label + " must be " + formatShape(shape) + " " +
                             elementTypeName(resultType(i)) + ", got " +
                             formatShape(outputs[i].shape));
    size_t numBytes;
    if (!byteSize(shape, elementTypeSize(resultType(i)), numBytes))
      return Status::failure(label + " is too large");
    if (numBytes != 0 && !outputs[i].data)
      return Status::failure(label + " is a null pointer");
  }

  module->useThreads(threads);
  unsigned numSlices = threadsFor(tokens, threads);
  if (numSlices == 1)
    return runSlice(inputs, outputs, 0, tokens);
  std::vector<std::string> errors(numSlices);
  // In 128 bits: tokens * s may not fit int64 (T can be near 2^61 when
  // H = 0).
  auto bound = [&](unsigned k) {
    return static_cast<int64_t>(static_cast<__int128>(tokens) * k /
                                numSlices);
  };
  parallelFor(numSlices, [&](unsigned s) {
    Status status = runSlice(inputs, outputs, bound(s), bound(s + 1));
    if (!status)
      errors[s] = status.error();
  });
  for (const std::string &error : errors)
    if (!error.empty())
      return Status::failure(error);
  return Status::success();
}

Status BoundEntry::runSlice(const std::vector<MatrixRef> &inputs,
                            const std::vector<OutputRef> &outputs,
                            int64_t begin, int64_t end) const {
  const ManifestEntry &entry = spec();
  int64_t rows = end - begin;
  DescriptorBlock args;
  std::vector<ByteRange> argBuffers;
  size_t nextInput = 0;
  for (size_t i = 0; i < entry.args.size(); ++i) {
    const void *data;
    size_t numBytes;
    std::vector<int64_t> sizes;
    if (entry.args[i].kind == ArgKind::Input) {
      const MatrixRef &input = inputs[nextInput++];
      sizes = {rows, input.cols};
      // run() checked that the whole [T, H] matrix is representable; a
      // slice of it is too.
      if (!byteSize(sizes, sizeof(float), numBytes))
        return Status::failure("'" + printable(entry.name) + "': input slice " +
                               formatShape(sizes) + " is too large");
      data = numBytes ? input.data + begin * input.cols : emptyBufferAddress();
    } else {
      sizes = entry.args[i].shape;
      data = weights[i].data;
      numBytes = weights[i].numBytes;
    }
    auto *bytes = static_cast<const uint8_t *>(data);
    argBuffers.push_back({bytes, bytes + numBytes});
    if (!args.addRowMajor(data, sizes))
      return Status::failure("'" + printable(entry.name) + "': argument " +
                             std::to_string(i) + " of shape " +
                             formatShape(sizes) + " has strides that do not "
                             "fit int64");
  }
  std::vector<void *> argPointers;
  for (size_t i = 0; i < args.size(); ++i)
    argPointers.push_back(args.at(i));

  DescriptorBlock results;
  for (const ManifestResult &result : entry.results)
    results.addEmpty(result.shape.size());
  // A GPU module's calls run on its device; their first error (they
  // cannot return one) is the call's.
  int previousDevice = detail::currentCudaDevice();
  if (module->isGpu()) {
    detail::setCurrentCudaDevice(module->device());
    (void)detail::takeCudaError();
    // The device buffers the call does not free are freed as it returns.
    detail::CallArena arena;
    callEntry(entryPoint.function, results.at(0), argPointers.data(),
              argPointers.size());
  } else {
    callEntry(entryPoint.function, results.at(0), argPointers.data(),
              argPointers.size());
  }
  std::string error;
  StatusCode errorCode = StatusCode::Error;
  if (module->isGpu()) {
    detail::setCurrentCudaDevice(previousDevice);
    if (Status gpu = detail::takeCudaError(); !gpu) {
      error = "'" + printable(entry.name) + "' on CUDA device " +
              std::to_string(module->device()) + ": " + gpu.error();
      errorCode = gpu.code();
    }
  }

  // Copy every result out, then release the buffers whatever happened.
  std::vector<void *> toFree;
  for (size_t r = 0; r < results.size(); ++r) {
    DescriptorBlock::View view = results.read(r);
    if (view.allocated && view.allocated != kMlirGlobalMarker &&
        std::none_of(argBuffers.begin(), argBuffers.end(),
                     [&](const ByteRange &range) {
                       return range.contains(view.allocated);
                     }) &&
        std::find(toFree.begin(), toFree.end(), view.allocated) ==
            toFree.end())
      toFree.push_back(view.allocated);
    if (!error.empty())
      continue;
    std::string label = "'" + printable(entry.name) + "' returned result " +
                        std::to_string(r);
    if (!isTokenResult(r)) {
      // Only whole-batch calls reach here (threadsFor).
      const std::vector<int64_t> &shape = entry.results[r].shape;
      if (view.sizes != shape) {
        error = label + " of shape " + formatShape(view.sizes) +
                ", expected " + formatShape(shape);
        continue;
      }
      if (checkedNumElements(shape).value_or(0) == 0)
        continue;
      if (!view.aligned) {
        error = label + " with a null buffer";
        continue;
      }
      size_t itemSize = elementTypeSize(entry.results[r].type);
      auto *dst = static_cast<uint8_t *>(outputs[r].data);
      copyStrided(static_cast<const uint8_t *>(view.aligned) +
                      view.offset * static_cast<int64_t>(itemSize),
                  view.sizes, view.strides, itemSize, dst);
      continue;
    }
    int64_t hidden = resultHiddenSize(r);
    if (view.sizes != std::vector<int64_t>{rows, hidden}) {
      error = label + " of shape " + formatShape(view.sizes) + ", expected " +
              formatShape({rows, hidden});
      continue;
    }
    if (rows == 0 || hidden == 0)
      continue;
    if (!view.aligned) {
      error = label + " with a null buffer";
      continue;
    }
    const float *src = static_cast<const float *>(view.aligned) + view.offset;
    float *dst = static_cast<float *>(outputs[r].data) + begin * hidden;
    int64_t rowStride = view.strides[0], colStride = view.strides[1];
    for (int64_t t = 0; t < rows; ++t) {
      const float *row = src + t * rowStride;
      if (colStride == 1) {
        std::memcpy(dst + t * hidden, row, hidden * sizeof(float));
        continue;
      }
      for (int64_t h = 0; h < hidden; ++h)
        dst[t * hidden + h] = row[h * colStride];
    }
  }
  // Modules allocate through the runtime's workspace (docs/CompiledModules.md);
  // workspaceFree passes blocks of plain malloc on to free.
  for (void *allocated : toFree)
    workspaceFree(allocated);
  if (!error.empty())
    return Status::failure(error, errorCode);
  return Status::success();
}
