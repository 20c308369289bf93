//===- Passes.td - MoE dialect passes -----------------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
#define MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoEShardExpertsPass : Pass<"moe-shard-experts", "::mlir::ModuleOp"> {
  let summary = "Expert parallelism: each rank holds and runs a window of "
                "the experts";
  let description = [{
    Prepares a module to run on the `ranks` ranks of `MPI_COMM_WORLD`, each
    on its own tokens: every `moe.layer` gets `expert_ranks = ranks`, and
    its expert operands (weights, biases, block scales) become the rank's
    window of `W = ceil(E / ranks)` experts, which starts at
    `min(floor(r E / ranks), E - W)` on rank `r` (docs/ExpertParallelism.md):

    - an entry-point argument used only as such operands (of layers of the
      same `E`) takes the window's type and `moe.expert_window = E`: the
      runtime binds only the rank's experts of the checkpoint tensor;
    - any other operand (a view of a fused checkpoint tensor, a computed
      value) is sliced, `tensor.extract_slice` at the rank's window start.

    The module gets `moe.mpi_ranks = ranks` and, unless it has one, the
    DLTI entry `"MPI:Implementation" = mpi` that the MPI lowering reads.
    `moe-decompose` then builds the exchange. Layers with `expert_ranks`
    already are left as they are; `ranks` above a layer's `E` is an error.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::DLTIDialect",
                           "::mlir::mpi::MPIDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"ranks", "ranks", "int64_t", /*default=*/"1",
           "Ranks of MPI_COMM_WORLD the experts are spread over">,
    Option<"mpi", "mpi", "std::string", /*default=*/"\"OpenMPI\"",
           "The MPI library whose ABI the module calls: OpenMPI or MPICH">
  ];
}

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
    - the shared expert, and its sigmoid gate, as `linalg` ops; an
      ungated one's output is the routed combine's `init`, which the
      combine's sums are added to (a gated one, or any when weighted
      inputs or zero experts still change the routed output, is added to
      the combine's result by one element-wise op); a
      shared expert with block-scaled (FP8) or bf16 weights as an expert
      that every token picks once with weight 1 (`moe.dispatch` of zero
      ids, `moe.expert_matmul` with its weights as `[1, N, K]`, and the
      first T rows of its down projection as its output), so that its
      weights take the routed experts' path.

    A layer with `expert_ranks` (expert parallelism) dispatches its rows
    unpadded over all experts, sends them to the ranks owning their experts
    (`moe.all_to_all` of the per-expert counts, then of the rows), runs the
    received rows on the rank's window of experts (a `moe.dispatch` of
    their window ids, the projections, a `moe.combine` of weight 1 back to
    their order) and sends the results back before the combine.

    Works on any op nested under the pass's anchor, so it runs on modules and
    functions alike.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::mpi::MPIDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"rowAlign", "row-align", "int64_t", /*default=*/"1",
           "Pad each expert's rows in the dispatch buffer to a multiple of "
           "this many rows (the row-block size of a tiled grouped matmul)">
  ];
}

