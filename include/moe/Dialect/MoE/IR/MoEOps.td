//===- MoEOps.td - MoE dialect operations -------------------*- tablegen -*-===//
//
// Constraint ids (c1, c2, ...) in the descriptions are cited by the verifier
// diagnostics' tests in test/Dialect/MoE/invalid.mlir.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_IR_MOEOPS_TD
#define MOE_DIALECT_MOE_IR_MOEOPS_TD

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "moe/Dialect/MoE/IR/MoEDialect.td"
include "moe/Dialect/MoE/IR/MoEEnums.td"
include "moe/Dialect/MoE/IR/MoEAttrs.td"

// Activations and weights: the float types of real checkpoints.
def Moe_FloatTensor : RankedTensorOf<[F32, BF16, F16]>;
def Moe_F32Tensor : RankedTensorOf<[F32]>;
// Expert weights may also be FP8 (e4m3, block-scaled: DeepSeek-V3) or
// MXFP4 (i8: two e2m1 values per byte along K, block-scaled: gpt-oss).
def Moe_WeightTensor : RankedTensorOf<[F32, BF16, F16, F8E4M3FN, I8]>;
def Moe_I32Tensor : RankedTensorOf<[I32]>;
def Moe_I64Tensor : RankedTensorOf<[I64]>;
def Moe_StatTensor : RankedTensorOf<[F32, I64]>;
// The MPI dialect's communicator (its .td files are not included: they
// would add the MPI enums to this dialect's generated ones).
def Moe_MPIComm : Type<CPred<"::llvm::isa<::mlir::mpi::CommType>($_self)">,
                       "MPI communicator (!mpi.comm)", "::mlir::mpi::CommType">,
                  BuildableType<"::mlir::mpi::CommType::get($_builder.getContext())">;

//===----------------------------------------------------------------------===//
// moe.layer
//===----------------------------------------------------------------------===//

