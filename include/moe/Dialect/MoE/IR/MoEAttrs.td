//===- MoEAttrs.td - MoE dialect attributes -----------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_IR_MOEATTRS_TD
#define MOE_DIALECT_MOE_IR_MOEATTRS_TD

include "mlir/IR/AttrTypeBase.td"
include "moe/Dialect/MoE/IR/MoEDialect.td"
include "moe/Dialect/MoE/IR/MoEEnums.td"

class Moe_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Moe_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def Moe_RoutingAttr : Moe_Attr<"Routing", "routing"> {
  let summary = "a routing scheme: scoring, selection, capacity and priority";
  let description = [{
    One attribute describes every routing scheme of docs/Routing.md (the
    project's account of SEMANTICS.md §2-6). The first keyword is the scoring
    function; the remaining items come in any order, each at most once, and
    are printed in a canonical order with defaults omitted.

    | item | meaning | default |
    |---|---|---|
    | `softmax` / `sigmoid` | scores from logits | required, first |
    | `top_k = K` | experts per token (token choice) | required unless `expert_choice` |
    | `expert_choice` | each expert picks its top-C tokens | token choice |
    | `renormalize` / `renormalize = kept` | weights / sum over the K selected, or over the choices kept after capacity dropping | none |
    | `scale = F` | routed scaling factor applied to combine weights | 1.0 |
    | `selection_bias` | an `[E]` bias added to scores for selection only (DeepSeek-V3 `e_score_correction_bias`) | off |
    | `groups = G, topk_groups = M, group_score = sum_top2 \| max` | group-limited top-k: keep the M best of G expert groups | 1 group |
    | `capacity = fixed(C)` | C slots per expert per token group | dropless |
    | `capacity = factor(F, ceil \| floor \| round[, min = M])` | C = max(M, rounding(F * S * K / E)), S tokens per group (K = 1 for expert choice) | |
    | `capacity = fraction(F)` | C = ceil(F * S) | |
    | `group_size = S` | local group dispatching: capacity per group of S consecutive tokens; the last group may be shorter and gets the capacity of its own size | whole batch |
    | `priority = position \| score` | over capacity, earlier tokens or tokens with the higher top score keep their slot | position |
    | `second = all \| random` | top-2: dispatch every second choice, or only where 2 * w2 > u (explicit uniform operand) | all |
    | `noisy` | Shazeer noisy top-k: the layer has a noise router; noise samples are an explicit operand (noise off when absent) | off |

    Example:

    ```mlir
    #mixtral  = #moe.routing<softmax, top_k = 2, renormalize>
    #deepseek = #moe.routing<sigmoid, top_k = 8, renormalize, scale = 2.5,
                             selection_bias, groups = 8, topk_groups = 4,
                             group_score = sum_top2>
    #gshard   = #moe.routing<softmax, top_k = 2, renormalize = kept,
                             capacity = factor(2.0, ceil), group_size = 1024,
                             second = random>
    #switch   = #moe.routing<softmax, top_k = 1, capacity = fixed(64)>
    #ec       = #moe.routing<softmax, expert_choice, capacity = factor(2.0, round)>
    ```
  }];
  let parameters = (ins
    "ScoringFunc":$scoring,
    "RoutingMode":$mode,
    "int64_t":$topK,
    "Renormalize":$renormalize,
    APFloatParameter<"routed scaling factor">:$scale,
    "bool":$selectionBias,
    "int64_t":$numGroups,
    "int64_t":$topkGroups,
    "GroupScore":$groupScore,
    "CapacityKind":$capacityKind,
    "int64_t":$fixedCapacity,
    APFloatParameter<"capacity factor or token fraction">:$capacityFactor,
    "Rounding":$rounding,
    "int64_t":$minCapacity,
    "int64_t":$groupSize,
    "Priority":$priority,
    "SecondPolicy":$secondPolicy,
    "bool":$noisy
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    bool isExpertChoice() const { return getMode() == RoutingMode::ExpertChoice; }
    bool hasCapacity() const { return getCapacityKind() != CapacityKind::None; }
    bool isGroupLimited() const { return getNumGroups() > 1; }
    double getScaleValue() const { return getScale().convertToDouble(); }
    double getCapacityFactorValue() const {
      return getCapacityFactor().convertToDouble();
    }

    /// Number of (token, expert) slots per token in gate results: K for token
    /// choice, E for expert choice.
    int64_t getChoicesPerToken(int64_t numExperts) const {
      return isExpertChoice() ? numExperts : getTopK();
    }

    /// Checks the rules that depend on the number of experts.
    ::llvm::LogicalResult
    verifyForExperts(::llvm::function_ref<::mlir::InFlightDiagnostic()> emitError,
                     int64_t numExperts) const;
  }];
}

def Moe_StatisticsAttr : Moe_Attr<"Statistics", "statistics"> {
  let summary = "the routing statistics an op returns, in result order";
  let description = [{
    A list such as `#moe.statistics<[tokens_per_expert, z_loss]>`, written
    `statistics [tokens_per_expert, z_loss]` in op syntax. Types of the matching
    results: `tokens_per_expert` and `tokens_per_expert_before_drop`:
    `tensor<Exi64>`; `dropped_count`: `tensor<i64>`; `load_balancing_loss`,
    `z_loss`, `importance_loss`: `tensor<f32>`.
  }];
  let parameters = (ins ArrayRefParameter<"Statistic">:$values);
  let assemblyFormat = "`<` `[` $values `]` `>`";
  let genVerifyDecl = 1;
}

#endif // MOE_DIALECT_MOE_IR_MOEATTRS_TD
