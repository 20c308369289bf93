//===- Passes.td - MoE conversion passes --------------------*- tablegen -*-===//
//
// Every pass that lowers the moe dialect to other dialects.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_CONVERSION_PASSES_TD
#define MOE_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertMoEToLinalgPass : Pass<"convert-moe-to-linalg"> {
  let summary = "Lower moe ops to linalg, scf, tensor, arith and math ops";
  let description = [{
    The reference lowering of the routing ops, on tensors (dynamic token
    count). `moe.layer` is decomposed first (as `--moe-decompose` with
    `row-align=1`).

    - `moe.gate`: scores (softmax or sigmoid) and selection scores (plus the
      selection bias) as `linalg.generic` over `[T,E]`; group scores and the
      kept groups of group-limited routing as `linalg.generic` over `[T,G]`;
      then, per token, K passes of an arg-max over the experts (ties to the
      lower index; NaN ranks above every number, so NaN inputs still select
      K distinct experts and propagate), followed by renormalization and
      scaling.
    - `moe.dispatch`: a counting sort. Per-expert counts (per chunk of 64
      tokens, the chunks in parallel), their (aligned) prefix sum, then one
      sequential pass gives each taken assignment its row (the row map) and
      each row its token; a parallel loop over the rows copies each row from
      its token, zeros for padding. The capacity layout places rows in
      `[E,C,H]` slots as it assigns them.
    - `moe.routing_plan`: the same counting sort without the copy: the
      offsets, the table of row blocks (expert, filled rows) and the row
      sources and row map of the placement.
    - `moe.expert_matmul`: a loop over experts; each expert multiplies only
      its own rows (a dynamic slice) with its `[N,K]` weight slice
      (`linalg.matmul`, f32 accumulation).
    - `moe.combine`: per output element, a gather-sum over the token's K rows
      through the row map (no one-hot matrices, no atomics).

    - routing statistics (`moe.gate` results after the ids): range-guarded
      scatter-adds into `[E]` vectors for the counts, and scf reductions in
      f32 for the losses (docs/Routing.md); every loss is 0 when T = 0.

    Every routing the verifiers accept is lowered. `moe.grouped_matmul` is
    already in destination-passing form and stays: it bufferizes as is and
    is lowered after bufferization (`moe-grouped-matmul-to-loops` or
    `moe-lower-grouped-matmul-to-vector`).
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
}

def MoEFuseRoutingPass : Pass<"moe-fuse-routing"> {
  let summary = "Route the tokens, count per expert and build the routing "
                "plan in one loop nest";
  let description = [{
    Lowers each `moe.routing_plan` whose ids come from a token-choice
    `moe.gate`, together with that gate, into one parallel loop over chunks
    of tokens. Per token: the softmax or sigmoid scores of its experts (in a
    scratch row of E values that its chunk owns), the selection bias, the
    group scores and kept groups of group-limited routing, the top-K in
    registers (one pass over the experts), random second choices, the
    combine weights and the ids; per chunk, the count of each expert. After
    the loop come only the aligned offsets, the table of row blocks and the
    placement of the routing plan. No `[T,E]` tensor other than the logits
    is formed, and nothing sorts.

    The arithmetic is that of `convert-moe-to-linalg`'s gate, operation for
    operation, so the weights, ids and plan are bitwise the same. Gates that
    rank tokens against each other (capacity, expert choice), with top-K
    above 16, or with statistics results stay for `convert-moe-to-linalg`.

    With `token-parallel`, the tokens are routed by a loop over the tokens
    (each with its own scratch row) and counted by a second loop over
    chunks of floor(sqrt(T / K)) tokens, 1 to 64 (a chunk's thread counts
    and places its tokens' K choices one after another, and each expert's
    thread sums the chunks' counts: the root balances the two): T parallel
    iterations instead of ceil(T / 64) (a GPU's threads), the same
    arithmetic.

    With `lane-max-tokens=N` (and `token-parallel`), up to N tokens are
    routed by a second loop whose per-token work is parallel over the
    experts: the softmax's maximum and sum, each group's best two scores and
    each of the K choices are reductions over the experts (`scf.parallel`
    with `scf.reduce`; a choice is the largest of 64-bit keys that order
    the experts as the selection does: score first, NaN first, ties to the
    lower expert, below the previous choice's key), the scores of a token
    are written by a parallel loop. A GPU runs each such token on the lanes
    of a warp (moe-map-to-gpu), where one thread would take the E x K steps
    of the insertion in order. The host picks the loop from T (`scf.if`).
    The sums are reassociated where the lanes split them (within the
    tolerance of docs/Semantics.md); the selection order is the same.

    Example: `moe-opt --moe-form-grouped-matmul --moe-fuse-routing` turns
    the `moe.gate` + `moe.routing_plan` of a decomposed layer into an
    `scf.forall` over `ceil(T / 64)` chunks followed by the plan's scalar
    loops.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"tokenParallel", "token-parallel", "bool", /*default=*/"false",
           "Route in a loop over the tokens, then count per chunk of tokens "
           "in a second loop (T parallel iterations)">,
    Option<"laneMaxTokens", "lane-max-tokens", "int64_t", /*default=*/"0",
           "Up to this many tokens, route them by a loop whose per-token "
           "work is parallel over the experts (reductions for the softmax, "
           "the group scores and each choice; with token-parallel; 0: "
           "never)">,
  ];
}

def ConvertShardAllToAllToMoEPass
    : Pass<"moe-convert-shard-all-to-all", "::mlir::ModuleOp"> {
  let summary = "shard.all_to_all on tensors to moe.all_to_all over "
                "MPI_COMM_WORLD";
  let description = [{
    Lowers upstream `shard.all_to_all` (split each device's tensor along
    `split_axis` into one piece per device of the group, send piece `p` to
    device `p`, concatenate what arrives along `concat_axis`) to the
    project's `moe.all_to_all`, whose lowering calls `MPI_Alltoallv`, for a
    group that is the whole grid: the grid's devices are the ranks of
    `MPI_COMM_WORLD`, in row-major order. On the capacity layout of
    expert parallelism, `[E, C, H]` split along the experts (0) and
    concatenated along the slots (1), each rank gets its `E / R` experts'
    slots from every rank, `[E / R, R * C, H]`.

    The split axis moves to the front (`linalg.transpose`), the rows go out
    in equal counts (`dim / R` per rank), and what arrives, `[R, dim / R,
    ...]` in source order, is interleaved into the concatenation axis
    (`tensor.expand_shape`, `linalg.transpose`, `tensor.collapse_shape`)
    before the split axis moves back. A group of one device is the
    identity. Tensors need static shapes. The module is marked as running
    on the grid's number of ranks (`moe.mpi_ranks`) with `mpi`'s ABI unless
    it has a DLTI map already; unused `shard.grid` symbols are removed.
  }];
  let dependentDialects = ["::mlir::DLTIDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::moe::MoeDialect",
                           "::mlir::mpi::MPIDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"mpi", "mpi", "std::string", /*default=*/"\"OpenMPI\"",
           "The MPI library whose ABI the module calls: OpenMPI or MPICH">
  ];
}

#endif // MOE_CONVERSION_PASSES_TD