def Moe_LayerOp : Moe_Op<"layer", [
    AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<ConditionallySpeculatable>,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "a whole Mixture-of-Experts block";
  let description = [{
    One MoE block: router, routed experts, optional shared expert. Computes
    `result[t] = sum_k w[t,k] * expert_{ids[t,k]}(input[t]) + shared(input[t])`
    where `w, ids` come from the router under `routing` (see
    `#moe.routing`). No normalization, no residual. With `weight_inputs`
    the routing weight scales each chosen expert's input instead of its
    output (Llama 4): `result[t] = sum_k expert_{ids[t,k]}(w[t,k] *
    input[t]) + shared(input[t])`; a dropped choice contributes nothing.
    With `zero_experts = Z` (LongCat-Flash) the router scores `E + Z`
    candidates: ids `E ..< E + Z` are identity experts, `expert(x) = x`,
    which have no weights; the router-shaped operands (`router`,
    `router_bias`, `noise_router`, `score_bias`, `noise`) have `E + Z` rows
    or columns where the table says `E`, and so do the statistics.

    **Expert parallelism.** With `expert_ranks = R` the layer runs on each
    of the `R` ranks of `MPI_COMM_WORLD` (whose size must be `R`) on that
    rank's own tokens. Rank `r` owns experts `[lo(r), lo(r+1))` with
    `lo(r) = floor(r * E / R)` (contiguous, sizes differing by at most
    one) and holds a **window** of `W = ceil(E / R)` experts starting at
    `min(lo(r), E - W)`: the expert operands (weights, biases, scales) have
    `W` where the table says `E`, and hold that window. Routing runs on the
    whole router (`E` experts); each chosen row goes to its expert's owner
    and comes back (`moe.all_to_all`), so every rank's result is what the
    layer computes without the attribute on that rank's tokens. The
    statistics are the rank's own tokens'. Such a layer is a collective: it
    has an effect on the communicator (it is neither removed, nor moved, nor
    speculated), and the module must be marked for `R` ranks
    (`moe.mpi_ranks`, which `moe-decompose` checks). Without the attribute
    the layer is pure.

    Weights use the checkpoint layout `[out, in]`, stacked over experts:

    | operand | shape | meaning |
    |---|---|---|
    | `input` | `[T,H]` | tokens (f32, bf16 or f16; weights likewise) |
    | `router` | `[E,H]` | router weight; logits are computed in f32 |
    | `router_bias` | `[E]` | optional router bias, added to the logits (gpt-oss) |
    | `noise_router` | `[E,H]` | noisy gating: noise scale `softplus(x Wn^T)` (routing `noisy`) |
    | `score_bias` | `[E]` f32 | selection-only bias (routing `selection_bias`) |
    | `noise` | `[T,E]` f32 | standard-normal noise samples (noisy gating; off when absent) |
    | `uniform` | `[T]` f32 | uniform samples for `second = random` |
    | `experts(gate, up, down)` | `[E,I,H]`, `[E,I,H]`, `[E,H,I]` | gated expert `down(act(gate x) * up x)`; without `gate`: `down(act(up x))`; `clamped_swiglu`: `down(g * sigmoid(alpha g) * (u + 1))` with `g = min(gate x, limit)`, `u = clamp(up x, -limit, limit)` (gpt-oss) |
    | `gate_bias`, `up_bias`, `down_bias` | `[E,I]`, `[E,I]`, `[E,H]` | optional expert biases |
    | `shared_gate`, `shared_up`, `shared_down` | `[S,H]`, `[S,H]`, `[H,S]` | optional shared expert, same activation |
    | `shared_expert_gate` | `[1,H]` | optional sigmoid gate of the shared expert (Qwen2-MoE) |
    | `gate_scale`, `up_scale`, `down_scale`, `shared_*_scale` | the weight's last two dimensions divided by `weight_block`, rounded up, f32 | block scales of FP8 (`f8E4M3FN`) or MXFP4 (`i8`) weights: `W = weight * scale[.., n floordiv BN, k floordiv BK]` (DeepSeek-V3's `weight_scale_inv`; gpt-oss's e8m0 scales, `weight_block [1, 32]`) |

    MXFP4 expert weights are `i8` **e2m1 pairs**: each byte holds two e2m1
    (FP4) values of consecutive `k`, the even one in the low nibble, so the
    last dimension of such a weight is its depth halved, rounded up (`[E, I,
    ceil(H/2)]` for `gate`); the scale's shape is that of the logical
    weight. Every `i8` weight is block-scaled.

    Constraints: (c1) input is `[T,H]`; (c2) the router is `[E,H]` with
    `E >= 1`; (c3) every expert operand has the shape in the table, with
    consistent `T`, `H`, `E`, `I`, `S`; (c4) the routing attribute fits `E`;
    (c5) `score_bias` is present iff routing has `selection_bias`;
    (c6) `noise_router` is present iff routing is `noisy`, `noise` only then;
    (c7) `uniform` is present iff routing has `second = random`; (c8) the
    shared expert has both `up` and `down`; (c9) the result has the input's
    type; (c10) one result per requested statistic, typed as in `moe.gate`;
    (c11) scales and `weight_block` (two sizes `>= 1`) come together, each
    scale with its weight, shaped as in the table; (c12) every `f8E4M3FN`
    and `i8` (e2m1 pairs) weight has its scale, and an `i8` weight's last
    dimension is its depth halved, rounded up; (c13) `clamped_swiglu` needs gated experts (and a
    gated shared expert, if any) and `swiglu_alpha` and `swiglu_limit`
    (`limit > 0`), which no other activation takes; (c14) `router_bias` is
    `[E]`; (c15) `zero_experts` is positive; (c16) `expert_ranks` is
    between 1 and `E`.

    Example (Mixtral-style, 8 experts, top-2):

    ```mlir
    func.func @mixtral(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                       %w1: tensor<8x32x16xf32>, %w3: tensor<8x32x16xf32>,
                       %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
      %y = moe.layer %x : tensor<?x16xf32>
          routing <softmax, top_k = 2, renormalize>
          router(%wg : tensor<8x16xf32>)
          experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
                  down %w2 : tensor<8x16x32xf32>) activation silu
          -> tensor<?x16xf32>
      return %y : tensor<?x16xf32>
    }
    ```
  }];
  let arguments = (ins
    Moe_FloatTensor:$input,
    Moe_FloatTensor:$router,
    Optional<Moe_FloatTensor>:$router_bias,
    Optional<Moe_FloatTensor>:$noise_router,
    Optional<Moe_F32Tensor>:$score_bias,
    Optional<Moe_F32Tensor>:$noise,
    Optional<Moe_F32Tensor>:$uniform,
    Optional<Moe_WeightTensor>:$expert_gate,
    Moe_WeightTensor:$expert_up,
    Moe_WeightTensor:$expert_down,
    Optional<Moe_FloatTensor>:$gate_bias,
    Optional<Moe_FloatTensor>:$up_bias,
    Optional<Moe_FloatTensor>:$down_bias,
    Optional<Moe_WeightTensor>:$shared_gate,
    Optional<Moe_WeightTensor>:$shared_up,
    Optional<Moe_WeightTensor>:$shared_down,
    Optional<Moe_FloatTensor>:$shared_expert_gate,
    Optional<Moe_F32Tensor>:$gate_scale,
    Optional<Moe_F32Tensor>:$up_scale,
    Optional<Moe_F32Tensor>:$down_scale,
    Optional<Moe_F32Tensor>:$shared_gate_scale,
    Optional<Moe_F32Tensor>:$shared_up_scale,
    Optional<Moe_F32Tensor>:$shared_down_scale,
    OptionalAttr<DenseI64ArrayAttr>:$weight_block,
    Moe_RoutingAttr:$routing,
    Moe_ActivationAttr:$activation,
    OptionalAttr<F32Attr>:$swiglu_alpha,
    OptionalAttr<F32Attr>:$swiglu_limit,
    UnitAttr:$weight_inputs,
    OptionalAttr<I64Attr>:$zero_experts,
    OptionalAttr<I64Attr>:$expert_ranks,
    OptionalAttr<Moe_StatisticsAttr>:$statistics
  );
  let results = (outs Moe_FloatTensor:$result, Variadic<Moe_StatTensor>:$stats);
  let assemblyFormat = [{
    $input `:` type($input)
    `routing` $routing
    `router` `(` $router `:` type($router) `)`
    (`router_bias` `(` $router_bias^ `:` type($router_bias) `)`)?
    (`noise_router` `(` $noise_router^ `:` type($noise_router) `)`)?
    (`score_bias` `(` $score_bias^ `:` type($score_bias) `)`)?
    (`noise` `(` $noise^ `:` type($noise) `)`)?
    (`uniform` `(` $uniform^ `:` type($uniform) `)`)?
    `experts` `(` custom<Projections>($expert_gate, type($expert_gate),
                                      $expert_up, type($expert_up),
                                      $expert_down, type($expert_down)) `)`
    `activation` $activation
    (`swiglu_alpha` $swiglu_alpha^)?
    (`swiglu_limit` $swiglu_limit^)?
    (`weight_inputs` $weight_inputs^)?
    (`zero_experts` $zero_experts^)?
    (`expert_ranks` $expert_ranks^)?
    (`gate_bias` `(` $gate_bias^ `:` type($gate_bias) `)`)?
    (`up_bias` `(` $up_bias^ `:` type($up_bias) `)`)?
    (`down_bias` `(` $down_bias^ `:` type($down_bias) `)`)?
    (`shared_gate` `(` $shared_gate^ `:` type($shared_gate) `)`)?
    (`shared_up` `(` $shared_up^ `:` type($shared_up) `)`)?
    (`shared_down` `(` $shared_down^ `:` type($shared_down) `)`)?
    (`shared_expert_gate` `(` $shared_expert_gate^ `:`
        type($shared_expert_gate) `)`)?
    (`gate_scale` `(` $gate_scale^ `:` type($gate_scale) `)`)?
    (`up_scale` `(` $up_scale^ `:` type($up_scale) `)`)?
    (`down_scale` `(` $down_scale^ `:` type($down_scale) `)`)?
    (`shared_gate_scale` `(` $shared_gate_scale^ `:`
        type($shared_gate_scale) `)`)?
    (`shared_up_scale` `(` $shared_up_scale^ `:` type($shared_up_scale) `)`)?
    (`shared_down_scale` `(` $shared_down_scale^ `:`
        type($shared_down_scale) `)`)?
    (`weight_block` $weight_block^)?
    (`statistics` custom<StatisticList>($statistics)^)?
    attr-dict `->` type($result) (`,` type($stats)^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Verifies the block scales (c11, c12).
    ::mlir::LogicalResult verifyWeightScales();
    /// The requested routing statistics, in result order.
    ::llvm::ArrayRef<Statistic> getRequestedStatistics() {
      return getStatisticsAttr() ? getStatisticsAttr().getValues()
                                 : ::llvm::ArrayRef<Statistic>();
    }
    /// Number of routed experts with weights (E).
    int64_t getNumExperts();
    /// Number of routing candidates: E plus the zero (identity) experts.
    int64_t getNumCandidates();
    /// Number of zero (identity) experts (0 when absent).
    int64_t getNumZeroExperts() {
      return getZeroExperts() ? static_cast<int64_t>(*getZeroExperts()) : 0;
    }
    /// True when the layer has a shared expert.
    bool hasSharedExpert() { return getSharedUp() != nullptr; }
  }];
}

//===----------------------------------------------------------------------===//
// moe.gate
//===----------------------------------------------------------------------===//

def Moe_GateOp : Moe_Op<"gate", [Pure, AttrSizedOperandSegments]> {
  let summary = "routing: router logits to combine weights and expert ids";
  let description = [{
    Applies the routing scheme `routing` to router logits `[T,E]` (f32) and
    returns combine weights `[T,C]` (f32) and expert ids `[T,C]` (i32), where
    `C = K` for token choice and `C = E` for expert choice (slot `e` of a
    token is expert `e`). An assignment that is not taken (dropped over
    capacity, a second choice not dispatched by random routing, or a token an
    expert did not choose) has id `-1` and weight `0`. The order of a token's
    K selected experts is not semantic. Ties go to the lower expert index.

    Optional operands: `bias` `[E]` (selection-only score bias), `noise`
    `[T,E]` (additive noise on the logits before selection, already scaled),
    `uniform` `[T]` (uniform samples for random second-choice routing).

    Requested `statistics` are returned after `ids`, in the listed order:
    `tokens_per_expert`, `tokens_per_expert_before_drop` (`tensor<Exi64>`),
    `dropped_count` (`tensor<i64>`), `load_balancing_loss`, `z_loss`,
    `importance_loss` (`tensor<f32>`).

    Constraints: (c1) logits are `[T,E]` f32 with `E >= 1`; (c2) the routing
    attribute fits `E` (`top_k <= E`, `E % groups == 0`, ...); (c3) weights
    are `[T,C]` f32 and ids `[T,C]` i32; (c4) `bias` is `[E]` and present iff
    routing has `selection_bias`; (c5) `noise` is `[T,E]`, only with routing
    `noisy`; (c6) `uniform` is `[T]`, present iff `second = random`; (c7) one
    result per requested statistic, with the type above, no statistic twice.

    Example (DeepSeek-V3-style routing with a load statistic):

    ```mlir
    func.func @route(%logits: tensor<?x16xf32>, %bias: tensor<16xf32>)
        -> (tensor<?x4xf32>, tensor<?x4xi32>, tensor<16xi64>) {
      %w, %ids, %load = moe.gate %logits bias(%bias : tensor<16xf32>)
          routing <sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias,
                   groups = 4, topk_groups = 2, group_score = sum_top2>
          statistics [tokens_per_expert]
          : tensor<?x16xf32> -> tensor<?x4xf32>, tensor<?x4xi32>, tensor<16xi64>
      return %w, %ids, %load : tensor<?x4xf32>, tensor<?x4xi32>, tensor<16xi64>
    }
    ```
  }];
  let arguments = (ins
    Moe_F32Tensor:$logits,
    Optional<Moe_F32Tensor>:$bias,
    Optional<Moe_F32Tensor>:$noise,
    Optional<Moe_F32Tensor>:$uniform,
    Moe_RoutingAttr:$routing,
    OptionalAttr<Moe_StatisticsAttr>:$statistics
  );
  let results = (outs Moe_F32Tensor:$weights, Moe_I32Tensor:$ids,
                      Variadic<Moe_StatTensor>:$stats);
  let assemblyFormat = [{
    $logits
    (`bias` `(` $bias^ `:` type($bias) `)`)?
    (`noise` `(` $noise^ `:` type($noise) `)`)?
    (`uniform` `(` $uniform^ `:` type($uniform) `)`)?
    `routing` $routing
    (`statistics` custom<StatisticList>($statistics)^)?
    attr-dict `:` type($logits) `->` type($weights) `,` type($ids)
    (`,` type($stats)^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The requested routing statistics, in result order.
    ::llvm::ArrayRef<Statistic> getRequestedStatistics() {
      return getStatisticsAttr() ? getStatisticsAttr().getValues()
                                 : ::llvm::ArrayRef<Statistic>();
    }
    /// Number of experts (E), from the logits type.
    int64_t getNumExperts();
  }];
}

//===----------------------------------------------------------------------===//
// moe.dispatch
//===----------------------------------------------------------------------===//

def Moe_DispatchOp : Moe_Op<"dispatch", [Pure]> {
  let summary = "tokens to experts: rows grouped by expert";
  let description = [{
    Gathers the token rows of every taken assignment (`ids[t,c] >= 0`) into
    one buffer grouped by expert. Two layouts:

    - **grouped** (result `rows` is `[N,H]`): the rows of expert `e` are
      `[expert_rows[e], expert_rows[e+1])` with `expert_rows : tensor<E+1 x i64>`
      a prefix sum of the per-expert counts, each count rounded up to a
      multiple of `align` (padding rows are zero). `N = expert_rows[E]`.
      Dropless; the matmuls touch only the rows routed to each expert.
    - **capacity** (result `rows` is `[E,C,H]`): expert `e` fills slots
      `0..count_e-1` of `rows[e]`, the rest are zero, and
      `expert_rows : tensor<E x i64>` holds the counts. `C` comes from the
      type or, when dynamic, from the `capacity` operand. Assignments beyond
      `C` are not placed (routing ops enforce capacity before dispatch).

    Within an expert, rows follow assignment order `t*K + k`. `row_map[t,k]`
    is the row (grouped) or the flattened slot `e*C + s` (capacity) that holds
    assignment `(t,k)`, or `-1` when it was not taken: `moe.combine` uses it
    to send rows back. Ids outside `[-1, E)` are treated as not taken.

    Constraints: (c1) input is `[T,H]`; (c2) ids are `[T,K]` i32 with the
    input's `T`; (c3) rows have the input's element type and `H`, rank 2
    (grouped) or 3 (capacity); (c4) grouped: `expert_rows` is `[E+1]` i64,
    `E >= 1`; capacity: `[E]` i64 matching `rows`; (c5) `capacity` is
    given iff the slot dimension is dynamic, and only in capacity layout;
    (c6) `align >= 1`, only in grouped layout; (c7) `row_map` is `[T,K]` i32.

    Example:

    ```mlir
    func.func @dispatch(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>, %c: index)
        -> (tensor<?x16xf32>, tensor<8x?x16xf32>) {
      %rows, %offsets, %map = moe.dispatch %x, %ids align 4
          : tensor<?x16xf32>, tensor<?x2xi32>
          -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
      %slots, %counts, %smap = moe.dispatch %x, %ids capacity(%c)
          : tensor<?x16xf32>, tensor<?x2xi32>
          -> tensor<8x?x16xf32>, tensor<8xi64>, tensor<?x2xi32>
      return %rows, %slots : tensor<?x16xf32>, tensor<8x?x16xf32>
    }
    ```
  }];
  let arguments = (ins
    Moe_FloatTensor:$input,
    Moe_I32Tensor:$ids,
    Optional<Index>:$capacity,
    DefaultValuedAttr<I64Attr, "1">:$align
  );
  let results = (outs Moe_FloatTensor:$rows, Moe_I64Tensor:$expert_rows,
                      Moe_I32Tensor:$row_map);
  let assemblyFormat = [{
    $input `,` $ids (`capacity` `(` $capacity^ `)`)? (`align` $align^)?
    attr-dict `:` type($input) `,` type($ids) `->` type($rows) `,`
    type($expert_rows) `,` type($row_map)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// True for the `[E,C,H]` capacity layout, false for grouped rows.
    bool isCapacityLayout() { return getRows().getType().getRank() == 3; }
    /// Number of experts (E), from the result types.
    int64_t getNumExperts();
  }];
}

//===----------------------------------------------------------------------===//
// moe.routing_plan
//===----------------------------------------------------------------------===//

def Moe_RoutingPlanOp : Moe_Op<"routing_plan", [
    Pure,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
                              ["reifyResultShapes"]>]> {
  let summary = "block-aligned routing: what grouped matmuls and the combine read";
  let description = [{
    The grouped layout of `moe.dispatch` (align `align`) without moving any
    row, described for kernels that work on row blocks of `block_rows` (BM)
    rows: the token of every row, the expert of every block and how many of
    its rows are filled. It is computed by a counting sort over the
    assignments (count per expert, prefix sum, placement), never a sort.

    - `offsets` `[E+1]` i64: expert `e` owns rows `[offsets[e],
      offsets[e+1])`, its count rounded up to a multiple of `align`, as
      dispatch's `expert_rows`. `offsets[E]` is the number of rows in use.
    - `block_experts` `[B]` i32: the expert owning rows `[b*BM, (b+1)*BM)`,
      or -1 for a block at or past `offsets[E]`.
    - `block_sizes` `[B]` i32: how many rows of block `b` hold an assignment
      (an expert's rows come first in its blocks); 0 past `offsets[E]`.
    - `row_sources` `[R]` i32, `R = B * BM`: the token row `r` holds, or -1
      for a padding row or a row past `offsets[E]`.
    - `row_map` `[T,K]` i32: the row of assignment `(t,k)`, or -1 when
      `ids[t,k]` is outside `[0, E)` (not taken), as dispatch's `row_map`.

    Within an expert, rows follow assignment order `t*K + k`. The row
    count is the bound the routing cannot exceed, known from `T` alone
    (no data-dependent shape; a kernel launch needs no host round trip):

    ```
    R = A * min(T*K, floor((T*K + E*(A-1)) / A)),  B = R / BM,  A = align
    ```

    Constraints: (c1) `ids` is `[T,K]` i32; (c2) `offsets` is `[E+1]` i64
    with static `E >= 1`; (c3) `block_experts` and `block_sizes` are `[B]`
    i32 and `row_sources` is `[R]` i32, with `R = B * block_rows` and `R` as
    above where static; (c4) `row_map` is `[T,K]` i32; (c5) `block_rows
    >= 1` and `align` is a positive multiple of it.

    Example (8 experts, blocks of 4 rows):

    ```mlir
    func.func @plan(%ids: tensor<?x2xi32>)
        -> (tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>,
            tensor<?x2xi32>) {
      %offsets, %blocks, %sizes, %sources, %map =
          moe.routing_plan %ids block_rows(4) align(4)
          : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
            tensor<?xi32>, tensor<?x2xi32>
      return %offsets, %blocks, %sizes, %sources, %map
          : tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>,
            tensor<?x2xi32>
    }
    ```
  }];
  let arguments = (ins Moe_I32Tensor:$ids, I64Attr:$block_rows,
                       I64Attr:$align);
  let results = (outs Moe_I64Tensor:$offsets, Moe_I32Tensor:$block_experts,
                      Moe_I32Tensor:$block_sizes, Moe_I32Tensor:$row_sources,
                      Moe_I32Tensor:$row_map);
  let assemblyFormat = [{
    $ids `block_rows` `(` $block_rows `)` `align` `(` $align `)` attr-dict
    `:` type($ids) `->` type($offsets) `,` type($block_experts) `,`
    type($block_sizes) `,` type($row_sources) `,` type($row_map)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Number of experts (E), from the offsets type.
    int64_t getNumExperts() {
      return getOffsets().getType().getDimSize(0) - 1;
    }
    /// Rows the plan describes (R above) for `tokens` tokens of `choices`
    /// assignments each, of `numExperts` experts with `align`: `kDynamic`
    /// for a dynamic token count, none when R overflows int64.
    static std::optional<int64_t> getMaxRows(int64_t tokens, int64_t choices,
                                             int64_t numExperts,
                                             int64_t align);
  }];
}

//===----------------------------------------------------------------------===//
// moe.expert_matmul
//===----------------------------------------------------------------------===//

def Moe_ExpertMatmulOp : Moe_Op<"expert_matmul",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "grouped per-expert matmul over dispatched rows";
  let description = [{
    `result[r, n] = sum_j input[r, j] * weight[e(r), n, j] (+ bias[e(r), n])`,
    accumulated in f32, where `e(r)` is the expert that owns row `r`. Weights
    are in the checkpoint layout `[E, N, K]` (out, in) and may have another
    float type than the rows (e.g. bf16 weights, f32 rows: converted on the
    fly).

    - grouped rows `[R,K]`: `offsets : tensor<E+1 x i64>` (from
      `moe.dispatch`) says which rows belong to which expert; result `[R,N]`.
      Rows outside `[offsets[0], offsets[E])` are zero in the result.
    - capacity slots `[E,C,K]`: a batched matmul, no offsets; result `[E,C,N]`.

    **Block-scaled weights** (FP8 checkpoints such as DeepSeek-V3's, whose
    `weight_scale_inv` holds one f32 per block of `BN x BK` weights): with
    `scale(%s : tensor<E x NB x KB x f32>) block [BN, BK]` the weight is

    ```
    W[e, n, k] = weight[e, n, k] * scale[e, n floordiv BN, k floordiv BK]
    ```

    with `NB = ceil(N / BN)`, `KB = ceil(K / BK)`; the weight is stored in
    its own type (`f8E4M3FN`: e4m3 without infinities) and never expanded.
    **MXFP4** weights are `i8` e2m1 pairs `[E, N, ceil(K/2)]`: byte `k
    floordiv 2` holds value `k` in its low nibble for even `k`, its high
    one for odd (e2m1: sign, two exponent bits, one mantissa bit), with
    their block scales (gpt-oss: `block [1, 32]`, one scale per column and
    32 values of depth).

    Constraints: (c1) input is `[R,K]` or `[E,C,K]`; (c2) weight is `[E,N,K]`
    with `E >= 1` and the input's `K`; (c3) `offsets` is `[E+1]` i64, present
    iff the input is grouped rows; (c4) capacity input has the weight's `E`;
    (c5) `bias` is `[E,N]`; (c6) result is `[R,N]` or `[E,C,N]` with the
    input's element type or f32 (the sums unrounded: bf16 rows whose
    products are summed in f32); (c7) `scale` and `block` come together, `block`
    is two sizes `>= 1`; (c8) `scale` is `[E, ceil(N/BN), ceil(K/BK)]` f32;
    (c9) an `f8E4M3FN` or `i8` (e2m1 pairs, `[E, N, ceil(K/2)]`) weight
    has a scale; (c10) `exact_products` goes with unscaled weights.

    **Exact products.** Fast lowerings that multiply on bf16 units (the
    CPU's bf16 kernels, the GPU's tensor cores) round f32 and f16 rows to
    bf16 first, within the bf16 tolerance of docs/Semantics.md. With
    `exact_products` they may not: every product of a row element and a
    weight is the exact f32 one, and only the order of the f32 sums may
    differ (the f32 tolerance), as for a router's logits, whose order
    decides the routing (`moe-linears-to-bf16-terms` gives them to a
    dense `moe.grouped_matmul` with the attribute);
    `moe.grouped_matmul` says how its lowerings keep it.

    Example (the up-projection of 8 experts, bf16 weights):

    ```mlir
    func.func @up(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xbf16>,
                  %off: tensor<9xi64>) -> tensor<?x32xf32> {
      %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
          : tensor<?x16xf32>, tensor<8x32x16xbf16> -> tensor<?x32xf32>
      return %h : tensor<?x32xf32>
    }
    ```

    FP8 weights in blocks of 128 x 128 (N = 256, K = 200: 2 x 2 scales):

    ```mlir
    func.func @up_fp8(%rows: tensor<?x200xf32>, %w: tensor<8x256x200xf8E4M3FN>,
                      %s: tensor<8x2x2xf32>, %off: tensor<9xi64>)
        -> tensor<?x256xf32> {
      %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
          scale(%s : tensor<8x2x2xf32>) block [128, 128]
          : tensor<?x200xf32>, tensor<8x256x200xf8E4M3FN> -> tensor<?x256xf32>
      return %h : tensor<?x256xf32>
    }
    ```
  }];
  let arguments = (ins
    Moe_FloatTensor:$input,
    Moe_WeightTensor:$weight,
    Optional<Moe_I64Tensor>:$offsets,
    Optional<Moe_FloatTensor>:$bias,
    Optional<Moe_F32Tensor>:$weight_scale,
    OptionalAttr<DenseI64ArrayAttr>:$weight_block,
    UnitAttr:$exact_products
  );
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight
    (`offsets` `(` $offsets^ `:` type($offsets) `)`)?
    (`bias` `(` $bias^ `:` type($bias) `)`)?
    (`scale` `(` $weight_scale^ `:` type($weight_scale) `)`)?
    (`block` $weight_block^)?
    (`exact_products` $exact_products^)?
    attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// moe.combine
//===----------------------------------------------------------------------===//

def Moe_CombineOp : Moe_Op<"combine", [Pure]> {
  let summary = "expert rows back to tokens: weighted scatter-add";
  let description = [{
    `result[t] = sum_k (row_map[t,k] >= 0 ? weights[t,k] * rows[row_map[t,k]] : 0)`,
    accumulated in f32. `rows` is the grouped `[R,H]` buffer or the capacity
    `[E,C,H]` buffer (indexed flat as `e*C + s`) produced from
    `moe.dispatch`'s layout; `row_map` is the dispatch's row map. Each
    token reads only its own K rows (no one-hot matrices).

    With `init` (`[T,H]`), each token's sum is added to its row of it:
    `result[t] = init[t] + sum_k ...`, in f32 (an `init` of f32 keeps its
    precision whatever the result's type), rounded to the result's type
    once. An ungated shared expert's output, added to the routed experts',
    is then read by the combine as it sums each token's rows
    (`moe-decompose`): the add costs no pass over `[T,H]` of its own (a
    kernel of its own on the GPU).

    Constraints: (c1) rows are `[R,H]` or `[E,C,H]`; (c2) weights are `[T,K]`
    f32; (c3) `row_map` is `[T,K]` i32 like the weights; (c4) the result is
    `[T,H]` with the rows' element type; (c5) `init` is `[T,H]` of the
    result's element type or f32.

    Example:

    ```mlir
    func.func @combine(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>,
                       %map: tensor<?x2xi32>) -> tensor<?x16xf32> {
      %y = moe.combine %rows, %w, %map
          : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
      return %y : tensor<?x16xf32>
    }
    ```

    Onto a shared expert's output:

    ```mlir
    func.func @combine_onto(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>,
                            %map: tensor<?x2xi32>, %shared: tensor<?x16xf32>)
        -> tensor<?x16xf32> {
      %y = moe.combine %rows, %w, %map init(%shared : tensor<?x16xf32>)
          : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
      return %y : tensor<?x16xf32>
    }
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$rows, Moe_F32Tensor:$weights,
                       Moe_I32Tensor:$row_map, Optional<Moe_FloatTensor>:$init);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $rows `,` $weights `,` $row_map (`init` `(` $init^ `:` type($init) `)`)?
    attr-dict `:` type($rows) `,` type($weights) `,` type($row_map) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// moe.grouped_matmul
//===----------------------------------------------------------------------===//

def Moe_GroupedMatmulOp : Moe_Op<"grouped_matmul", [
    AttrSizedOperandSegments,
    IsolatedFromAbove,
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
                              ["reifyResultShapes"]>,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "block-aligned grouped matmul in destination-passing style";
  let description = [{
    The grouped per-expert matmul of fast kernels, over rows laid out in
    row blocks of `block_rows` (BM) rows, each block owned by one expert
    (the block-aligned layout of docs/Semantics.md):

    ```
    init[b*BM + i, n] += sum_k input[b*BM + i, k] * weight[e, n, k]
        for every block b with e = block_experts[b] in [0, E), i < BM
    ```

    Blocks whose id is outside `[0, E)` (padding, or blocks of no expert)
    leave their rows of `init` unchanged. With `block_sizes`, only the first
    `block_sizes[b]` rows of block b (clamped to `[0, BM]`) are computed, the
    others (padding rows of a partly filled block) are left unchanged: few
    tokens per expert (decode) cost their rows, not whole blocks. `init` is the f32 accumulator
    (`outs`); `input` and `weight` may be f32, bf16 or f16 and are
    converted to f32 on the fly. Weights keep the checkpoint layout
    `[E, N, K]` (out, in), or come **packed** in panels of P columns,
    `[E, NP, K, P]` with `NP = ceil(N / P)`:

    ```
    packed[e, p, k, j] = weight[e, p*P + j, k]   (0 where p*P + j >= N)
    ```

    the layout `linalg.pack` gives with `inner_dims_pos = [1]` and
    `inner_tiles = [P]`, which a kernel streams contiguously along K
    (`moe-pack-expert-weights` packs them once per loaded module). Tiling
    the columns of a packed grouped matmul needs column offsets that are
    multiples of P.

    bf16 weights may also come packed in **pairs** of consecutive K,
    `[E, NP, KP, P, 2]` with `KP = ceil(K / 2)`:

    ```
    packed[e, p, q, j, i] = weight[e, p*P + j, 2*q + i]   (0 past N or K)
    ```

    (`linalg.pack` with `inner_dims_pos = [1, 2]`, `inner_tiles = [P, 2]`):
    each 32-bit word holds the two weights of one column that a bf16 dot
    product instruction (`vdpbf16ps`, AMX tiles) multiplies with a pair of
    inputs. Tiling the depth of such a grouped matmul needs even depth
    offsets.

    Without `block_experts` the op is **dense**: the rows of one expert
    (`E = 1`), all R of them, in `ceil(R / BM)` blocks of which the last
    holds the `R - (B - 1) * BM` rows left (R need not be a multiple of BM):

    ```
    init[r, n] += sum_k input[r, k] * weight[0, n, k]    for r < R
    ```

    a linear layer (`x w^T`, the router's logits) that the grouped matmul's
    kernels and transformations take as they are, with no routing plan to
    compute first. A dense op has no `block_sizes`, `row_sources` or
    `scatter`.

    With `row_sources` (`[R]` i32), the op gathers its rows itself: row r
    reads `input[row_sources[r], :]` of an `input` of any number of rows
    (the tokens, `[S, K]`), and a source outside `[0, S)` reads a row of
    zeros. The dispatch's row gather then fuses into the matmul's operand
    reads instead of writing every row's copy first.

    With `scatter_rows` (`[R]` i32) and `scatter_scales` (`[R]` f32), the
    op scatters its rows instead: row r is added, times
    `scatter_scales[r]`, to row `scatter_rows[r]` of an `init` of any number
    of rows (the tokens, `[T, N]`), and a target outside `[0, T)` drops the
    row:

    ```
    init[scatter_rows[r], n] += scatter_scales[r] * sum_k input[r, k] * weight[e, n, k]
    ```

    With the plan's row sources as targets and each row's combine weight as
    its scale, that is a down projection with `moe.combine` fused into its
    write-back: no `[R, N]` rows are written and read back. Several rows
    add to one output row, so row blocks are a reduction dimension of the
    iteration domain then: tiles of row blocks that add to the same rows
    run one after another.

    With `atomic` as well, each scattered add is an atomic read-modify-write
    of its element of `init`, so that row blocks are a parallel dimension:
    tiles of any row blocks may run at the same time (a GPU's thread blocks)
    and rows adding to one element do so in an unspecified order, whose f32
    sums may differ in their last bits from run to run (and an atomic f32
    add may flush a subnormal sum to zero). With `unique` instead, no two
    rows target the same row of `init` (a promise, which the row map of a
    top-1 routing keeps: each token has one row), so that row blocks are a
    parallel dimension with plain adds: each tile writes elements no other
    tile of its columns touches. (Either way the tiles' results are slices
    of `init` that overlap: the tiled program is sound once bufferized in
    place, every tile adding into the one buffer.)

    **Block-scaled weights** (FP8 checkpoints: `f8E4M3FN` weights with one
    f32 scale per block of `BN x BK` weights, as `moe.expert_matmul`'s):
    with `scale(%s : [E, ceil(N/BN), ceil(K/BK)] f32) block [BN, BK]` (and
    `paired_scale` for a paired weight) each weight is
    `weight[e, n, k] * scale[e, n floordiv BN, k floordiv BK]`, decoded
    and scaled on the fly: the FP8 bytes are never expanded in memory.
    Packed, such weights are panels of P columns with P dividing BN (each
    panel's column run has one scale per K block); in pairs of K (BK even)
    they are the byte pairs a kernel decodes to the bf16 pairs of a dot
    product. Tiling them needs column offsets that are multiples of BN and
    depth offsets of BK.

    **MXFP4** weights are `i8` e2m1 pairs, two values of consecutive K per
    byte (the even one in the low nibble) in every layout: `[E, N, KP]`,
    packed `[E, NP, KP, P]` with `KP = ceil(K / 2)`, always block-scaled.
    With one scale per column (`BN = 1`, gpt-oss's `[1, 32]`), packed
    weights take their scales packed in the same panels, `[E, NP, KB, P]`
    (`scale[e, n floordiv P, k floordiv BK, n mod P]`), so that a kernel
    reads the scales of a panel's columns as one vector.

    With an `epilogue` region, the op writes each computed element once,
    from its finished sums, instead of accumulating:

    ```
    init[r, n] = epilogue(sum_k input[r, k] * weight[e, n, k],
                          [sum_k input[r, k] * paired_weight[e, n, k],]
                          init[r, n])
    ```

    The region takes one f32 sum per weight and the current element of
    `init`, and yields the new one (`moe.yield`). With `paired_weight` (a
    second weight of the type of `weight`) both sums come from the same rows
    in the same pass over K: the gate and up projections of a gated expert,
    `silu(gate) * up` applied in registers, the `[R, N]` result written
    once. The region holds scalar element-wise ops (arith, math) and
    constants only, so a kernel may apply it to vectors of elements. An op
    with an epilogue may write `bf16` or `f16` rows: `init` of that type,
    the region's `init` argument widened to f32 and its value rounded
    (to nearest even) when written. Rows another matmul multiplies in
    bf16 (tensor cores) then take half the bytes to write and read
    (`moe-narrow-epilogue-outputs`).

    The op works on tensors (one result, the updated `init`) and on memrefs
    (no result), like `linalg` ops, and implements `TilingInterface` through
    an external model (`registerTilingInterfaceExternalModels`): its
    iteration domain is `row blocks x N x K` (parallel, parallel,
    reduction; row blocks are a reduction when scattering without
    `atomic` or `unique`), or `row blocks x
    N` with an epilogue, which needs whole sums; a tile is again
    a `moe.grouped_matmul` on slices of the operands, with the experts of
    its row blocks. Bufferization goes
    through `registerBufferizableOpInterfaceExternalModels`.

    Constraints: (c1) operands are all tensors, with one result of the type
    of `init`, or all memrefs, with no result; (c2) `input` is `[R, K]`, or `[S, K]` with `row_sources` `[R]`
    i32;
    (c3) `weight` is `[E, N, K]`, packed `[E, NP, K, P]` or packed in pairs
    `[E, NP, KP, P, 2]` of bf16 or f8E4M3FN, or e2m1 pairs `[E, N, KP]`,
    packed `[E, NP, KP, P]` of i8, with static `E >= 1`; (c4) `block_experts`
    is `[B]` i32, and so is `block_sizes`; (c5) `init` is `[R, N]` f32 (or bf16 or f16 with an epilogue), or
    `[T, N]` f32 when scattering; (c6) `block_rows >= 1`, and where static,
    `R = B * block_rows` (with `block_experts`); (c7) packed weights have a static `P >= 1` and,
    where static, `NP = ceil(N / P)` (and `KP = ceil(K / 2)` in pairs); (c8) `scatter_rows` `[R]` i32 and
    `scatter_scales` `[R]` f32 come together; (c9) `paired_weight` has the
    type of `weight` and comes with an epilogue; (c10) the epilogue is one
    block of f32 arguments, one per weight and one for `init`, ending in a
    `moe.yield` of one f32; (c11) its other ops are scalar element-wise ops
    or constants, without regions; (c12) an epilogue does not scatter;
    (c13) `scale` and `block` come together, `block` is two sizes `>= 1`,
    and the weights are `f8E4M3FN` or `i8` exactly when they have scales;
    (c14) `scale` is `[E, ceil(N/BN), ceil(K/BK)]` f32, or with packed
    weights and `BN = 1` `[E, NP, ceil(K/BK), P]`; (c15) `paired_scale` has
    the type of `scale` and comes exactly with a paired weight of a scaled
    op; (c16) packed scaled weights have `P` dividing `BN` (or scales
    packed in their panels), and in pairs of K an even `BK`; (c17)
    `exact_products` goes with unscaled weights; (c18) a dense op (no
    `block_experts`) has one expert (`E = 1`) and neither `block_sizes`,
    `row_sources` nor `scatter`; (c19) `atomic` and `unique` go with
    `scatter`, and not together.

    **Exact products** (`exact_products`, as `moe.expert_matmul`'s): no
    lowering rounds the input to bf16, which the bf16 kernels otherwise do
    with f32 and f16 rows. The CPU lowerings keep such an op off the bf16
    kernels (its weights are not packed in pairs: the f32 kernel widens
    them); `moe-narrow-grouped-matmul-inputs` leaves its rows as they are,
    and `moe-narrow-epilogue-outputs` does not write them in bf16;
    on the GPU, the tensor-core tiles (wgmma and mma.sync) split each f32
    input into three bf16 terms (its upper, middle and lower 8 significand
    bits: `x = x0 + x1 + x2`; f16 into two) whose products with bf16
    weights are exact in f32, running K once per term into the same f32
    accumulators, the lowest term first (bits of subnormal inputs below
    2^-133 are dropped): the lower terms' sum `x1 + x2` has at most 16
    significant bits, so that its product with a bf16 weight is exact too,
    and a sum of one product rounds once, as the f32 product does; and
    `mma.sync` multiplies f16 weights by rows of another type on the CUDA
    cores.

    Example (8 experts, blocks of 4 rows, bf16 weights):
    ```mlir
    func.func @up(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xbf16>,
                  %blocks: tensor<?xi32>, %acc: tensor<?x32xf32>)
        -> tensor<?x32xf32> {
      %r = moe.grouped_matmul block_rows(4)
          ins(%rows, %w, %blocks
              : tensor<?x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>)
          outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
      return %r : tensor<?x32xf32>
    }
    ```

    Gate and up projections of a gated expert, SwiGLU in the epilogue:
    ```mlir
    func.func @gate_up(%rows: tensor<?x16xf32>, %w_gate: tensor<8x32x16xf32>,
                       %w_up: tensor<8x32x16xf32>, %blocks: tensor<?xi32>,
                       %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
      %h = moe.grouped_matmul block_rows(4)
          ins(%rows, %w_gate, %blocks
              : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>)
          paired(%w_up : tensor<8x32x16xf32>)
          outs(%acc : tensor<?x32xf32>)
          epilogue {
          ^bb0(%gate: f32, %up: f32, %old: f32):
            %one = arith.constant 1.0 : f32
            %neg = arith.negf %gate : f32
            %exp = math.exp %neg : f32
            %den = arith.addf %one, %exp : f32
            %silu = arith.divf %gate, %den : f32
            %y = arith.mulf %silu, %up : f32
            moe.yield %y : f32
          } -> tensor<?x32xf32>
      return %h : tensor<?x32xf32>
    }
    ```
  }];
  let arguments = (ins
    AnyShaped:$input,
    AnyShaped:$weight,
    Optional<AnyShaped>:$paired_weight,
    Optional<AnyShaped>:$block_experts,
    Optional<AnyShaped>:$block_sizes,
    Optional<AnyShaped>:$row_sources,
    Optional<AnyShaped>:$scatter_rows,
    Optional<AnyShaped>:$scatter_scales,
    Optional<AnyShaped>:$weight_scale,
    Optional<AnyShaped>:$paired_weight_scale,
    AnyShaped:$init,
    I64Attr:$block_rows,
    OptionalAttr<DenseI64ArrayAttr>:$weight_block,
    UnitAttr:$exact_products,
    UnitAttr:$atomic_scatter,
    UnitAttr:$unique_scatter
  );
  let results = (outs Variadic<AnyRankedTensor>:$result);
  // Zero or one region: an op without an epilogue has none to clone.
  let regions = (region VariadicRegion<SizedRegion<1>>:$epilogue);
  let assemblyFormat = [{
    `block_rows` `(` $block_rows `)`
    `ins` `(` $input `,` $weight (`,` $block_experts^)? `:` type($input) `,`
        type($weight) (`,` type($block_experts)^)? `)`
    (`paired` `(` $paired_weight^ `:` type($paired_weight) `)`)?
    (`block_sizes` `(` $block_sizes^ `:` type($block_sizes) `)`)?
    (`row_sources` `(` $row_sources^ `:` type($row_sources) `)`)?
    (`scatter` `(` $scatter_rows^ `,` $scatter_scales `:`
        type($scatter_rows) `,` type($scatter_scales) `)`)?
    (`atomic` $atomic_scatter^)?
    (`unique` $unique_scatter^)?
    (`scale` `(` $weight_scale^ `:` type($weight_scale) `)`)?
    (`paired_scale` `(` $paired_weight_scale^ `:`
        type($paired_weight_scale) `)`)?
    (`block` $weight_block^)?
    (`exact_products` $exact_products^)?
    `outs` `(` $init `:` type($init) `)`
    (`epilogue` $epilogue^)?
    attr-dict (`->` type($result)^)?
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    MutableOperandRange getDpsInitsMutable() { return getInitMutable(); }
    /// The block scale of `weight` (one of getWeights()), or null.
    ::mlir::Value getScaleOf(::mlir::Value weight) {
      return weight == getWeight() ? getWeightScale() : getPairedWeightScale();
    }
    /// The weights' block scales, in the order of getWeights(); empty
    /// without scales.
    ::llvm::SmallVector<::mlir::Value, 2> getWeightScales() {
      ::llvm::SmallVector<::mlir::Value, 2> scales;
      if (::mlir::Value scale = getWeightScale())
        scales.push_back(scale);
      if (::mlir::Value scale = getPairedWeightScale())
        scales.push_back(scale);
      return scales;
    }
    /// Whether the op is dense: no `block_experts`, every row block the
    /// one expert's, the last one partly filled.
    bool isDense() { return !getBlockExperts(); }
    /// The row blocks (B): `block_experts`' size, or `ceil(R / BM)` of a
    /// dense op; on tensors or memrefs, folded where static.
    ::mlir::OpFoldResult getBlockCount(::mlir::OpBuilder &b,
                                       ::mlir::Location loc);
    /// Whether each element is written once through the epilogue region.
    bool hasEpilogue() {
      return !getEpilogue().empty() && !getEpilogue().front().empty();
    }
    /// The block of the epilogue (hasEpilogue()).
    ::mlir::Block &getEpilogueBody() { return getEpilogue().front().front(); }
    /// The weights: `weight`, then `paired_weight` when present.
    ::llvm::SmallVector<::mlir::Value, 2> getWeights() {
      ::llvm::SmallVector<::mlir::Value, 2> weights{getWeight()};
      if (::mlir::Value paired = getPairedWeight())
        weights.push_back(paired);
      return weights;
    }
    /// Copies `from`'s epilogue region (if any) into this op's, created
    /// with as many regions as `from` (`from.getEpilogue().size()`).
    void copyEpilogueFrom(GroupedMatmulOp from);
    /// Whether the weight is packed in panels (`[E, NP, K, P]`, or
    /// `[E, NP, KP, P, 2]` in pairs of K).
    bool isPacked() {
      int64_t rank =
          ::llvm::cast<::mlir::ShapedType>(getWeight().getType()).getRank();
      return rank == 4 || rank == 5;
    }
    /// Whether the weights are e2m1 pairs (i8): two K per byte, in every
    /// layout (`[E, N, KP]`, `[E, NP, KP, P]`).
    bool hasE2M1Pairs() {
      return ::mlir::moe::isE2M1Pairs(
          ::llvm::cast<::mlir::ShapedType>(getWeight().getType())
              .getElementType());
    }
    /// Whether the weight holds pairs of consecutive K: packed in pairs
    /// (`[E, NP, KP, P, 2]`) or e2m1 pairs.
    bool isDepthPaired() {
      return ::llvm::cast<::mlir::ShapedType>(getWeight().getType())
                 .getRank() == 5 || hasE2M1Pairs();
    }
    /// Whether the block scales are packed in the weights' panels
    /// (`[E, NP, KB, P]`: per-column scales, BN = 1).
    bool hasPackedScales() {
      ::mlir::Value scale = getWeightScale();
      return scale &&
             ::llvm::cast<::mlir::ShapedType>(scale.getType()).getRank() == 4;
    }
    /// Memref form: the indices of the block scale of `W[expert, column,
    /// depth]` in the scales' layout.
    ::llvm::SmallVector<::mlir::Value, 4>
    getScaleIndices(::mlir::OpBuilder &b, ::mlir::Location loc,
                    ::mlir::Value expert, ::mlir::Value column,
                    ::mlir::Value depth);
    /// Memref form: `W[expert, column, depth]` of `weight` (one of the
    /// weights) as f32, without its block scale.
    ::mlir::Value loadWeightValue(::mlir::OpBuilder &b, ::mlir::Location loc,
                                  ::mlir::Value weight, ::mlir::Value expert,
                                  ::mlir::Value column, ::mlir::Value depth);
    /// Memref form: `W[expert, column, depth]` of `weight` as f32, times
    /// its block scale when the op has scales.
    ::mlir::Value loadScaledWeight(::mlir::OpBuilder &b, ::mlir::Location loc,
                                   ::mlir::Value weight, ::mlir::Value expert,
                                   ::mlir::Value column, ::mlir::Value depth);
    /// Memref form: the indices of `W[expert, column, depth]` (W the
    /// unpacked `[E, N, K]` weight) in `weight`'s layout.
    ::llvm::SmallVector<::mlir::Value, 5>
    getWeightIndices(::mlir::OpBuilder &b, ::mlir::Location loc,
                     ::mlir::Value expert, ::mlir::Value column,
                     ::mlir::Value depth);
    /// Memref form: the columns and the depth `weight` (one of the
    /// weights) holds: N (NP * P when packed) and K (2 * KP in pairs).
    std::pair<::mlir::Value, ::mlir::Value>
    getWeightExtents(::mlir::OpBuilder &b, ::mlir::Location loc,
                     ::mlir::Value weight);
    /// Columns per weight panel (P) of a packed weight, else 0.
    int64_t getPanelColumns() {
      return isPacked() ? ::llvm::cast<::mlir::ShapedType>(
                              getWeight().getType()).getDimSize(3)
                        : 0;
    }
    /// Number of experts (E), from the weight type.
    int64_t getNumExperts() {
      return ::llvm::cast<::mlir::ShapedType>(getWeight().getType())
          .getDimSize(0);
    }
    /// Memref form: loads the expert of row block `block` (index) and
    /// whether it owns rows (`0 <= expert < E`, i1); expert 0, owning, in
    /// a dense op.
    std::pair<::mlir::Value, ::mlir::Value>
    loadBlockExpert(::mlir::OpBuilder &b, ::mlir::Location loc,
                    ::mlir::Value block);
    /// Memref form: the row of `input` that row `row` reads and whether it
    /// is one (`0 <= source < S`, i1); `row` itself without `row_sources`.
    /// The row is clamped into `input` either way.
    std::pair<::mlir::Value, ::mlir::Value>
    loadRowSource(::mlir::OpBuilder &b, ::mlir::Location loc,
                  ::mlir::Value row);
    /// Whether the rows are scattered into `init` (`scatter_rows`).
    bool isScattering() { return static_cast<bool>(getScatterRows()); }
    /// Whether row blocks are a reduction (rows scattered without
    /// `atomic` or `unique`): tiles of row blocks must not run at the same
    /// time.
    bool rowBlocksReduce() {
      return isScattering() && !getAtomicScatter() && !getUniqueScatter();
    }
    /// Memref form: adds the f32 `term` to `init[row, column]` (an atomic
    /// read-modify-write with `atomic`).
    void addToInitElement(::mlir::OpBuilder &b, ::mlir::Location loc,
                          ::mlir::Value term, ::mlir::Value row,
                          ::mlir::Value column);
    /// Memref form: the row of `init` that row `row` adds to, clamped into
    /// `init`, its scale (f32) and whether it adds anywhere (a target in
    /// `[0, T)`, i1); `row` itself, 1 and true without scatter.
    std::tuple<::mlir::Value, ::mlir::Value, ::mlir::Value>
    loadScatterTarget(::mlir::OpBuilder &b, ::mlir::Location loc,
                      ::mlir::Value row);
    /// Memref form: the rows of `block` to compute, `block_sizes[block]`
    /// clamped to [0, BM], BM without block sizes, or the rows left from
    /// the block's first (clamped to [0, BM]) in a dense op.
    ::mlir::Value loadFilledRows(::mlir::OpBuilder &b, ::mlir::Location loc,
                                 ::mlir::Value block);
    /// Memref form: `init[row, column]` as f32.
    ::mlir::Value loadInitElement(::mlir::OpBuilder &b, ::mlir::Location loc,
                                  ::mlir::Value row, ::mlir::Value column);
    /// Memref form: stores the f32 `value` into `init[row, column]`,
    /// rounded to init's element type (an epilogue's bf16 or f16 rows).
    void storeInitElement(::mlir::OpBuilder &b, ::mlir::Location loc,
                          ::mlir::Value value, ::mlir::Value row,
                          ::mlir::Value column);
  }];
}

//===----------------------------------------------------------------------===//
// moe.all_to_all
//===----------------------------------------------------------------------===//

def Moe_AllToAllOp : Moe_Op<"all_to_all", [
    AllTypesMatch<["send_counts", "recv_counts"]>,
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "variable-size exchange of rows among the ranks of a communicator";
  let description = [{
    The all-to-all of expert parallelism (`MPI_Alltoallv` with a row as the
    unit): a row is a slice of `input` or `init` along dimension 0. Rank `r`
    sends its rows in rank order: rows `[s(p), s(p) + send_counts[p])` go to
    rank `p`, where `s(p)` is the sum of `send_counts[q]` for `q < p`. It
    receives `recv_counts[p]` rows from each rank `p` and stores them in
    rank order from row 0 of `init`; rows of `init` past the received ones
    keep their values. The result (on tensors) is `init` so updated; on
    buffers `init` is written in place.

    It is a collective: every rank of `comm` runs it, and the counts agree
    (`recv_counts[p]` on rank `r` equals `send_counts[r]` on rank `p`), as
    MPI requires. The op has a side effect on the communicator, so it is
    neither removed nor reordered with other collectives. The row counts
    of `input` and `init` bound the sums of the counts: more is undefined
    (the lowering does not check).

    Constraints: (c1) `input` and `init` are ranked with rank `>= 1`, the
    same element type and the same row shape (dimensions 1 and up, where
    static); (c2) `send_counts` and `recv_counts` are `[R]` i64 with static
    `R >= 1`; (c3) all shaped operands are tensors, with one result of
    `init`'s type, or all buffers, with no result; (c4) `input` and `init`
    are different values (MPI forbids overlapping send and receive
    buffers).

    Example (rows of 16 features among 4 ranks):

    ```mlir
    func.func @exchange(%rows: tensor<?x16xf32>, %send: tensor<4xi64>,
                        %recv: tensor<4xi64>, %init: tensor<?x16xf32>)
        -> tensor<?x16xf32> {
      %comm = mpi.comm_world : !mpi.comm
      %got = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
          : tensor<?x16xf32>, tensor<4xi64> outs(%init : tensor<?x16xf32>)
          -> tensor<?x16xf32>
      return %got : tensor<?x16xf32>
    }
    ```
  }];
  let arguments = (ins
    AnyShaped:$input,
    AnyShaped:$send_counts,
    AnyShaped:$recv_counts,
    Moe_MPIComm:$comm,
    AnyShaped:$init
  );
  let results = (outs Variadic<AnyRankedTensor>:$result);
  let assemblyFormat = [{
    $input `counts` `(` $send_counts `,` $recv_counts `)` `comm` `(` $comm `)`
    attr-dict `:` type($input) `,` type($send_counts)
    `outs` `(` $init `:` type($init) `)` (`->` type($result)^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    MutableOperandRange getDpsInitsMutable() { return getInitMutable(); }
    /// Number of ranks (R), from the counts' type.
    int64_t getNumRanks() {
      return ::llvm::cast<::mlir::ShapedType>(getSendCounts().getType())
          .getDimSize(0);
    }
  }];
}

//===----------------------------------------------------------------------===//
// moe.yield
//===----------------------------------------------------------------------===//

def Moe_YieldOp : Moe_Op<"yield", [Pure, Terminator,
                                   HasParent<"GroupedMatmulOp">]> {
  let summary = "yields the value of a grouped matmul's epilogue";
  let description = [{
    Terminates the `epilogue` region of `moe.grouped_matmul`: its operand is
    the new element of `init` (the region's verifier checks it is one f32).
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "attr-dict ($values^ `:` type($values))?";
}

#endif // MOE_DIALECT_MOE_IR_MOEOPS_TD
