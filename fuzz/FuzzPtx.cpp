//===- FuzzPtx.cpp - Fuzzing the CUDA emulator's PTX parser ---------------===//
//
// Invariants: text that does not parse gives one printable line; text that
// parses gives kernels whose branches land inside their code and whose
// operands name registers the kernel has.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "PtxProgram.h"

#include <string>

using namespace moe::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  std::string error;
  std::unique_ptr<ptxemu::Program> program = ptxemu::parseProgram(text, error);
  if (!program) {
    checkOneLine(error);
    return 0;
  }
  FUZZ_CHECK(error.empty(), "an error beside a parsed program: " + error);
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
