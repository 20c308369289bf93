//===- MoEEnums.td - MoE dialect enumerations ---------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_IR_MOEENUMS_TD
#define MOE_DIALECT_MOE_IR_MOEENUMS_TD

include "mlir/IR/EnumAttr.td"
include "moe/Dialect/MoE/IR/MoEDialect.td"

def Moe_ScoringFunc : I32EnumAttr<"ScoringFunc",
    "how router logits become scores", [
      I32EnumAttrCase<"Softmax", 0, "softmax">,
      I32EnumAttrCase<"Sigmoid", 1, "sigmoid">,
      I32EnumAttrCase<"Sparsemixer", 2, "sparsemixer">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_RoutingMode : I32EnumAttr<"RoutingMode",
    "who chooses: tokens choose experts, or experts choose tokens", [
      I32EnumAttrCase<"TokenChoice", 0, "token_choice">,
      I32EnumAttrCase<"ExpertChoice", 1, "expert_choice">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_Renormalize : I32EnumAttr<"Renormalize",
    "whether and when combine weights are renormalized to sum to one", [
      I32EnumAttrCase<"None", 0, "none">,
      I32EnumAttrCase<"Selected", 1, "selected">,
      I32EnumAttrCase<"Kept", 2, "kept">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_GroupScore : I32EnumAttr<"GroupScore",
    "how an expert group is scored in group-limited routing", [
      I32EnumAttrCase<"SumTop2", 0, "sum_top2">,
      I32EnumAttrCase<"Max", 1, "max">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_CapacityKind : I32EnumAttr<"CapacityKind",
    "how the per-expert capacity of a token group is determined", [
      I32EnumAttrCase<"None", 0, "none">,
      I32EnumAttrCase<"Fixed", 1, "fixed">,
      I32EnumAttrCase<"Factor", 2, "factor">,
      I32EnumAttrCase<"Fraction", 3, "fraction">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_Rounding : I32EnumAttr<"Rounding",
    "rounding of a real-valued capacity to an integer", [
      I32EnumAttrCase<"Ceil", 0, "ceil">,
      I32EnumAttrCase<"Floor", 1, "floor">,
      I32EnumAttrCase<"Round", 2, "round">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_Priority : I32EnumAttr<"Priority",
    "which tokens keep their slot when an expert is over capacity", [
      I32EnumAttrCase<"Position", 0, "position">,
      I32EnumAttrCase<"Score", 1, "score">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_SecondPolicy : I32EnumAttr<"SecondPolicy",
    "which second choices of top-2 routing are dispatched", [
      I32EnumAttrCase<"All", 0, "all">,
      I32EnumAttrCase<"Random", 1, "random">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_ActivationAttr : I32EnumAttr<"Activation",
    "expert activation function", [
      I32EnumAttrCase<"Silu", 0, "silu">,
      I32EnumAttrCase<"Gelu", 1, "gelu">,
      I32EnumAttrCase<"GeluTanh", 2, "gelu_tanh">,
      I32EnumAttrCase<"Relu", 3, "relu">,
      I32EnumAttrCase<"ClampedSwiglu", 4, "clamped_swiglu">
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_Statistic : I32EnumAttr<"Statistic",
    "a routing statistic that gate or layer ops return on request", [
      I32EnumAttrCase<"TokensPerExpert", 0, "tokens_per_expert">,
      I32EnumAttrCase<"TokensPerExpertBeforeDrop", 1,
                      "tokens_per_expert_before_drop">,
      I32EnumAttrCase<"DroppedCount", 2, "dropped_count">,
      I32EnumAttrCase<"LoadBalancingLoss", 3, "load_balancing_loss">,
      I32EnumAttrCase<"ZLoss", 4, "z_loss">,
      I32EnumAttrCase<"ImportanceLoss", 5, "importance_loss">
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

#endif // MOE_DIALECT_MOE_IR_MOEENUMS_TD
