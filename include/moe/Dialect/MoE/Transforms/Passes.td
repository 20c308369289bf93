//===- Passes.td - MoE dialect passes -----------------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
#define MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoEDecomposePass : Pass<"moe-decompose"> {
  let summary = "Split moe.layer into gate, dispatch, expert_matmul and combine";
  let description = [{
    Rewrites every `moe.layer` into its parts:

    - router logits `x @ Wr^T` as a `linalg.matmul` accumulating in f32 (plus
      `noise * softplus(x @ Wn^T)` for noisy gating when noise is given);
    - `moe.gate` with the layer's routing attribute and statistics;
    - `moe.dispatch` to expert-grouped rows (`align` rows per expert block);
    - one `moe.expert_matmul` per projection, with the activation (and the
      SwiGLU product for gated experts) as `linalg.generic` on tensors;
    - `moe.combine` back to `[T,H]`;
    - the shared expert, and its sigmoid gate, as `linalg` ops, added to the
      routed output.

    Works on any op nested under the pass's anchor, so it runs on modules and
    functions alike.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"rowAlign", "row-align", "int64_t", /*default=*/"1",
           "Pad each expert's rows in the dispatch buffer to a multiple of "
           "this many rows (the row-block size of a tiled grouped matmul)">
  ];
}

def MoEExportEntriesPass : Pass<"moe-export-entries", "::mlir::ModuleOp"> {
  let summary = "Mark public functions as entry points and record a manifest";
  let description = [{
    Prepares a module on tensors for ahead-of-time compilation
    (docs/CompiledModules.md):

    - sets `llvm.emit_c_interface` on every public `func.func` with a body,
      so that LLVM lowering emits `_mlir_ciface_<name>`;
    - writes the manifest of those entry points (arguments with their dtype,
      shape and `moe.weight` binding, results, and whether tokens may be
      split over threads) as the NUL-terminated JSON string global
      `moe_module_manifest`, replacing an existing one, and removes the
      `moe.weight` argument attributes it recorded;
    - marks every argument of an entry point `bufferization.writable =
      false`: arguments are the caller's buffers (inputs, and weights in a
      read-only checkpoint mapping), so bufferization copies instead of
      writing into them.

    An entry point must take and return ranked tensors of f32, bf16, f16, i32
    or i64; anything else is an error on the function. `token_parallel` is
    set only when the body holds nothing but dropless token-choice moe ops
    without statistics, constants and the return: then every token's output
    depends on that token alone.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
