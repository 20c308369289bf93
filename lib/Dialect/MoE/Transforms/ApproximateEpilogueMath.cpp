//===- ApproximateEpilogueMath.cpp - Fast functions in tile epilogues -----===//
//
// A grouped matmul's epilogue runs once per output element, in the tiles'
// write-back, while no product is computed: on a GPU, the exact exp and
// division of SwiGLU's sigmoid (libdevice's __nv_expf, a correctly rounded
// reciprocal) take some 20 instructions per element where the hardware's
// approximations (ex2.approx, rcp.approx) take 4, at a relative error of a
// few f32 ulps, far inside the tolerances of the f32 and bf16 paths, and
// the values are then rounded to the rows' type. Marking the functions
// `afn` lets the lowering choose them.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEAPPROXIMATEEPILOGUEMATHPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether `op` is a function whose approximation keeps a relative error
/// of a few ulps: exp (ex2.approx) and the division (rcp.approx,
/// div.approx). Not the others the lowering has fast forms of (log, sin,
/// cos, tan, pow: absolute error bounds, or errors growing with the
/// argument).
bool approximable(Operation *op) {
  return llvm::isa<math::ExpOp, math::Exp2Op, arith::DivFOp>(op);
}

struct ApproximateEpilogueMathPass
    : moe::impl::MoEApproximateEpilogueMathPassBase<
          ApproximateEpilogueMathPass> {
  void runOnOperation() override {
    getOperation()->walk([](GroupedMatmulOp matmul) {
      if (!matmul.hasEpilogue())
        return;
      matmul.getEpilogueBody().walk([](Operation *op) {
        auto fastMath = llvm::dyn_cast<arith::ArithFastMathInterface>(op);
        if (!fastMath || !approximable(op))
          return;
        arith::FastMathFlags flags =
            fastMath.getFastMathFlagsAttr().getValue() |
            arith::FastMathFlags::afn;
        op->setAttr(fastMath.getFastMathAttrName(),
                    arith::FastMathFlagsAttr::get(op->getContext(), flags));
      });
    });
  }
};

} // namespace
