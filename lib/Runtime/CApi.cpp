//===- CApi.cpp - C API of the MoE-MLIR runtime ---------------------------===//
//
// Each handle holds shared_ptrs, so that the handles can be freed in any
// order: an entry keeps its module and checkpoint alive.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/moe_runtime.h"

#include "moe/Runtime/Module.h"

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

/// Records `message` as the last error; returns `value` for convenience.
template <typename T> T fail(const std::string &message, T value) {
  lastError = message;
  return value;
}

} // namespace

const char *moe_last_error(void) { return lastError.c_str(); }

moe_module *moe_module_load(const char *path) {
  if (!path)
    return fail("moe_module_load: path is NULL", nullptr);
  Result<std::shared_ptr<const CompiledModule>> module =
      CompiledModule::load(path);
  if (!module)
    return fail(module.error(), nullptr);
  return new moe_module{module.take()};
}

void moe_module_free(moe_module *module) { delete module; }

int64_t moe_module_num_entries(const moe_module *module) {
  if (!module)
    return fail("moe_module_num_entries: module is NULL", int64_t(-1));
  return static_cast<int64_t>(module->module->manifest().entries.size());
}

const char *moe_module_entry_name(const moe_module *module, int64_t index) {
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
  if (!path)
    return fail("moe_checkpoint_open: path is NULL", nullptr);
  Result<Checkpoint> checkpoint = Checkpoint::open(path);
  if (!checkpoint)
    return fail(checkpoint.error(), nullptr);
  return new moe_checkpoint{
      std::make_shared<const Checkpoint>(checkpoint.take())};
}

void moe_checkpoint_free(moe_checkpoint *checkpoint) { delete checkpoint; }

moe_entry *moe_entry_bind(const moe_module *module, const char *entry_name,
                          const moe_checkpoint *checkpoint) {
  if (!module || !entry_name || !checkpoint)
    return fail("moe_entry_bind: module, entry name or checkpoint is NULL",
                nullptr);
  Result<BoundEntry> entry =
      BoundEntry::bind(module->module, entry_name, checkpoint->checkpoint);
  if (!entry)
    return fail(entry.error(), nullptr);
  return new moe_entry{entry.take()};
}

void moe_entry_free(moe_entry *entry) { delete entry; }

int64_t moe_entry_hidden_size(const moe_entry *entry) {
  if (!entry)
    return fail("moe_entry_hidden_size: entry is NULL", int64_t(-1));
  return entry->entry.inputHiddenSize(0);
}

int64_t moe_entry_output_size(const moe_entry *entry) {
  if (!entry)
    return fail("moe_entry_output_size: entry is NULL", int64_t(-1));
  return entry->entry.resultHiddenSize(0);
}

int moe_entry_token_parallel(const moe_entry *entry) {
  if (!entry)
    return fail("moe_entry_token_parallel: entry is NULL", -1);
  return entry->entry.spec().tokenParallel ? 1 : 0;
}

int moe_entry_run_f32(const moe_entry *entry, const float *x, int64_t tokens,
                      int64_t hidden, float *y, int threads) {
  if (!entry)
    return fail("moe_entry_run_f32: entry is NULL", -1);
  const BoundEntry &bound = entry->entry;
  if (bound.numInputs() != 1 || bound.numResults() != 1)
    return fail("moe_entry_run_f32: '" + printable(bound.name()) + "' has " +
                    std::to_string(bound.numInputs()) + " inputs and " +
                    std::to_string(bound.numResults()) +
                    " results; it needs exactly one of each",
                -1);
  Status status = bound.checkInput(0, tokens, hidden);
  if (!status)
    return fail(status.error(), -1);
  MatrixRef input{x, tokens, hidden};
  MutableMatrixRef output{y, tokens, bound.resultHiddenSize(0)};
  status = bound.run({input}, {output},
                     threads < 1 ? 1u : static_cast<unsigned>(threads));
  if (!status)
    return fail(status.error(), -1);
  return 0;
}
