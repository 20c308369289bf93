//===- FuzzPtx.cpp - Fuzzing the CUDA emulator's PTX parser ---------------===//
//
// Invariants: text that does not parse gives one printable line; text that
// parses gives kernels whose branches land inside their code and whose
// operands name registers the kernel has; running each kernel (a warp, its
// pointer parameters given one 4 KiB device buffer, a bounded number of
// steps) ends, or fails with one printable line, without touching memory
// outside that buffer (ASan would see it).
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "PtxEmulator.h"
#include "PtxProgram.h"

#include <cstring>
#include <string>
#include <vector>

using namespace moe::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // PTX reaches the driver as a NUL-terminated string.
  std::string text(reinterpret_cast<const char *>(data), size);
  text = text.substr(0, text.find('\0'));
  std::string error;
  std::unique_ptr<ptxemu::Program> program = ptxemu::parseProgram(text, error);
  if (!program) {
    checkOneLine(error);
    return 0;
  }
  FUZZ_CHECK(error.empty(), "an error beside a parsed program: " + error);
  static std::vector<uint8_t> device(4096);
  static bool tracked = [] {
    ptxemu_track(device.data(), device.size());
    ptxemu_set_step_limit(20000);
    return true;
  }();
  (void)tracked;
  char runError[512];
  std::string copy = text;
  void *module = ptxemu_load(copy.c_str(), runError, sizeof runError);
  FUZZ_CHECK(module != nullptr,
             std::string("parsed, then not loaded: ") + runError);
  for (const auto &[name, kernel] : program->kernels) {
    // Every parameter: the buffer's address (as much of it as fits).
    std::vector<std::vector<uint8_t>> values;
    std::vector<void *> params;
    uint64_t address = reinterpret_cast<uintptr_t>(device.data());
    for (unsigned bytes : kernel->paramBytes) {
      values.emplace_back(std::max<unsigned>(bytes, 8), 0);
      std::memcpy(values.back().data(), &address, std::min<unsigned>(bytes, 8));
    }
    for (auto &value : values)
      params.push_back(value.data());
    unsigned grid[3] = {1, 1, 1}, block[3] = {32, 1, 1};
    std::fill(device.begin(), device.end(), 0);
    void *launch = ptxemu_prepare(ptxemu_function(module, name.c_str()), grid,
                                  block, 1024, params.data());
    if (ptxemu_run(launch, runError, sizeof runError))
      checkOneLine(runError);
    ptxemu_release(launch);
  }
  ptxemu_unload(module);
  for (const auto &[name, kernel] : program->kernels) {
    for (const ptxemu::Instruction &inst : kernel->code) {
      if (inst.op == ptxemu::Op::Bra)
        FUZZ_CHECK(inst.target >= 0 &&
                       static_cast<size_t>(inst.target) <= kernel->code.size(),
                   "a branch outside " + name);
      FUZZ_CHECK(inst.guard < static_cast<int32_t>(kernel->registers),
                 "a guard outside the registers of " + name);
      for (const ptxemu::Operand &operand : inst.operands)
        FUZZ_CHECK(operand.reg < static_cast<int32_t>(kernel->registers),
                   "a register outside those of " + name);
    }
  }
  return 0;
}
