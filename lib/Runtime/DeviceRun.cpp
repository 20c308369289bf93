//===- DeviceRun.cpp - Running device-io entries on the caller's stream ---===//
//
// A GPU module compiled with device-io (docs/CompiledModules.md) takes its
// inputs and returns its results as device memory and waits for nothing
// before its end. BoundEntry::runOnDevice calls it on the caller's stream
// (detail::CallStream: the module's stream calls get that stream, its one
// wait is left to the caller), passes the caller's buffers for its
// results as its output arguments (the entry writes them in place),
// copies a result that is elsewhere into the caller's buffer on that
// stream and frees what the call allocated in the stream's order: nothing
// waits, so a stream being captured into a CUDA graph captures the whole
// call.
//
//===----------------------------------------------------------------------===//

#include "CudaCalls.h"
#include "EntryCall.h"

#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/CudaDriver.h"
#include "moe/Runtime/Module.h"
#include "moe/Runtime/Result.h"

#include <optional>
#include <string>
#include <vector>

using namespace moe::runtime;
using namespace moe::runtime::detail;

namespace {

/// Whether `view` is a row-major buffer of `shape` with no gaps.
bool isContiguous(const DescriptorBlock::View &view,
                  const std::vector<int64_t> &shape) {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] > 1 && view.strides[d] != expected)
      return false;
    expected *= shape[d];
  }
  return true;
}

} // namespace

bool BoundEntry::takesDeviceMemory() const {
  return module->isGpu() && module->manifest().gpuDeviceIO;
}

Status BoundEntry::runOnDevice(const std::vector<const void *> &inputs,
                               int64_t tokens,
                               const std::vector<void *> &outputs,
                               void *stream) const {
  std::string entry = "'" + printable(name()) + "'";
  if (!takesDeviceMemory())
    return Status::failure(entry + " takes host memory: only a CUDA module "
                                   "compiled with device-io runs on device "
                                   "buffers");
  Status counts = checkCounts(inputs.size(), outputs.size());
  if (!counts)
    return counts;
  if (tokens < 0)
    return Status::failure(entry + ": " + std::to_string(tokens) + " tokens");
  std::vector<size_t> outputBytes;
  for (size_t r = 0; r < outputs.size(); ++r) {
    std::string label = outputLabel(r);
    std::optional<int64_t> numBytes =
        checkedByteSize(resultShape(r, tokens), elementTypeSize(resultType(r)));
    if (!numBytes)
      return Status::failure(label + " is too large");
    if (*numBytes != 0 && !outputs[r])
      return Status::failure(label + " is a null pointer");
    outputBytes.push_back(static_cast<size_t>(*numBytes));
  }
  const ManifestEntry &spec = this->spec();
  DescriptorBlock args;
  size_t nextInput = 0;
  for (size_t i = 0; i < spec.args.size(); ++i) {
    const void *data;
    std::vector<int64_t> sizes;
    if (spec.args[i].kind == ArgKind::Input) {
      size_t index = nextInput++;
      sizes = {tokens, inputHiddenSize(index)};
      std::optional<int64_t> numBytes = checkedByteSize(sizes, sizeof(float));
      if (!numBytes)
        return Status::failure(inputLabel(index) + " is too large");
      if (*numBytes != 0 && !inputs[index])
        return Status::failure(inputLabel(index) + " is a null pointer");
      data = *numBytes ? inputs[index] : emptyBufferAddress();
    } else if (spec.args[i].kind == ArgKind::Output) {
      // The entry writes its result into the caller's buffer.
      size_t result = static_cast<size_t>(spec.args[i].result);
      sizes = resultShape(result, tokens);
      data = outputBytes[result] ? outputs[result] : emptyBufferAddress();
    } else {
      sizes = spec.args[i].shape;
      data = weights[i].data;
    }
    if (!args.addRowMajor(data, sizes))
      return Status::failure(entry + ": argument " + std::to_string(i) +
                             " of shape " + formatShape(sizes) +
                             " has strides that do not fit int64");
  }
  Status fits = checkWorkingMemory(tokens);
  if (!fits)
    return fits;
  std::vector<void *> argPointers;
  for (size_t i = 0; i < args.size(); ++i)
    argPointers.push_back(args.at(i));
  DescriptorBlock results;
  for (const ManifestResult &result : spec.results)
    results.addEmpty(result.shape.size());

  std::string error;
  int previousDevice = currentCudaDevice();
  setCurrentCudaDevice(module->device());
  (void)takeCudaError();
  {
    // The arena ends first: it frees on the caller's stream, after the
    // copies of the results.
    CallStream callerStream(stream);
    CallArena arena;
    callEntry(entryPoint.function, results.at(0), argPointers.data(),
              argPointers.size());
    for (size_t r = 0; r < results.size() && !hasCudaError(); ++r) {
      DescriptorBlock::View view = results.read(r);
      std::vector<int64_t> shape = resultShape(r, tokens);
      std::string label = entry + " returned result " + std::to_string(r);
      if (view.sizes != shape) {
        error = label + " of shape " + formatShape(view.sizes) + ", expected " +
                formatShape(shape);
        break;
      }
      if (outputBytes[r] == 0)
        continue;
      if (!view.aligned || !isContiguous(view, shape)) {
        error = label + " that is not a contiguous device buffer";
        break;
      }
      auto *source =
          static_cast<char *>(view.aligned) +
          view.offset * static_cast<int64_t>(elementTypeSize(resultType(r)));
      // A result written in place (an output argument) needs no copy.
      if (source != outputs[r])
        mgpuMemcpy(outputs[r], source, outputBytes[r], stream);
    }
  }
  setCurrentCudaDevice(previousDevice);
  if (Status gpu = takeCudaError(); !gpu)
    return Status::failure(entry + " on CUDA device " +
                               std::to_string(module->device()) + ": " +
                               gpu.error(),
                           gpu.code());
  if (!error.empty())
    return Status::failure(error);
  return Status::success();
}