def MoEDenseToMoEPass : Pass<"moe-dense-to-moe"> {
  let summary = "Rewrite a dense FFN into a moe.layer of experts made from "
                "its weights (MoEBERT's split, sparse upcycling)";
  let description = [{
    Rewrites every dense FFN under the anchor into a `moe.layer` of
    `experts` experts (docs/DenseToMoE.md). A dense FFN is the dense-expert
    form of `moe.layer`: one routed expert (`[1, I, H]` gate and up, `[1,
    H, I]` down, optional biases and block scales) that every token takes
    with weight exactly 1 (dropless `top_k = 1` over one expert, scored by
    softmax or sparsemixer, renormalized or `unweighted`, `scale` 1), with
    no routing statistics or expert parallelism. The importers emit dense
    MLPs in this form, the checkpoint's `[I, H]` tensors reshaped to one
    expert. Other layers are left as they are.

    - `mode=split` (MoEBERT, Zuo et al. 2022): the `I` neurons ordered by
      importance, descending, ties to the lower index (the layer's
      `moe.neuron_importance`, one float per neuron; the index order when
      absent); the first `shared` of them are in every expert, the others
      dealt round-robin, the i-th of them to expert `i mod E`. Each expert
      holds its own `ceil((I - shared) / E)` neuron slots (a shorter
      expert's last slot holds no neuron: zero weights, contributing
      nothing), gathered from the dense rows of gate and up (and their
      biases) and columns of down (`linalg.generic` with `tensor.extract`);
      block-scaled weights are dequantized to f32 first. The
      shared neurons become the layer's shared expert, which every token
      runs once with weight 1: an expert is thus its shared neurons plus its
      own, as in MoEBERT, whose experts each hold the shared neurons (the
      same layer whenever a token's kept weights sum to 1; here the shared
      neurons run once instead of K times). Every neuron is in the shared
      expert or in exactly one routed expert, so with unweighted routing the
      layer computes the dense FFN restricted to the shared neurons and
      those of the chosen experts, and the whole FFN when every expert is
      chosen.
    - `mode=upcycle` (sparse upcycling, Komatsuzaki et al. 2022): every
      expert is the dense FFN, `linalg.broadcast` of the dense weights (and
      scales): no copy of the checkpoint tensors is bound. With weights
      that sum to 1 the layer equals the dense FFN.

    The routing is `routing` when given (a `#moe.routing` attribute, or its
    `<...>` body), else `<softmax, top_k = K, unweighted>` for split and
    `<softmax, top_k = K, renormalize>` for upcycle, `K = top-k`. A down
    bias is copied into every expert, divided by `top_k * scale` under
    unweighted token-choice routing, which adds it that many times.
    `weight_inputs`, a no-op at weight 1, is dropped; other discardable
    attributes carry over.

    Each gather reads its weight through views of its own: where a weight
    is an argument bound by `moe.weight` of a function nothing calls, the
    shared expert's and the router's gathers read new arguments bound to the
    same tensor, so that `moe-pack-expert-weights` folds every gather into a
    packing function.

    The router is the checkpoint tensor `router-weight` when given (a new
    `[E, H]` argument of the enclosing `func.func`, bound with
    `moe.weight`; an error when something calls the function or several
    dense layers would bind it), else built by rule: for split
    MoEfication's similarity router (Zhang et al. 2022), row `e` the mean
    of the gate rows (up rows without a gate) of expert `e`'s own neurons,
    one reduction over the dense rows; for upcycle zeros (the experts are
    identical; the router is trained after upcycling). The pass only
    rewrites IR and weight bindings: it never reads weight values.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"mode", "mode", "std::string", /*default=*/"\"split\"",
           "split (MoEBERT: the neurons dealt to the experts) or upcycle "
           "(every expert a copy of the FFN)">,
    Option<"experts", "experts", "int64_t", /*default=*/"8",
           "Number of experts E">,
    Option<"topK", "top-k", "int64_t", /*default=*/"0",
           "Experts per token K (0: the routing's, or 1)">,
    Option<"shared", "shared", "int64_t", /*default=*/"0",
           "Neurons shared by every expert (split), the most important">,
    Option<"routingText", "routing", "std::string", /*default=*/"\"\"",
           "The new layers' routing attribute; empty: the mode's default">,
    Option<"routerWeight", "router-weight", "std::string",
           /*default=*/"\"\"",
           "Checkpoint tensor of the trained [E, H] router; empty: the "
           "router is built by the mode's rule">
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

    With `cuda-chip` (e.g. `sm_90`) the module runs on a CUDA GPU: the
    manifest gains `"gpu": {"api": "cuda", "chip": ...}` (the runtime then
    uploads the weights to the device once per loaded module), and the
    weight arguments keep their `moe.weight` attributes, which
    `moe-map-to-gpu` reads (as device memory) and removes.

    With `device-io` as well, the manifest says `"io": "device"`: the
    entries' inputs and results are device memory and a call is enqueued
    on its caller's stream (`moe-map-to-gpu device-io` builds such
    functions). The entries are then in destination-passing style: each
    result gets a last argument of its type (`"kind": "output"`,
    `"result": <index>` in the manifest, `bufferization.writable`), the
    caller's buffer, and the entry returns
    `bufferization.materialize_in_destination` of the result in it, so
    that the layer's last kernel writes into the caller's buffer (after
    `eliminate-empty-tensors`) instead of a buffer the caller copies from.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::bufferization::BufferizationDialect"];
  let options = [
    Option<"cudaChip", "cuda-chip", "std::string", /*default=*/"\"\"",
           "The CUDA architecture the module's kernels are compiled for "
           "(sm_NN); empty for a CPU module">,
    Option<"deviceIO", "device-io", "bool", /*default=*/"false",
           "The entry points' inputs and results are device memory (the "
           "manifest's gpu \"io\": \"device\"); needs cuda-chip">,
  ];
}

def MoECloneSharedFillsPass : Pass<"moe-clone-shared-fills"> {
  let summary = "Give each in-place writer of a filled tensor a fill of its "
                "own";
  let description = [{
    Where the result of a `linalg.fill` of a `tensor.empty` is written in
    place by more than one op (a destination operand: `outs`, a forall's
    `shared_outs`, an insertion's destination; a loop's initial value),
    each of them but one gets a copy of the empty tensor and the fill, made
    just before it. CSE merges identical empty tensors and fills (a routing
    plan's zeroed counts per chunk of tokens, built for the counts and
    again for their offsets), and one-shot bufferization would then give
    every writer but the first a copy of the first one's buffer: an
    allocation and a copy, which on a GPU run in the routing block's one
    thread, element after element (DeepSeek-V3's 64 x 256 counts at
    T = 4096), where a fill is a parallel loop over all threads. Fills of
    other tensors, and fills read by one op only, are left alone. Runs
    before bufferization.

    Example:

    ```mlir
    %e = tensor.empty(%n) : tensor<?x256xi32>
    %z = linalg.fill ins(%c0 : i32) outs(%e : tensor<?x256xi32>) -> tensor<?x256xi32>
    %a = scf.forall (%i) in (%n) shared_outs(%o = %z) -> (tensor<?x256xi32>) { ... }
    %b = scf.forall (%j) in (256) shared_outs(%o = %z) -> (tensor<?x256xi32>) { ... }
    ```

    becomes

    ```mlir
    %e = tensor.empty(%n) : tensor<?x256xi32>
    %z = linalg.fill ins(%c0 : i32) outs(%e : tensor<?x256xi32>) -> tensor<?x256xi32>
    %a = scf.forall (%i) in (%n) shared_outs(%o = %z) -> (tensor<?x256xi32>) { ... }
    %e2 = tensor.empty(%n) : tensor<?x256xi32>
    %z2 = linalg.fill ins(%c0 : i32) outs(%e2 : tensor<?x256xi32>) -> tensor<?x256xi32>
    %b = scf.forall (%j) in (256) shared_outs(%o = %z2) -> (tensor<?x256xi32>) { ... }
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def MoEDropUnreadInitsPass : Pass<"moe-drop-unread-inits"> {
  let summary = "Drop the fills of grouped matmul inits that no op reads";
  let description = [{
    A `moe.grouped_matmul` in block form whose epilogue ignores the old
    value (its last argument) writes every row it computes, the filled rows
    of its owned blocks, without reading `init` there, and keeps `init` in
    the rows past them. A `linalg.fill` (on tensors) whose every use is the
    `init` of such an op is dropped, its uses taking the fill's destination
    instead, when each of those ops' results is read only
    - as the `input` of a grouped matmul in block form with no
      `row_sources` (rows read in place, block by block) over the same
      plan: the same `block_rows`, number of experts, `block_experts` and
      `block_sizes` (the same tensors, or prefixes of them: 1-d slices at
      0 with unit stride), which reads exactly the filled rows of the
      owned blocks, all of them written;
    - as the `rows` of a `moe.combine` whose `row_map` is that of the
      `moe.routing_plan` whose `block_experts` (and `block_sizes`, unless
      the op has none and computes every row of its blocks) the op's are
      prefixes of, with the op's `block_rows` and number of experts: each
      assignment's row is a filled row of a block of its expert;
    - as a `tensor.extract_slice` of its first rows (all columns, offsets
      0, unit strides), no more rows than its plan has tokens, read only as
      the `init` of a `moe.combine` (or by `tensor.dim`), when the op's
      plan is the `moe.routing_plan` of one expert and one choice per token
      with every token routed to it (ids a `linalg.fill` of 0: a shared
      expert's), whose `block_experts` the op's are a prefix of (covering
      them, and computing the filled rows as above): that plan puts token
      `t` in row `t`, so the first T rows are filled rows;
    - by `tensor.dim`, which reads no element;
    - through an `scf.if` that yields it, whose result is read the same way.

    With `write-sums` (the default), a fill of zero is dropped as well
    when such an op adds its sums to `init` (block form, no epilogue, no
    scatter): the op then gets an epilogue that writes each sum
    (`^bb0(%s: f32, %old: f32): moe.yield %s`), the same values but for
    the sign of a zero sum (0 + -0 is +0). An op with an epilogue is not
    tiled along its depth (the epilogue needs whole sums), so a pipeline
    that tiles the depth turns this off.

    The blocks each reader reads (its `block_experts`, or the plan's for a
    combine) must provably be no more than the writer's
    (`ValueBoundsConstraintSet`, which follows the plan's sizes, `R = B *
    block_rows`, and those of `bufferization.alloc_tensor`; a writer's
    block count computed by an `affine.apply` of an `affine.min`, which
    value bounds bound from above only, is compared for each of the
    minimum's results), and each use must be the operand named
    (a value used as both `input` and `init` of one op counts as read).

    These are the gate/up projection's zeroed hidden rows (`R x I`), read
    only by the down projection, row for row, the down projection's
    zeroed rows (`R x H` f32), read only by the combine, each assignment's
    row, and a shared expert's down projection rows, whose first T the
    routed combine adds to: the fills wrote every padding row of every block and, after
    tiling, made each tile zero its output and synchronize before it
    multiplies, and the down projection's tiles read the zeros back to add
    to them. Other fills are left alone: of an op that scatters, of an op
    adding to a nonzero fill, or whose result another op reads. Runs on
    tensors, before tiling.

    Example:

    ```mlir
    %e = tensor.empty(%r) : tensor<?x1024xbf16>
    %z = linalg.fill ins(%c0 : bf16) outs(%e : tensor<?x1024xbf16>) -> tensor<?x1024xbf16>
    %h = moe.grouped_matmul block_rows(64) ins(%x, %wg, %ids : ...) paired(%wu : ...)
        block_sizes(%sizes : ...) row_sources(%src : ...) outs(%z : tensor<?x1024xbf16>) epilogue {...}
    %y = moe.grouped_matmul block_rows(64) ins(%h, %wd, %ids : ...)
        block_sizes(%sizes : ...) outs(%acc : tensor<?x512xf32>) -> tensor<?x512xf32>
    ```

    becomes the same ops with `outs(%e : tensor<?x1024xbf16>)` for `%h`.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"writeSums", "write-sums", "bool", /*default=*/"true",
           "Let an op adding its sums to a zero fill write them instead (an "
           "epilogue: its tiles then take whole depths, which a pipeline "
           "tiling the depth may not want)">,
  ];
}

def MoEFormGroupedMatmulPass : Pass<"moe-form-grouped-matmul"> {
  let summary = "Rewrite block-aligned expert matmuls into moe.grouped_matmul";
  let description = [{
    Rewrites each grouped-layout `moe.expert_matmul` whose offsets come from
    a `moe.dispatch` with `align` a multiple of `block-rows` (or from a
    `moe.routing_plan` in blocks of `block-rows`) into the
    destination-passing `moe.grouped_matmul`. One `moe.routing_plan` per
    dispatch gives every matmul the expert and filled rows of its row
    blocks; uses of the dispatch's offsets and row map move to the plan's.
    A matmul of the dispatch's own rows reads the tokens through the plan's
    row sources instead (the gather fuses into it). Each matmul gets a
    zero-filled f32 accumulator of its own (`bufferization.alloc_tensor`,
    so that sibling projections do not share one and copy it) and, only
    when needed, an element-wise epilogue adding the bias of each row's
    expert and converting to the result type.

    With `fuse-combine`, a matmul whose rows only a `moe.combine` of the
    same layout reads (the down projection; no bias) becomes a scattering
    grouped matmul instead: each row, times its combine weight, is added to
    its token's row of the `[T, N]` result, and the combine goes away. The
    result starts as zeros, or as the combine's `init` (widened to f32
    when it is not f32), into which the rows are scattered.
    With `atomic-combine` as well, the scattering matmul is `atomic`: its
    adds are atomic, so that its row blocks stay parallel (a GPU's tiles
    of every row block at once) where without it they are a reduction
    that runs one row block after another, at the cost of an f32 sum
    order that may change from run to run. A row map of one entry per
    token (top-1 routing) gives every row its own target: the matmul is
    then `unique` instead, its row blocks parallel with plain adds (no
    atomics where each token's row is one tile's to write).

    With `fuse-activation`, an element-wise `linalg.generic` (identity maps,
    a body of scalar element-wise ops, the output not read) of one or two
    such matmuls (no bias, same rows and offsets, weights of one type, each
    read by nothing else) becomes one grouped matmul with an epilogue: the
    second matmul's weight is its `paired_weight`, and the epilogue is the
    generic's body, each sum first converted to the matmul's result type
    and the value converted back to f32, so the result equals the unfused
    one. The gate and up projections then share every read of their rows
    and the activation runs in registers, writing the hidden rows once.

    With `bound-rows`, the grouped matmuls cover the plan's row bound (its
    `row_sources` length, known from T alone) instead of its filled rows
    `offsets[E]`: the blocks past `offsets[E]` hold no expert and are
    skipped, at the cost of visiting them. No shape then depends on a
    value the plan computes, so a GPU host launches every kernel without
    reading one back (and a call can be captured in a CUDA graph).

    Other `moe.expert_matmul` ops (capacity layout, or offsets without the
    alignment guarantee) are left unchanged for the reference lowering.
  }];
  let dependentDialects = ["::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"blockRows", "block-rows", "int64_t", /*default=*/"16",
           "Rows per block of the grouped matmul (the dispatch's align must "
           "be a multiple)">,
    Option<"fuseCombine", "fuse-combine", "bool", /*default=*/"true",
           "Fuse a moe.combine into the write-back of the matmul whose rows "
           "it sums (a scattering grouped matmul)">,
    Option<"atomicCombine", "atomic-combine", "bool", /*default=*/"false",
           "With fuse-combine: the scattered adds are atomic, so that the "
           "scattering matmul's row blocks stay parallel">,
    Option<"fuseActivation", "fuse-activation", "bool", /*default=*/"true",
           "Fuse an element-wise op of one or two expert matmuls on the same "
           "rows (the activation of the gate and up projections) into one "
           "grouped matmul with an epilogue">,
    Option<"boundRows", "bound-rows", "bool", /*default=*/"false",
           "Cover the routing plan's row bound (known from T) instead of its "
           "filled rows offsets[E], so that no shape depends on a value the "
           "plan computes">
  ];
}

def MoETileGroupedMatmulPass : Pass<"moe-tile-grouped-matmul"> {
  let summary = "Tile moe.grouped_matmul on tensors with upstream scf tiling";
  let description = [{
    Tiles every `moe.grouped_matmul` on tensors through its
    `TilingInterface` (upstream `scf::tileUsingSCF`): an `scf.forall` over
    (column block of `tile-n`, row block), columns outermost so that in-order
    execution reuses each expert's weight panel across its row blocks, and,
    when `tile-k` is not 0, an `scf.for` over blocks of `tile-k` of the
    reduction dimension inside it. The tiles are `moe.grouped_matmul` ops of
    one row block each. A scattering grouped matmul (rows added to shared
    output rows) is split over column blocks only, with an `scf.for` over
    its row blocks inside each, unless it is `atomic` or `unique`: then its
    row blocks are tiles of their own too, each adding to its target rows
    of the tile's columns in place (their slices of the result overlap,
    which the one buffer they bufferize into makes sound). A grouped matmul
    with an epilogue (written from whole sums) has no depth dimension: its
    tiles span all of K. A size of 0 leaves that dimension untiled. A
    `linalg.fill` producing the accumulator is fused into the forall
    (upstream `scf::tileConsumerAndFuseProducersUsingSCF`, destination
    fusion): each tile fills its own slice right before the depth loop adds
    into it, instead of a separate pass over the whole accumulator; not
    that of a scattering op, whose tiles share rows (the fill then runs once
    before them). With a
    packed weight (`[E, NP, K, P]`), `tile-n` is rounded up to a multiple of
    P so that every tile reads whole panels.

    With `min-tiles` and `narrow-tile-n` (column counts below `tile-n`), a
    grouped matmul whose static columns split into more tiles at a narrow
    count is tiled once per such count as well, under a chain of `scf.if`
    on its row blocks: the widest tiling whose tiles (row tiles x column
    tiles) number at least `min-tiles` runs, else the narrowest. No count
    narrower than the first whose column tiles alone number `min-tiles` is
    tiled: with a row block, that one or a wider one always runs. A step
    with few row blocks (decode) then spreads each expert's columns over
    more tiles; the choice is host arithmetic on the row blocks' count.

    With `single-tile-n`, a grouped matmul of one weight (no paired
    weight: half the accumulators of a gate/up pair) is tiled that wide
    instead, `tile-n` then counting among its narrower widths (Hopper's
    down projections: 256 columns, wgmma's widest N).
  }];
  let dependentDialects = ["::mlir::affine::AffineDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"tileN", "tile-n", "int64_t", /*default=*/"64",
           "Columns (output features) per tile; 0 keeps all">,
    Option<"tileK", "tile-k", "int64_t", /*default=*/"1024",
           "Reduction depth per tile; 0 keeps all">,
    Option<"gpuMapping", "gpu-mapping", "bool", /*default=*/"false",
           "Map the forall's dimensions to GPU blocks (#gpu.block<x> for row "
           "blocks, #gpu.block<y> for column tiles): the grid moe-map-to-gpu "
           "launches">,
    ListOption<"narrowTileN", "narrow-tile-n", "int64_t",
               "Narrower column counts (each below tile-n) to tile with "
               "when tile-n's tiles number fewer than min-tiles">,
    Option<"singleTileN", "single-tile-n", "int64_t", /*default=*/"0",
           "Columns per tile of grouped matmuls with one weight (no "
           "paired weight); 0: tile-n">,
    Option<"minTiles", "min-tiles", "int64_t", /*default=*/"0",
           "The tiles a tiling must make to be chosen over a narrower one "
           "(e.g. the GPU's multiprocessors); 0: tile-n only">
  ];
}

def MoEPackExpertWeightsPass
    : Pass<"moe-pack-expert-weights", "::mlir::ModuleOp"> {
  let summary = "Pack the expert weights of grouped matmuls once per module";
  let description = [{
    Every argument of a public function that is used only as the `[E, N, K]`
    weight (or paired weight) of `moe.grouped_matmul` ops on tensors, and
    whose partner weight in each of them is packed too, becomes the packed
    `[E, ceil(N / P), K, P]` weight those ops read (panels of `panel-cols`
    columns streamed contiguously along K; see `moe.grouped_matmul`), and
    the module gains a public **packing function** per such argument,
    `@<function>__pack<argument>`, which computes the packed weight from the
    checkpoint layout with `linalg.pack` (zero padding) into a buffer the
    caller provides (the pack's destination is that buffer as a `restrict
    writable` tensor, so bufferization writes in place):

    ```mlir
    func.func @forward__pack2(%src: tensor<8x100x64xbf16>,
                              %dst: memref<8x4x64x32xbf16>) {
      %zero = arith.constant 0.0 : bf16
      %init = bufferization.to_tensor %dst restrict writable
          : memref<8x4x64x32xbf16> to tensor<8x4x64x32xbf16>
      %packed = linalg.pack %src padding_value(%zero : bf16)
          inner_dims_pos = [1] inner_tiles = [32] into %init
          : tensor<8x100x64xbf16> -> tensor<8x4x64x32xbf16>
      bufferization.materialize_in_destination %packed in restrict writable
          %dst : (tensor<8x4x64x32xbf16>, memref<8x4x64x32xbf16>) -> ()
      return
    }
    ```

    When the module already has a manifest (`moe-export-entries` ran
    first), the argument's manifest entry gets the packed shape and the
    packing function with the checkpoint shape it reads
    (docs/CompiledModules.md). Otherwise the argument keeps its `moe.weight`
    binding and gains `moe.packing = {function = @forward__pack2, shape =
    array<i64: 8, 100, 64>}`, which `moe-export-entries` records later. The runtime calls the packing
    function once after binding the weight, never per call.

    With `bf16-pairs`, bf16 weights are packed in pairs of K as well,
    `[E, ceil(N / P), ceil(K / 2), P, 2]` (`inner_dims_pos = [1, 2]`,
    `inner_tiles = [P, 2]`): the layout of bf16 dot products
    (`vdpbf16ps`), see `moe.grouped_matmul`. The inputs of the grouped
    matmuls that read them are rounded to bf16 once (`arith.truncf`), the
    other operand of those products: their results are then those of a
    bf16 matmul with f32 accumulation (docs/Semantics.md's bf16
    tolerance). So are the inputs of grouped matmuls on block-scaled FP8
    weights, which the kernels stage as bf16 pairs.

    Block-scaled (FP8) weights are packed in panels whose width divides
    the scale block's columns (`gcd(P, BN)`), in pairs only with an even
    BK; their scales stay as bound.

    MXFP4 weights (`i8` e2m1 pairs `[E, N, ceil(K/2)]`, already in pairs of
    K) pack to `[E, ceil(N / P), ceil(K/2), P]` bytes. With scales per
    column (`BN = 1`, gpt-oss), the scale argument is packed too, in the
    same panels, `[E, ceil(N / P), KB, P]` (through its own views, with its
    own packing function), so that a kernel reads a panel's scales as one
    vector; where a scale is not such an argument (computed in the entry,
    or read otherwise), the weights it scales stay unpacked. The inputs of
    grouped matmuls on e2m1 pairs are rounded to bf16 once, with or
    without `bf16-pairs`: the kernels multiply the decoded pairs as bf16. An `[N, K]` argument that every use expands to one
    expert's `[1, N, K]` weights (`tensor.expand_shape`, a shared expert
    from `moe-decompose`) is packed to `[1, ceil(N / P), K, P]` from its
    `[N, K]` checkpoint tensor, and the expansions are dropped.

    An argument may reach the grouped matmuls through **view ops**, each
    the only user of the value before it: static `tensor.expand_shape` /
    `tensor.collapse_shape`, a static `tensor.extract_slice` (strides
    allowed), `linalg.transpose`, `linalg.broadcast` (the experts
    `moe-dense-to-moe` upcycles) and a **neuron gather** (those it splits:
    a `linalg.generic` whose one input is a constant table and whose body
    reads the value with `tensor.extract`). That is how a fused or
    transposed checkpoint tensor binds (docs/CompiledModules.md, "Weight
    views"), e.g.
    the gate half of a `[E, H, 2I]` `gate_up_proj` as an `[E, I, H]` weight:

    ```mlir
    %half = tensor.extract_slice %gate_up[0, 0, 0] [8, 64, 96] [1, 1, 1]
        : tensor<8x64x192xbf16> to tensor<8x64x96xbf16>
    %gate = linalg.transpose ins(%half : tensor<8x64x96xbf16>)
        outs(%empty : tensor<8x96x64xbf16>) permutation = [0, 2, 1]
    ```

    The packing function replays the views on the checkpoint tensor before
    it packs, and the entry reads the packed argument in place of the
    views' result: the views cost nothing per call.

    Arguments packed alike (the same checkpoint type, views and packed
    layout) name one packing function; the runtime shares a packed buffer
    between arguments that bind the same tensor through the same function.

    Arguments with other uses (or a dynamic shape, or already packed) are
    left as they are.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::LLVM::LLVMDialect"];
  let options = [
    Option<"panelCols", "panel-cols", "int64_t", /*default=*/"32",
           "Columns per weight panel (P): a multiple of the kernel's vector "
           "width">,
    Option<"bf16Pairs", "bf16-pairs", "bool", /*default=*/"false",
           "Pack bf16 weights in pairs of K ([E, NP, ceil(K/2), P, 2]) for "
           "bf16 dot-product kernels">
  ];
}

def MoENarrowEpilogueOutputsPass : Pass<"moe-narrow-epilogue-outputs"> {
  let summary = "Write an epilogue's rows in bf16 where only bf16 tensor "
                "cores read them";
  let description = [{
    A `moe.grouped_matmul` on tensors with an epilogue that does not read
    the old element of `init` (SwiGLU, GELU, ...), whose result is read
    only as the `input` of grouped matmuls of bf16 weights without
    `exact_products` (and by `tensor.dim`), writes its rows
    in bf16: its `init` becomes bf16, so that the epilogue rounds each
    value once (to nearest even) as it writes it. A fill of a constant
    becomes a fill of the rounded constant; any other `init` is rounded by
    an `arith.truncf`.

    This changes the readers' inputs to the rounded rows. It is meant for
    kernels that multiply their input in bf16 anyway: the tensor-core
    tiles of the CUDA pipeline round each input row to bf16 as they load
    it (`moe-lower-grouped-matmul-to-wgmma`,
    `moe-lower-grouped-matmul-to-mma`), and the CPU pipeline's bf16 dot
    products read rows rounded on the tensor (`moe-pack-expert-weights
    bf16-pairs`), so their products do not change, and the hidden rows
    between the gate/up and the down projection take half the bytes to
    write and to read (R x I x 2 bytes each way). Other kernels multiply
    the rounded rows: within the bf16 bound of docs/Semantics.md. (Not f16: the tiles saturate f16 inputs to the
    largest f16, where rounding gives infinities.)

    Example:

    ```mlir
    %h = moe.grouped_matmul block_rows(64) ins(%x, %wg, %e : ...)
        paired(%wu : ...) outs(%zeros : tensor<?x768xf32>) epilogue {...}
    %y = moe.grouped_matmul block_rows(64) ins(%h, %wd, %e
        : tensor<?x768xf32>, tensor<128x2048x768xbf16>, ...) outs(...)
    ```

    becomes

    ```mlir
    %zeros16 = linalg.fill ins(%c0 : bf16) outs(%empty : tensor<?x768xbf16>)
    %h = moe.grouped_matmul ... outs(%zeros16 : tensor<?x768xbf16>) epilogue {...}
    %y = moe.grouped_matmul block_rows(64) ins(%h, %wd, %e
        : tensor<?x768xbf16>, tensor<128x2048x768xbf16>, ...) outs(...)
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def MoEApproximateEpilogueMathPass : Pass<"moe-approximate-epilogue-math"> {
  let summary = "Let grouped matmul epilogues use approximate functions";
  let description = [{
    Adds the `afn` fast-math flag to the exponentials and divisions of
    every `moe.grouped_matmul` epilogue (`math.exp`, `math.exp2`,
    `arith.divf`), keeping the flags they have; other ops are left as they
    are (the fast forms of `log`, `sin`, `cos`, `tan` and `pow` have
    absolute error bounds, or errors that grow with the argument). The GPU lowering then computes SwiGLU's sigmoid
    `1 / (1 + exp(-g))` by the hardware's approximations (`ex2.approx` of
    `-g log2(e)`, `rcp.approx`: 4 instructions) instead of libdevice's
    exact `__nv_expf` and a correctly rounded reciprocal (about 20), in
    the write-back of every tile, where the tensor cores wait. The error
    is a few f32 ulps (more for `exp` of large arguments: about
    `|g| * 2^-24` relative), far inside the f32 and bf16 bounds of
    docs/Semantics.md, before the value is rounded to the rows' type.
    The routing's functions (softmax, sigmoid scores) are not
    in epilogues and stay exact: their values choose experts.

    Example:

    ```mlir
    ^bb0(%g: f32, %u: f32, %old: f32):
      %exp = math.exp %neg : f32
      %silu = arith.divf %g, %den : f32
    ```

    becomes

    ```mlir
    ^bb0(%g: f32, %u: f32, %old: f32):
      %exp = math.exp %neg fastmath<afn> : f32
      %silu = arith.divf %g, %den fastmath<afn> : f32
    ```
  }];
}

def MoENarrowGroupedMatmulInputsPass
    : Pass<"moe-narrow-grouped-matmul-inputs"> {
  let summary = "Round f32 rows to bf16 once where bf16 tensor cores "
                "multiply them";
  let description = [{
    The f32 (or f16) rows, the tokens, that `moe.grouped_matmul` ops on
    tensors with bf16 weights read as their `input` are rounded to bf16
    once, by one `arith.truncf` of the whole tensor before the first of
    them (f16 through f32), and those ops read the rounded rows instead.
    Other readers of the rows (the router's matmul) keep the wide ones.
    Block-scaled weights, weights of another type and bf16 inputs are left
    alone, and so are readers outside the block of the first.

    Like `moe-narrow-epilogue-outputs`, this is for kernels that round
    their input rows to bf16 as they load them (the CUDA pipeline's tensor
    cores; the CPU's bf16 dot products), whose products do not change: a
    gate/up projection reads each of its rows once per tile of columns (a
    hundred times at Mixtral's 14336 columns), now half the bytes each
    time, against one pass over the rows (4 bytes read and 2 written per
    element) to round them.

    With `min-rows` above 0, the rounding pays only from that many rows
    (the tokens of a call; at decode the extra pass is a GPU launch that
    saves little): rows known to be fewer are left alone, and a dynamic
    count chooses at run time, under an `scf.if`, between each reader on
    the rounded rows and the reader as it was (both updating the reader's
    accumulator, so that they write one buffer).

    Example:

    ```mlir
    %h = moe.grouped_matmul block_rows(64) ins(%x, %wg, %src
        : tensor<?x2048xf32>, tensor<128x768x2048xbf16>, tensor<?xi32>) ...
    ```

    becomes

    ```mlir
    %x16 = arith.truncf %x : tensor<?x2048xf32> to tensor<?x2048xbf16>
    %h = moe.grouped_matmul block_rows(64) ins(%x16, %wg, %src
        : tensor<?x2048xbf16>, tensor<128x768x2048xbf16>, tensor<?xi32>) ...
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"minRows", "min-rows", "int64_t", /*default=*/"0",
           "Round only from this many rows of the input (0: always); a "
           "dynamic count chooses at run time">
  ];
}

def MoELinearsToBF16TermsPass : Pass<"moe-linears-to-bf16-terms"> {
  let summary = "f32 linears over bf16 weights as exact bf16 products on "
                "the experts' grouped matmuls";
  let description = [{
    Rewrites each `linalg.matmul` on tensors of the transposed-weight form
    (`out[t, n] += x[t, k] * w[n, k]`, the router's logits) whose weight
    `w` is bf16, whose rows `x` are f32, f16 or bf16 and whose result is
    f32, so that bf16 tensor cores compute it with the f32 result of the
    original: a dense `moe.grouped_matmul` (no routing plan: one expert,
    whose weight is `w` as `[1, N, K]`, over all the rows in blocks of
    `block-rows`, the last one partly filled) with `exact_products`, into
    the linear's own `init` (`init + x w^T`). No kernel computes a routing
    plan for it, and its tiles write the linear's result; the GPU
    pipelines run them on the tensor cores.

    Exact products on bf16 units: the tiles split each row element into
    bf16 terms whose sum is the element, `x = x0 + x1 + x2` for f32 (the
    upper 8 significand bits, the next 8, the last 8: exact for every
    finite f32 whose smallest term is not below bf16's smallest subnormal,
    2^-133), `x0 + x1` for f16, `x` itself for bf16 (an infinite element
    is its first term, the others zero), so that each product `xi * w` is
    exact in f32 and

    ```
    out[t, n] = init[t, n] + sum_p sum_k xp[t,k] w[n,k]
    ```

    is the original sum reassociated, within the f32 tolerance of
    docs/Semantics.md. (A non-finite weight times a zero term gives NaN
    where the f32 product would be infinite.) The CPU computes the same
    matmul with f32 products.

    It pays where the f32 products would bind on the CUDA cores (the
    router's at prefill; docs/Performance.md): `min-columns` leaves narrow
    linears (N below it: Mixtral's 8 experts) alone, and `min-rows` leaves
    linears of fewer rows alone; a dynamic row count chooses at run time,
    under an `scf.if`, between the exact grouped products and the original
    matmul. Linears of other types, of f16 or
    f32 weights (not exact in bf16), and on buffers are left alone.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::moe::MoeDialect"];
  let options = [
    Option<"minRows", "min-rows", "int64_t", /*default=*/"0",
           "Rewrite only from this many rows (tokens); a dynamic count "
           "chooses at run time">,
    Option<"minColumns", "min-columns", "int64_t", /*default=*/"1",
           "Rewrite only linears of at least this many output columns">,
    Option<"blockRows", "block-rows", "int64_t", /*default=*/"1",
           "Rows per block of the grouped matmul (its tiles' rows)">
  ];
}

def MoEGroupedMatmulToLoopsPass : Pass<"moe-grouped-matmul-to-loops"> {
  let summary = "Lower moe.grouped_matmul on memrefs to its scalar loop nest";
  let description = [{
    Replaces every `moe.grouped_matmul` on memrefs by `scf.for` loops over
    its iteration domain (row blocks x N x K) around the scalar
    implementation of its `TilingInterface`: the reference loop nest, which
    skips blocks whose expert id is outside `[0, E)`. The domain comes from
    the buffers' sizes, so IR that the verifier accepts never reads or
    writes outside them.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def MoEAllocateThroughRuntimePass
    : Pass<"moe-allocate-through-runtime", "::mlir::ModuleOp"> {
  let summary = "Route the module's heap allocations through a table the "
                "runtime fills";
  let description = [{
    Runs on the LLVM dialect after `finalize-memref-to-llvm` with
    `use-generic-functions`: defines `_mlir_memref_to_llvm_alloc` and
    `_mlir_memref_to_llvm_free` (internal) so that they call through the
    exported global

    ```
    moe_module_allocator = {void *(*allocate)(uint64_t), void (*free)(void *)}
    ```

    when its entries are set, and `malloc` / `free` otherwise. The runtime
    sets it when it loads the module and hands out buffers it keeps across
    calls, so large intermediate buffers do not fault in fresh pages on every
    call (docs/CompiledModules.md). A module without those functions is left
    unchanged.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
