// Round-trip of every form of #moe.routing: items in any order, canonical
// order and omitted defaults on output.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func private @dense_soft
// CHECK-SAME: r = #moe.routing<softmax, top_k = 8>
func.func private @dense_soft() attributes {r = #moe.routing<softmax, top_k = 8>}

// CHECK-LABEL: func private @mixtral
// CHECK-SAME: r = #moe.routing<softmax, top_k = 2, renormalize>
func.func private @mixtral() attributes {r = #moe.routing<softmax, renormalize, top_k = 2>}

// CHECK-LABEL: func private @explicit_defaults
// CHECK-SAME: r = #moe.routing<softmax, top_k = 2, renormalize>
func.func private @explicit_defaults() attributes {r = #moe.routing<softmax,
    top_k = 2, renormalize = selected, scale = 1.0, groups = 1,
    capacity = none, group_size = 0, priority = position, second = all>}

// CHECK-LABEL: func private @no_renormalize
// CHECK-SAME: r = #moe.routing<softmax, top_k = 4>
func.func private @no_renormalize() attributes {r = #moe.routing<softmax, top_k = 4, renormalize = none>}

// CHECK-LABEL: func private @deepseek_v3
// CHECK-SAME: r = #moe.routing<sigmoid, top_k = 8, renormalize, scale = 2.500000e+00, selection_bias, groups = 8, topk_groups = 4, group_score = sum_top2>
func.func private @deepseek_v3() attributes {r = #moe.routing<sigmoid,
    group_score = sum_top2, topk_groups = 4, groups = 8, selection_bias,
    scale = 2.5, renormalize, top_k = 8>}

// CHECK-LABEL: func private @deepseek_v2
// CHECK-SAME: r = #moe.routing<softmax, top_k = 6, scale = 1.600000e+01, groups = 8, topk_groups = 3, group_score = max>
func.func private @deepseek_v2() attributes {r = #moe.routing<softmax,
    top_k = 6, scale = 16.0, groups = 8, topk_groups = 3, group_score = max>}

// Without topk_groups, all groups are kept.
// CHECK-LABEL: func private @groups_default_topk
// CHECK-SAME: groups = 4, topk_groups = 4, group_score = max
func.func private @groups_default_topk() attributes {r = #moe.routing<softmax, top_k = 2, groups = 4, group_score = max>}

// CHECK-LABEL: func private @switch_fixed
// CHECK-SAME: r = #moe.routing<softmax, top_k = 1, capacity = fixed(64)>
func.func private @switch_fixed() attributes {r = #moe.routing<softmax, top_k = 1, capacity = fixed(64)>}

// CHECK-LABEL: func private @switch_zero_capacity
// CHECK-SAME: capacity = fixed(0)
func.func private @switch_zero_capacity() attributes {r = #moe.routing<softmax, top_k = 1, capacity = fixed(0)>}

// CHECK-LABEL: func private @switch_factor
// CHECK-SAME: r = #moe.routing<softmax, top_k = 1, capacity = factor(1.250000e+00, floor)>
func.func private @switch_factor() attributes {r = #moe.routing<softmax, top_k = 1, capacity = factor(1.25, floor)>}

// CHECK-LABEL: func private @gshard
// CHECK-SAME: r = #moe.routing<softmax, top_k = 2, renormalize = kept, capacity = factor(2.000000e+00, ceil, min = 4), group_size = 1024, second = random>
func.func private @gshard() attributes {r = #moe.routing<softmax, top_k = 2,
    renormalize = kept, capacity = factor(2.0, ceil, min = 4),
    group_size = 1024, second = random>}

// CHECK-LABEL: func private @nllb
// CHECK-SAME: r = #moe.routing<softmax, top_k = 2, renormalize = kept, capacity = fraction(2.000000e-01), priority = score>
func.func private @nllb() attributes {r = #moe.routing<softmax, top_k = 2,
    priority = score, capacity = fraction(0.2), renormalize = kept>}

// CHECK-LABEL: func private @vmoe_bpr
// CHECK-SAME: r = #moe.routing<softmax, top_k = 2, capacity = factor(1.050000e+00, round), priority = score>
func.func private @vmoe_bpr() attributes {r = #moe.routing<softmax, top_k = 2, capacity = factor(1.05, round), priority = score>}

// CHECK-LABEL: func private @expert_choice
// CHECK-SAME: r = #moe.routing<softmax, expert_choice, capacity = factor(2.000000e+00, round)>
func.func private @expert_choice() attributes {r = #moe.routing<softmax, expert_choice, capacity = factor(2.0, round)>}

// CHECK-LABEL: func private @expert_choice_fixed
// CHECK-SAME: r = #moe.routing<softmax, expert_choice, capacity = fixed(3)>
func.func private @expert_choice_fixed() attributes {r = #moe.routing<softmax, expert_choice, capacity = fixed(3)>}

// CHECK-LABEL: func private @phimoe_sparsemixer
// CHECK-SAME: r = #moe.routing<sparsemixer, top_k = 2, jitter = 1.000000e-02>
func.func private @phimoe_sparsemixer() attributes {r = #moe.routing<sparsemixer, jitter = 0.01, top_k = 2>}

// CHECK-LABEL: func private @noisy_topk
// CHECK-SAME: r = #moe.routing<softmax, top_k = 4, renormalize, noisy>
func.func private @noisy_topk() attributes {r = #moe.routing<softmax, noisy, top_k = 4, renormalize>}

// CHECK-LABEL: func private @moefication_unweighted
// CHECK-SAME: r = #moe.routing<softmax, top_k = 2, scale = 2.000000e+00, unweighted>
func.func private @moefication_unweighted() attributes {r = #moe.routing<softmax, unweighted, top_k = 2, scale = 2.0>}

// CHECK-LABEL: func private @statistics_attr
// CHECK-SAME: s = #moe.statistics<[tokens_per_expert, z_loss]>
func.func private @statistics_attr() attributes {s = #moe.statistics<[tokens_per_expert, z_loss]>}

// A standalone statistics attribute round-trips in the generic op form too.
// CHECK-LABEL: func @gate_statistics_generic
// CHECK: statistics [z_loss]
func.func @gate_statistics_generic(%l: tensor<?x8xf32>) -> tensor<f32> {
  %w, %ids, %z = moe.gate %l routing <softmax, top_k = 2> statistics [z_loss]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>
  return %z : tensor<f32>
}
