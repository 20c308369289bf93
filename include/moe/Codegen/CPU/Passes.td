//===- Passes.td - CPU code generation passes ---------------*- tablegen -*-===//

#ifndef MOE_CODEGEN_CPU_PASSES_TD
#define MOE_CODEGEN_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoELowerGroupedMatmulToVectorPass
    : Pass<"moe-lower-grouped-matmul-to-vector"> {
  let summary = "Lower moe.grouped_matmul on memrefs to a register-blocked "
                "vector micro-kernel";
  let description = [{
    Replaces every `moe.grouped_matmul` on memrefs (after bufferization,
    usually one row block per op after `moe-tile-grouped-matmul`) by loops
    over its row blocks and register tiles of `tile-rows x tile-cols`
    outputs. Each output of a register tile keeps a `vector-width`-lane f32
    accumulator over the reduction dimension, fed by contiguous reads of
    its input row and of its expert's weight row (`vector.transfer_read`,
    converted to f32, `vector.fma`): the checkpoint layout `[E, N, K]`
    streams as is, with no transposition. The lanes are summed once per
    output at the end (`vector.reduction`, reassociating) and added to the
    accumulator `init`.

    Any sizes: remainder rows and columns use 1-row and 1-column tiles, the
    reduction's remainder a padded read. Blocks whose expert id is outside
    `[0, E)` are skipped; blocks beyond the rows of `input` or `init` are not
    touched (nothing is read or written out of bounds).
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"16",
           "f32 lanes of an accumulator (16: one AVX-512 register)">,
    Option<"tileRows", "tile-rows", "int64_t", /*default=*/"2",
           "Rows of a register tile">,
    Option<"tileCols", "tile-cols", "int64_t", /*default=*/"8",
           "Columns of a register tile">
  ];
}

def MoEStridedCopiesToLinalgPass : Pass<"moe-strided-copies-to-linalg"> {
  let summary = "Rewrite non-contiguous memref.copy into linalg.copy";
  let description = [{
    `memref.copy` between ranked buffers that are not both of identity
    layout would lower to a call of `memrefCopy` from MLIR's C runner
    utilities, which compiled modules do not link (the runtime provides
    nothing of MLIR). Those copies become `linalg.copy`, lowered to loops
    with the other linalg ops; contiguous copies stay and lower to `memcpy`.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

#endif // MOE_CODEGEN_CPU_PASSES_TD
