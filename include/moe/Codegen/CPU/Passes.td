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
    output at the end and added to the accumulator `init`: for a tile row
    of a power-of-two number of columns (at most `vector-width`), by
    pairwise halving of all its accumulators at once (`vector.shuffle` +
    add: the sums of the row's outputs as one vector, added with one vector
    read and write); otherwise one `vector.reduction` (reassociating) per
    output.

    Any sizes: remainder rows and columns use 1-row and 1-column tiles, the
    reduction's remainder a padded read.

    A grouped matmul with **packed** weights (`[E, NP, K, P]`) gets the
    outer-product kernel instead: register tiles of `panel-rows` rows x one
    panel of P columns, each reduction step one contiguous row of the panel
    (`P / vector-width` vector reads) and one broadcast input element per
    row (`vector.broadcast`, `vector.fma`), accumulators written back with
    one vector update each (masked past N); no lane sums. Left-over rows run
    as tiles of `panel-rows / 2`, `/ 4`, ..., 1 rows, and tiles with few
    accumulators (one row: decode) split the reduction over several
    accumulator sets.

    bf16 weights packed in **pairs** of K (`[E, NP, KP, P, 2]`) are
    multiplied two K at a time: each block's filled rows are first staged as
    bf16 pairs (gathered, rounded to bf16, an odd K padded with a zero) in a
    buffer of their own, then each reduction step broadcasts one 32-bit
    pair per row and multiplies it with a row of the panel's pairs. With
    `bf16-dot` that is `x86vector.avx512.dot` (`vdpbf16ps`: the target needs
    AVX512_BF16, AVX512VL below 16 lanes, and convert-vector-to-llvm its
    x86vector patterns) on vectors of 4, 8 or 16 lanes; without it, or for
    panels that split into other vectors, the same products as two f32 FMAs
    per pair, the bf16 halves widened by shifts. Either way the inputs are rounded to bf16, so the
    results are those of a bf16 matmul (within docs/Semantics.md's bf16
    tolerance of the f32 one).

    Block-scaled **FP8** weights (`f8E4M3FN` with `scale` and `block`) are
    read one byte per weight and decoded in registers. In panels of single
    K each vector of bytes is widened to f32 (`arith.extf`, lowered by
    `moe-expand-float8`) and multiplied by its block's scale. In panels of
    pairs of K (the block's depth even) each row of byte pairs decodes to
    the bf16 pairs of the exact e4m3 values and takes the pair step above,
    each depth block's sums then added times its scale. With
    `fp8-byte-lookup` (16 lanes) the decode is two byte-table lookups per
    64 weights (`vpermi2b`, through `llvm.call_intrinsic`: the target needs
    AVX512_VBMI) and in-lane unpacks, repeated by every tile; otherwise the
    widening to f32 and its high half, and a row block of more than
    `panel-rows` rows first decodes its expert's panels once into a staging
    buffer (kept while the next blocks are that expert's).

    **MXFP4** weights (`i8` e2m1 pairs, packed `[E, NP, KP, P]`) are read
    half a byte per weight: each vector of columns is one byte per column,
    widened to 32-bit lanes whose two nibbles decode to the bf16 pair of
    the pair step (exact): with `fp8-byte-lookup` by one word-table lookup
    (`vpermw`, the byte or'ed with itself shifted into the lane's high
    half), in registers by every tile; otherwise by integer arithmetic and
    a select, staged or decoded in registers as FP8 pairs are. Their
    per-column scales, packed in the weights' panels (`[E, NP, KB, P]`),
    multiply each depth block's sums as a vector.

    Blocks whose expert id is outside
    `[0, E)` are skipped; blocks beyond the rows of `input` or `init` are not
    touched (nothing is read or written out of bounds). An epilogue that
    writes bf16 or f16 rows rounds each vector as it stores it.
    Block-scaled weights in the checkpoint layout have no vector kernel:
    they are left for `moe-grouped-matmul-to-loops`, as are `atomic`
    scatters (whose adds must be atomic read-modify-writes).
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::x86vector::X86VectorDialect"];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"16",
           "f32 lanes of an accumulator (16: one AVX-512 register)">,
    Option<"tileRows", "tile-rows", "int64_t", /*default=*/"2",
           "Rows of a register tile">,
    Option<"tileCols", "tile-cols", "int64_t", /*default=*/"8",
           "Columns of a register tile">,
    Option<"panelRows", "panel-rows", "int64_t", /*default=*/"8",
           "Rows of a register tile of the packed-weight kernel (1 to 32)">,
    Option<"bf16Dot", "bf16-dot", "bool", /*default=*/"false",
           "Multiply weights packed in pairs of K with vdpbf16ps "
           "(x86vector.avx512.dot; the target needs AVX512_BF16) instead of "
           "f32 FMAs">,
    Option<"fp8ByteLookup", "fp8-byte-lookup", "bool", /*default=*/"false",
           "Decode FP8 weights packed in pairs of K by byte-table lookups "
           "(vpermi2b) and MXFP4 ones by word-table lookups (vpermw; the "
           "target needs AVX512_VBMI) instead of widening each to f32 (FP8) "
           "or decoding it by arithmetic (MXFP4)">
  ];
}

