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
    One attribute describes every routing scheme of docs/Routing.md, which
    defines what each computes. The first keyword is the scoring function;
    the other items come in any order, each at most once, and are printed in
    a canonical order with defaults omitted. The parameters below give each
    item's meaning and default.

    ```
    #moe.routing<(softmax | sigmoid | sparsemixer)
                 [, top_k = K | expert_choice] [, renormalize [= kept]]
                 [, scale = F] [, selection_bias]
                 [, groups = G, topk_groups = M, group_score = (sum_top2 | max)]
                 [, capacity = (fixed(C) | factor(F, ceil | floor | round
                                                  [, min = M]) | fraction(F))]
                 [, group_size = S] [, priority = (position | score)]
                 [, second = (all | random)] [, noisy] [, jitter = J]
                 [, unweighted]>
    ```

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
    AttrParameter<"ScoringFunc", "`softmax`, `sigmoid` or `sparsemixer`: how router logits become scores. Required, the first keyword. `sparsemixer` (Phi-3.5-MoE): choice k is the k-th largest logit `m_k`, and its weight is the softmax, at that expert, of the logits of the experts not chosen before it whose relative gap `(m_k - l_e) / max(|l_e|, m_k)` is at most `2 * jitter`.">:$scoring,
    AttrParameter<"RoutingMode", "token choice (`top_k = K`: each token picks K experts) or `expert_choice` (each expert picks its top-C tokens). Required.">:$mode,
    AttrParameter<"int64_t", "`top_k = K`: experts per token, 1 <= K <= E; 0 with `expert_choice`.">:$topK,
    AttrParameter<"Renormalize", "`renormalize`: combine weights divided by their sum over the K selected experts; `renormalize = kept`: over the choices kept after capacity dropping. Default: none.">:$renormalize,
    APFloatParameter<"`scale = F`: routed scaling factor multiplying the combine weights. Default 1.0.">:$scale,
    AttrParameter<"bool", "`selection_bias`: an `[E]` bias operand added to the scores for selection only, not to the combine weights (DeepSeek-V3 `e_score_correction_bias`). Default off.">:$selectionBias,
    AttrParameter<"int64_t", "`groups = G`: experts split into G equal groups for group-limited top-k. Default 1 (no groups).">:$numGroups,
    AttrParameter<"int64_t", "`topk_groups = M`: the M best groups whose experts stay selectable. Default: every group.">:$topkGroups,
    AttrParameter<"GroupScore", "`group_score = sum_top2` or `max`: a group's score, the sum of its two best expert scores or its best one.">:$groupScore,
    AttrParameter<"CapacityKind", "`capacity = ...`: none (dropless, the default), `fixed(C)`, `factor(F, rounding[, min = M])` or `fraction(F)`.">:$capacityKind,
    AttrParameter<"int64_t", "`fixed(C)`: C slots per expert per token group.">:$fixedCapacity,
    APFloatParameter<"`factor(F, ...)`: C = max(M, rounding(F * S * K / E)) for a group of S tokens (K = 1 with expert choice); `fraction(F)`: C = ceil(F * S).">:$capacityFactor,
    AttrParameter<"Rounding", "`ceil`, `floor` or `round`: the rounding of `factor` capacities.">:$rounding,
    AttrParameter<"int64_t", "`min = M`: the least capacity of `factor`. Default 0.">:$minCapacity,
    AttrParameter<"int64_t", "`group_size = S`: capacity applies per group of S consecutive tokens; a shorter last group gets the capacity of its own size. Default: the whole batch is one group.">:$groupSize,
    AttrParameter<"Priority", "`priority = position` or `score`: which choices keep their slot when an expert is over capacity, the earlier tokens or those with the higher top score. Default position.">:$priority,
    AttrParameter<"SecondPolicy", "`second = all` or `random`: top-2 dispatches every second choice, or only where 2 * w2 > u for a uniform operand u (GShard). Default all.">:$secondPolicy,
    AttrParameter<"bool", "`noisy`: noisy top-k gating; the layer has a noise router and noise samples are an explicit operand. Default off.">:$noisy,
    APFloatParameter<"`jitter = J`: sparsemixer's relative-gap threshold (`router_jitter_noise`), finite and non-negative. Default 0.0; sparsemixer only.">:$jitter,
    AttrParameter<"bool", "`unweighted`: the scores select the experts, and every kept choice is combined with weight `scale` (1 by default) instead of its score: hash layers, MoEfication and the experts MoEBERT splits from a dense FFN, whose outputs add up to the dense one. Not with `renormalize`. Default off.">:$unweighted
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
