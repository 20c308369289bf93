//===- CApi.cpp - C API of the MoE-MLIR runtime ---------------------------===//
//
// Each handle holds shared_ptrs, so that the handles can be freed in any
// order: an entry keeps its module and checkpoint alive.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/moe_runtime.h"

#include "moe/Runtime/CudaDriver.h"
#include "moe/Runtime/Module.h"
#include "moe/Version.h"

#include <string>

using namespace moe::runtime;

struct moe_module {
  std::shared_ptr<const CompiledModule> module;
};

struct moe_checkpoint {
  std::shared_ptr<const Checkpoint> checkpoint;
};

struct moe_entry {
  BoundEntry entry;
};

namespace {

thread_local std::string lastError;
thread_local moe_status lastStatus = MOE_STATUS_OK;

/// Records `message` (of kind `code`) as the last error; returns `value`
/// for convenience.
template <typename T>
T fail(const std::string &message, T value,
       StatusCode code = StatusCode::Error) {
  lastError = message;
  lastStatus = static_cast<moe_status>(code);
  return value;
}

/// Records the failure `status` (a Status or a Result) as the last error.
template <typename S, typename T> T failWith(const S &status, T value) {
  return fail(status.error(), value, status.code());
}

/// Every API function starts as a success: moe_last_status() is the status
/// of the last call on the thread.
struct ApiCall {
  ApiCall() { lastStatus = MOE_STATUS_OK; }
};

} // namespace

const char *moe_version(void) { return MOE_VERSION_STRING; }

int moe_api_version(void) { return MOE_API_VERSION; }

int moe_cuda_device_count(void) {
  ApiCall call;
  Result<const CudaDriver *> driver = CudaDriver::get();
  if (!driver)
    return failWith(driver, -1);
  Result<int> count = (*driver)->deviceCount();
  if (!count)
    return failWith(count, -1);
  return *count;
}

const char *moe_cuda_device_describe(int device) {
  ApiCall call;
  Result<const CudaDriver *> driver = CudaDriver::get();
  if (!driver)
    return failWith(driver, nullptr);
  Result<CudaDevice> info = (*driver)->device(device);
  if (!info)
    return failWith(info, nullptr);
  thread_local std::string line;
  line = describeCudaDevice(**driver, *info);
  return line.c_str();
}

const char *moe_last_error(void) { return lastError.c_str(); }

moe_status moe_last_status(void) { return lastStatus; }

moe_module *moe_module_load(const char *path) {
  ApiCall call;
  if (!path)
    return fail("moe_module_load: path is NULL", nullptr);
  Result<std::shared_ptr<const CompiledModule>> module =
      CompiledModule::load(path);
  if (!module)
    return failWith(module, nullptr);
  return new moe_module{module.take()};
}

moe_module *moe_module_load_on_device(const char *path, int device) {
  ApiCall call;
  if (!path)
    return fail("moe_module_load_on_device: path is NULL", nullptr);
  Result<std::shared_ptr<const CompiledModule>> module =
      CompiledModule::load(path, device);
  if (!module)
    return failWith(module, nullptr);
  return new moe_module{module.take()};
}

const char *moe_module_target(const moe_module *module) {
  ApiCall call;
  if (!module)
    return fail("moe_module_target: module is NULL", nullptr);
  return module->module->isGpu() ? "cuda" : "cpu";
}

void moe_module_free(moe_module *module) {
  ApiCall call;
  delete module;
}

int64_t moe_module_num_entries(const moe_module *module) {
  ApiCall call;
  if (!module)
    return fail("moe_module_num_entries: module is NULL", int64_t(-1));
  return static_cast<int64_t>(module->module->manifest().entries.size());
}

const char *moe_module_entry_name(const moe_module *module, int64_t index) {
  ApiCall call;
  if (!module)
    return fail("moe_module_entry_name: module is NULL", nullptr);
  const auto &entries = module->module->manifest().entries;
  if (index < 0 || static_cast<uint64_t>(index) >= entries.size())
    return fail("moe_module_entry_name: index " + std::to_string(index) +
                    " is out of range (the module has " +
                    std::to_string(entries.size()) + " entries)",
                nullptr);
  return entries[static_cast<size_t>(index)].name.c_str();
}