def MoELowerTransposedMatmulToVectorPass
    : Pass<"moe-lower-transposed-matmul-to-vector"> {
  let summary = "Lower linalg.matmul and linalg.batch_matmul with a "
                "transposed right operand on memrefs to the register-blocked "
                "vector micro-kernel, tiles in parallel";
  let description = [{
    Replaces every `linalg.matmul` on memrefs whose indexing maps are
    `(m, k), (n, k) -> (m, n)` (`C += A * B^T`: a router's logits `x *
    W^T`, a shared expert's or a dense layer's projections, with weights in
    the checkpoint layout `[N, K]`), `A` and `C` f32 and `B` f32, bf16 or
    f16, all with a unit innermost stride, by an `scf.forall` over tiles
    of `tile-n` columns x `block-rows` rows (columns outermost, so that a
    thread's weight panel stays in cache across the rows), each tile the
    register-tiled dot-product kernel of `moe-lower-grouped-matmul-to-vector`
    (same `vector-width`, `tile-rows`, `tile-cols`). Any sizes: partial
    tiles are clamped, and the reduction's remainder is a padded read.
    `linalg.batch_matmul` with maps `(b, m, k), (b, n, k) -> (b, m, n)` (the
    expert matmuls of the capacity layout `[E, C, K] x [E, N, K]^T`) is
    handled the same way with the batch as one more, outermost, forall
    dimension. Other matmuls are left alone (they lower to loops).
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
  let options = [
    Option<"blockRows", "block-rows", "int64_t", /*default=*/"16",
           "Rows of a parallel tile">,
    Option<"tileN", "tile-n", "int64_t", /*default=*/"64",
           "Columns of a parallel tile">,
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"16",
           "f32 lanes of an accumulator (16: one AVX-512 register)">,
    Option<"tileRows", "tile-rows", "int64_t", /*default=*/"2",
           "Rows of a register tile">,
    Option<"tileCols", "tile-cols", "int64_t", /*default=*/"8",
           "Columns of a register tile">
  ];
}

def MoEParallelizeOuterDimensionPass
    : Pass<"moe-parallelize-outer-dimension"> {
  let summary = "Keep only the outermost dimension of each scf.parallel "
                "parallel, and nested scf.parallel sequential";
  let description = [{
    Rewrites every `scf.parallel` without reductions (as
    `convert-linalg-to-parallel-loops` makes them):

    - one nested in another `scf.parallel` or an `scf.forall` becomes a
      nest of `scf.for` (one level of threads; no nested parallel region
      per outer iteration);
    - an outermost one over several dimensions becomes an `scf.parallel`
      over its first dimension around an `scf.for` nest over the others.

    Thread runtimes split a multi-dimensional parallel loop by collapsing
    it into one linear loop (OpenMP `collapse`), recomputing every index
    with divisions per iteration, which also keeps the innermost loop from
    being vectorized; after this pass the innermost dimension (contiguous
    in row-major buffers) is a plain counted loop. `scf.forall` ops are not
    touched: tiled loops keep all their dimensions parallel.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect"];
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

def MoELowerPackOpsPass : Pass<"moe-lower-pack-ops"> {
  let summary = "Rewrite linalg.pack on tensors as pad, expand_shape and "
                "transpose";
  let description = [{
    One-shot bufferization has no model for `linalg.pack`. This pass
    rewrites each `linalg.pack` on tensors with upstream `linalg::lowerPack`
    into `tensor.pad` (the padding value past the source), a
    `tensor.expand_shape` splitting each tiled dimension into (outer,
    tile), and a `linalg.transpose` into the pack's destination, all of
    which bufferize (the transpose in place into the destination).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def MoEGuardParallelRegionsPass : Pass<"moe-guard-parallel-regions"> {
  let summary = "Run OpenMP parallel regions with too few iterations on the "
                "calling thread";
  let description = [{
    Gives every `omp.parallel` whose body is one worksharing loop
    (`omp.wsloop` around an `omp.loop_nest`, as `convert-scf-to-openmp` makes
    them) an `if` clause: the product of the loop's trip counts, computed at
    run time from its bounds, is at least `min-iterations` (ANDed with an
    existing clause). A region whose loop has fewer iterations (a loop over
    the tokens at T = 1, over the row blocks of one expert) then runs on the
    calling thread: the team is not woken and joined for nothing, which at
    T = 1 costs more than the work of the small loops. Regions of another
    form, or whose bounds are defined inside the region, are left alone.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::omp::OpenMPDialect"];
  let options = [
    Option<"minIterations", "min-iterations", "int64_t", /*default=*/"2",
           "Fewest iterations a worksharing loop needs to run on the team">
  ];
}

def MoEVectorizeElementwisePass : Pass<"moe-vectorize-elementwise"> {
  let summary = "Run element-wise linalg.generic ops on memrefs on vectors";
  let description = [{
    Replaces every `linalg.generic` on memrefs whose loops are all parallel,
    whose indexing maps are all the identity and whose body holds only
    element-wise ops on scalars (arith, math: activations, conversions,
    residual adds) by loops over the same elements `vector-width` at a time:
    an `scf.parallel` over the outer dimensions and, innermost, an `scf.for`
    stepping by `vector-width`, the body's ops cloned on vectors (values
    from outside the body broadcast), then one out-of-bounds transfer for
    the remainder (padded reads, masked writes). The vector math ops created
    use upstream's polynomial approximations
    (`populateMathPolynomialApproximationPatterns`: exp, tanh, erf, ...);
    scalar math elsewhere is left alone. Other generics are unchanged.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"16",
           "Lanes per vector (16 f32: one AVX-512 register)">
  ];
}

def MoEExpandFloat8Pass : Pass<"moe-expand-float8"> {
  let summary = "Expand conversions from FP8 (f8E4M3FN) to f32 into integer "
                "arithmetic";
  let description = [{
    LLVM has no FP8 types (the LLVM type converter stores them as i8), so
    `arith.extf` from `f8E4M3FN` (scalars or vectors) to `f32` becomes
    integer arithmetic on the bits: a normal value's exponent is rebiased
    (7 to 127) and its 3 mantissa bits shifted into place, a subnormal one
    is `mantissa * 2^-9`, and `S.1111.111` is a NaN (e4m3fn has no
    infinities), the sign kept in every case. Conversions to other float
    types go through f32. Block-scaled FP8 weights (DeepSeek-V3) are
    decoded this way wherever they are read.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def MoEMoveHalfFloatsAsIntegersPass
    : Pass<"moe-move-half-floats-as-integers"> {
  let summary = "Move bf16 and f16 values in the LLVM dialect as i16";
  let description = [{
    Rewrites each `llvm.load`, `llvm.store`, `llvm.intr.masked.load`,
    `llvm.intr.masked.store` and `llvm.select` of a `bf16` or `f16` scalar
    or vector into the same operation on `i16` values (of the same shape),
    between `llvm.bitcast`s, then folds every chain of bitcasts into one
    (a load's bits bitcast to bf16 and on to `i32` pairs become one bitcast
    of the `i16` bits), so that where the bits are only moved (a copy, or
    the integer arithmetic that `arith-expand` makes of bf16 conversions) no
    16-bit float value is left. The loads keep their alignment, volatility
    and ordering.

    The CPU pipeline runs it on the LLVM dialect it produces: x86 code
    generation moves a bf16 value that is not a register type (AVX2 targets)
    or a scalar one (AVX512_BF16) through f32 and rounds it back with a
    compiler-rt call (`__truncsfbf2`) that a module loaded by the runtime
    cannot resolve; a copy of a bf16 bias, and on AVX2 the masked store of a
    tile's rows rounded to bf16, were such calls. (LLVM's instruction
    combiner would otherwise move a bitcast to bf16 past a select into the
    store that follows it.)
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // MOE_CODEGEN_CPU_PASSES_TD