moe_checkpoint *moe_checkpoint_open(const char *path) {
  ApiCall call;
  if (!path)
    return fail("moe_checkpoint_open: path is NULL", nullptr);
  Result<Checkpoint> checkpoint = Checkpoint::open(path);
  if (!checkpoint)
    return failWith(checkpoint, nullptr);
  return new moe_checkpoint{
      std::make_shared<const Checkpoint>(checkpoint.take())};
}

void moe_checkpoint_free(moe_checkpoint *checkpoint) {
  ApiCall call;
  delete checkpoint;
}

moe_entry *moe_entry_bind(const moe_module *module, const char *entry_name,
                          const moe_checkpoint *checkpoint) {
  ApiCall call;
  if (!module || !entry_name || !checkpoint)
    return fail("moe_entry_bind: module, entry name or checkpoint is NULL",
                nullptr);
  Result<BoundEntry> entry =
      BoundEntry::bind(module->module, entry_name, checkpoint->checkpoint);
  if (!entry)
    return failWith(entry, nullptr);
  return new moe_entry{entry.take()};
}

void moe_entry_free(moe_entry *entry) {
  ApiCall call;
  delete entry;
}

int64_t moe_entry_hidden_size(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_hidden_size: entry is NULL", int64_t(-1));
  return entry->entry.inputHiddenSize(0);
}

int64_t moe_entry_output_size(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_output_size: entry is NULL", int64_t(-1));
  if (!entry->entry.isTokenResult(0))
    return fail("moe_entry_output_size: result 0 of '" +
                    printable(entry->entry.name()) + "' is not a [T, H] result",
                int64_t(-1));
  return entry->entry.resultHiddenSize(0);
}

int moe_entry_token_parallel(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_token_parallel: entry is NULL", -1);
  return entry->entry.spec().tokenParallel ? 1 : 0;
}

double moe_entry_packing_seconds(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_packing_seconds: entry is NULL", -1.0);
  return entry->entry.packingSeconds();
}

const char *moe_entry_variant(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_variant: entry is NULL", nullptr);
  return entry->entry.spec().variant.c_str();
}

int moe_entry_run_f32(const moe_entry *entry, const float *x, int64_t tokens,
                      int64_t hidden, float *y, int threads) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_run_f32: entry is NULL", -1);
  const BoundEntry &bound = entry->entry;
  if (bound.numInputs() != 1 || bound.numResults() != 1 ||
      !bound.isTokenResult(0))
    return fail("moe_entry_run_f32: '" + printable(bound.name()) + "' has " +
                    std::to_string(bound.numInputs()) + " inputs and " +
                    std::to_string(bound.numResults()) +
                    " results; it needs exactly one input and one [T, H] "
                    "result",
                -1);
  Status status = bound.checkInput(0, tokens, hidden);
  if (!status)
    return failWith(status, -1);
  MatrixRef input{x, tokens, hidden};
  OutputRef output{y, {tokens, bound.resultHiddenSize(0)}};
  status = bound.run({input}, {output},
                     threads < 1 ? 1u : static_cast<unsigned>(threads));
  if (!status)
    return failWith(status, -1);
  return 0;
}

namespace {

/// Whether `index` names one of `count` items; sets the error if not.
bool checkIndex(const char *function, const char *what, int64_t index,
                size_t count) {
  if (index >= 0 && static_cast<uint64_t>(index) < count)
    return true;
  lastError = std::string(function) + ": " + what + " index " +
              std::to_string(index) + " is out of range [0, " +
              std::to_string(count) + ")";
  return false;
}

} // namespace

int64_t moe_entry_num_inputs(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_num_inputs: entry is NULL", int64_t(-1));
  return static_cast<int64_t>(entry->entry.numInputs());
}

int64_t moe_entry_input_size(const moe_entry *entry, int64_t index) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_input_size: entry is NULL", int64_t(-1));
  if (!checkIndex("moe_entry_input_size", "input", index,
                  entry->entry.numInputs()))
    return -1;
  return entry->entry.inputHiddenSize(static_cast<size_t>(index));
}

int64_t moe_entry_num_results(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_num_results: entry is NULL", int64_t(-1));
  return static_cast<int64_t>(entry->entry.numResults());
}

int64_t moe_entry_result_rank(const moe_entry *entry, int64_t index) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_result_rank: entry is NULL", int64_t(-1));
  if (!checkIndex("moe_entry_result_rank", "result", index,
                  entry->entry.numResults()))
    return -1;
  return static_cast<int64_t>(
      entry->entry.spec().results[static_cast<size_t>(index)].shape.size());
}

int64_t moe_entry_result_dim(const moe_entry *entry, int64_t index,
                             int64_t dim) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_result_dim: entry is NULL", int64_t(-2));
  if (!checkIndex("moe_entry_result_dim", "result", index,
                  entry->entry.numResults()))
    return -2;
  const std::vector<int64_t> &shape =
      entry->entry.spec().results[static_cast<size_t>(index)].shape;
  if (!checkIndex("moe_entry_result_dim", "dimension", dim, shape.size()))
    return -2;
  return shape[static_cast<size_t>(dim)];
}

const char *moe_entry_result_dtype(const moe_entry *entry, int64_t index) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_result_dtype: entry is NULL", nullptr);
  if (!checkIndex("moe_entry_result_dtype", "result", index,
                  entry->entry.numResults()))
    return nullptr;
  return elementTypeName(entry->entry.resultType(static_cast<size_t>(index)));
}

int moe_entry_run(const moe_entry *entry, const float *const *inputs,
                  int64_t num_inputs, int64_t tokens, void *const *outputs,
                  int64_t num_outputs, int threads) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_run: entry is NULL", -1);
  if ((num_inputs > 0 && !inputs) || (num_outputs > 0 && !outputs) ||
      num_inputs < 0 || num_outputs < 0)
    return fail("moe_entry_run: bad input or output array", -1);
  const BoundEntry &bound = entry->entry;
  // Checked before the arrays are read: a wrong count must not make the
  // loops below read past them.
  Status counts = bound.checkCounts(static_cast<uint64_t>(num_inputs),
                                    static_cast<uint64_t>(num_outputs));
  if (!counts)
    return failWith(counts, -1);
  std::vector<MatrixRef> inputRefs;
  for (int64_t i = 0; i < num_inputs; ++i) {
    int64_t hidden =
        static_cast<size_t>(i) < bound.numInputs()
            ? bound.inputHiddenSize(static_cast<size_t>(i))
            : 0;
    inputRefs.push_back({inputs[i], tokens, hidden});
  }
  std::vector<OutputRef> outputRefs;
  for (int64_t r = 0; r < num_outputs; ++r) {
    std::vector<int64_t> shape;
    if (static_cast<size_t>(r) < bound.numResults())
      shape = bound.resultShape(static_cast<size_t>(r), tokens);
    outputRefs.push_back({outputs[r], std::move(shape)});
  }
  Status status = bound.run(inputRefs, outputRefs,
                            threads < 1 ? 1u : static_cast<unsigned>(threads));
  if (!status)
    return failWith(status, -1);
  return 0;
}

int moe_entry_device_io(const moe_entry *entry) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_device_io: entry is NULL", -1);
  return entry->entry.takesDeviceMemory() ? 1 : 0;
}

int moe_entry_run_cuda(const moe_entry *entry, const void *const *inputs,
                       int64_t num_inputs, int64_t tokens, void *const *outputs,
                       int64_t num_outputs, void *stream) {
  ApiCall call;
  if (!entry)
    return fail("moe_entry_run_cuda: entry is NULL", -1);
  if ((num_inputs > 0 && !inputs) || (num_outputs > 0 && !outputs) ||
      num_inputs < 0 || num_outputs < 0)
    return fail("moe_entry_run_cuda: bad input or output array", -1);
  const BoundEntry &bound = entry->entry;
  // Checked before the arrays are read.
  Status counts = bound.checkCounts(static_cast<uint64_t>(num_inputs),
                                    static_cast<uint64_t>(num_outputs));
  if (!counts)
    return failWith(counts, -1);
  Status status = bound.runOnDevice(
      std::vector<const void *>(inputs, inputs + num_inputs), tokens,
      std::vector<void *>(outputs, outputs + num_outputs), stream);
  if (!status)
    return failWith(status, -1);
  return 0;
}
