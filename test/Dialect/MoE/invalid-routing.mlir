// RUN: moe-opt %s -split-input-file -verify-diagnostics

// Diagnostics of the #moe.routing attribute (RoutingAttr::parse and
// RoutingAttr::verify) and of the statistics list. Errors of the attribute
// verifier are reported at the attribute: at its `<`, on the line of the
// `routing` keyword (or of the `#moe.routing` alias definition).

//===----------------------------------------------------------------------===//
// RoutingAttr::verify
//===----------------------------------------------------------------------===//

// routing verify: jitter is finite and non-negative
func.func @negative_jitter(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: jitter must be finite and non-negative, got -1.000000e-02}}
  %w, %ids = moe.gate %l routing <sparsemixer, top_k = 2, jitter = -0.01>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: jitter applies to sparsemixer scoring only
func.func @softmax_jitter(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: jitter applies to sparsemixer scoring only}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, jitter = 0.01>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: unweighted routing does not renormalize
func.func @unweighted_renormalize(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: unweighted routing combines every kept choice with weight 'scale' and does not renormalize}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, renormalize, unweighted>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: sparsemixer is token choice without selection bias or groups
func.func @sparsemixer_groups(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: sparsemixer scoring is token choice without selection_bias or groups}}
  %w, %ids = moe.gate %l routing <sparsemixer, top_k = 2, groups = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: token choice needs top_k (missing top_k defaults to 0)
func.func @missing_top_k(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: top_k must be at least 1, got 0}}
  %w, %ids = moe.gate %l routing <softmax, renormalize>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: top_k must be at least 1 (alias definition)
// expected-error @+1 {{routing: top_k must be at least 1, got -2}}
#neg_top_k = #moe.routing<softmax, top_k = -2>
func.func @negative_top_k() attributes {routing = #neg_top_k} {
  return
}

// -----

// routing verify: expert_choice takes no top_k
func.func @expert_choice_top_k(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: expert_choice routing takes no top_k (experts choose tokens)}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, top_k = 2, capacity = fixed(4)>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: expert_choice requires a capacity
func.func @expert_choice_no_capacity(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: expert_choice routing requires a capacity (tokens per expert)}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: expert_choice does not renormalize
func.func @expert_choice_renormalize(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: expert_choice routing does not renormalize}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = factor(2.0, ceil), renormalize>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: expert_choice takes no expert groups
func.func @expert_choice_groups(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: expert_choice routing takes no expert groups, got groups = 2}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = fixed(4), groups = 2>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: priority applies to token choice only
func.func @expert_choice_priority(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: priority and second-choice policy apply to token-choice routing only}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = fixed(4), priority = score>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: second-choice policy applies to token choice only
func.func @expert_choice_second(%l: tensor<?x8xf32>, %u: tensor<?xf32>) {
  // expected-error @+1 {{routing: priority and second-choice policy apply to token-choice routing only}}
  %w, %ids = moe.gate %l uniform(%u : tensor<?xf32>) routing <softmax, expert_choice, capacity = fixed(4), second = random>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: scale must be positive (zero)
func.func @scale_zero(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: scale must be a finite positive number, got 0.000000e+00}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, scale = 0.0>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: scale must be positive (negative)
func.func @scale_negative(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: scale must be a finite positive number, got -2.500000e+00}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, scale = -2.5>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: scale must be finite (+inf as a hexadecimal literal)
func.func @scale_inf(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: scale must be a finite positive number, got INF}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, scale = 0x7FF0000000000000>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: scale must be finite (NaN as a hexadecimal literal)
func.func @scale_nan(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: scale must be a finite positive number, got nan}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, scale = 0x7FF8000000000000>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: groups must be at least 1
func.func @groups_zero(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: groups must be at least 1, got 0}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, groups = 0>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: topk_groups must not exceed groups
func.func @topk_groups_exceed(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: topk_groups must be in [1, groups = 4], got 5}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, groups = 4, topk_groups = 5>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: topk_groups without groups (a single group)
func.func @topk_groups_without_groups(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: topk_groups must be in [1, groups = 1], got 2}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, topk_groups = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: topk_groups must be at least 1
func.func @topk_groups_negative(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: topk_groups must be in [1, groups = 4], got -1}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, groups = 4, topk_groups = -1>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: renormalize = kept requires a capacity
func.func @renormalize_kept_dropless(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: renormalize = kept renormalizes over the choices kept after capacity dropping and requires a capacity}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, renormalize = kept>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: fixed capacity must be non-negative
func.func @capacity_fixed_negative(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: capacity must be non-negative, got -4}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 1, capacity = fixed(-4)>
      : tensor<?x8xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  return
}

// -----

// routing verify: capacity factor must be non-negative
func.func @capacity_factor_negative(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: capacity factor must be finite and non-negative, got -1.250000e+00}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = factor(-1.25, ceil)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: capacity factor must be finite (+inf as a hexadecimal literal)
func.func @capacity_factor_inf(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: capacity factor must be finite and non-negative, got INF}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = factor(0x7FF0000000000000, floor)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: capacity fraction must be non-negative
func.func @capacity_fraction_negative(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: capacity fraction must be finite and non-negative, got -5.000000e-01}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = fraction(-0.5)>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: capacity fraction must be at most 1
func.func @capacity_fraction_above_one(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: capacity fraction must be at most 1, got 1.500000e+00}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = fraction(1.5)>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: minimum capacity must be non-negative
func.func @capacity_min_negative(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: minimum capacity must be non-negative, got -1}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = factor(1.25, round, min = -1)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: group_size must be non-negative
func.func @group_size_negative(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: group_size must be non-negative, got -1024}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = fixed(8), group_size = -1024>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: group_size requires a capacity
func.func @group_size_dropless(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: group_size (local group dispatching) requires a capacity}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, group_size = 1024>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: priority = score requires a capacity
func.func @priority_score_dropless(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: priority = score decides who is dropped over capacity and requires a capacity}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, priority = score>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: second = random applies to top-2 routing
func.func @second_random_top1(%l: tensor<?x8xf32>, %u: tensor<?xf32>) {
  // expected-error @+1 {{routing: second = random applies to top-2 routing, got top_k = 1}}
  %w, %ids = moe.gate %l uniform(%u : tensor<?xf32>) routing <softmax, top_k = 1, second = random>
      : tensor<?x8xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  return
}

// -----

// routing verify: the error lands at the attribute's `<`, not at the faulty item
func.func @multi_line_attribute(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      // expected-error @+1 {{routing: second = random applies to top-2 routing, got top_k = 4}}
      routing <softmax, top_k = 4, renormalize,
               capacity = factor(2.0, ceil),
               second = random>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// routing verify: also for an attribute in an attribute dictionary
// expected-error @+1 {{routing: capacity fraction must be at most 1, got 2.000000e+00}}
func.func @in_attr_dict() attributes {routing = #moe.routing<softmax, expert_choice, capacity = fraction(2.0)>} {
  return
}

// -----

//===----------------------------------------------------------------------===//
// RoutingAttr::parse
//===----------------------------------------------------------------------===//

// routing parse: unknown scoring function
func.func @unknown_scoring(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown scoring function 'relu'}}
  %w, %ids = moe.gate %l routing <relu, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: the scoring function is required and comes first
func.func @scoring_not_first(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown scoring function 'top_k'}}
  %w, %ids = moe.gate %l routing <top_k = 2, softmax>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: unknown routing item
func.func @unknown_item(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown routing item 'temperature'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, temperature = 0.1>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: an item given twice
func.func @item_twice(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing item 'top_k' given twice}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, renormalize, top_k = 1>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: a flag item given twice
func.func @flag_twice(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing item 'noisy' given twice}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, noisy, noisy>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: unknown capacity kind
func.func @unknown_capacity_kind(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown capacity kind 'dynamic'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = dynamic(4)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: unknown rounding of a capacity factor
func.func @unknown_rounding(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown rounding 'trunc'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = factor(1.25, trunc)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: capacity factor needs a rounding
func.func @factor_without_rounding(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected ','}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = factor(1.25)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: the third argument of factor(...) is `min = M`
func.func @factor_bad_min(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected 'min'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = factor(1.25, ceil, max = 4)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: fixed capacity is an integer
func.func @fixed_capacity_float(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected integer value}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = fixed(2.5)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: unknown priority
func.func @unknown_priority(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown priority 'random'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = fixed(4), priority = random>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: unknown second-choice policy
func.func @unknown_second(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown second-choice policy 'threshold'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, second = threshold>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: unknown group score
func.func @unknown_group_score(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown group score 'sum_top3'}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, groups = 4, topk_groups = 2, group_score = sum_top3>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: unknown renormalization
func.func @unknown_renormalization(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown renormalization 'always'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, renormalize = always>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: missing `=` after top_k
func.func @missing_equal_top_k(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected '='}}
  %w, %ids = moe.gate %l routing <softmax, top_k 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: missing `=` after capacity
func.func @missing_equal_capacity(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected '='}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity fixed(4)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: missing `=` after the `min` of a capacity factor
func.func @missing_equal_min(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected '='}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = factor(1.0, ceil, min 4)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: top_k is an integer
func.func @top_k_not_integer(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected integer value}}
  %w, %ids = moe.gate %l routing <softmax, top_k = two>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: scale is a float literal (an integer needs a trailing dot)
func.func @scale_integer(%l: tensor<?x8xf32>) {
  // expected-error @+2 {{unexpected decimal integer literal for a floating point value}}
  // expected-note @+1 {{add a trailing dot to make the literal a float}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, scale = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: items are separated by commas and closed by `>`
func.func @missing_greater(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected '>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2 renormalize>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing parse: an item key is a keyword
func.func @item_not_keyword(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected valid keyword}}
  %w, %ids = moe.gate %l routing <softmax, 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// statistics
//===----------------------------------------------------------------------===//

// statistics parse: unknown statistic keyword
func.func @unknown_statistic(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown statistic 'aux_loss'}}
  %w, %ids, %s = moe.gate %l routing <softmax, top_k = 2> statistics [aux_loss]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>
  return
}

// -----

// statistics parse: a statistic is a keyword
func.func @statistic_not_keyword(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{expected valid keyword}}
  %w, %ids, %s = moe.gate %l routing <softmax, top_k = 2> statistics ["z_loss"]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>
  return
}

// -----

// statistics parse: unknown statistic in the #moe.statistics attribute form
// expected-error @+2 {{expected one of [tokens_per_expert, tokens_per_expert_before_drop, dropped_count, load_balancing_loss, z_loss, importance_loss] for a routing statistic that gate or layer ops return on request, got: aux_loss}}
// expected-error @+1 {{failed to parse Moe_StatisticsAttr parameter 'values'}}
func.func @unknown_statistic_attr() attributes {s = #moe.statistics<[aux_loss]>} {
  return
}

// -----

// statistics verify: a statistic requested twice
func.func @statistic_twice(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{statistic 'dropped_count' requested twice}}
  %w, %ids, %s0, %s1 = moe.gate %l routing <softmax, top_k = 2, capacity = fixed(4)>
      statistics [dropped_count, dropped_count]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<i64>, tensor<i64>
  return
}

// -----

// statistics verify: wrong number of statistics results
func.func @statistics_count(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{requests 3 statistics but has 2 statistics results}}
  %w, %ids, %s0, %s1 = moe.gate %l routing <softmax, top_k = 2>
      statistics [z_loss, load_balancing_loss, importance_loss]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>, tensor<f32>
  return
}

// -----

// statistics verify: wrong statistics result type (results follow the listed order)
func.func @statistics_type(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{statistic 'tokens_per_expert' must be 'tensor<8xi64>', got 'tensor<f32>'}}
  %w, %ids, %s0, %s1 = moe.gate %l routing <softmax, top_k = 2>
      statistics [tokens_per_expert, z_loss]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>, tensor<8xi64>
  return
}

// -----

// routing parse: top_k written with expert_choice, even as 0
func.func @expert_choice_top_k_zero(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: expert_choice routing takes no top_k (experts choose tokens)}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, top_k = 0, capacity = fixed(4)>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return
}

// -----

// routing verify: an explicit topk_groups = 0 is out of range
func.func @topk_groups_zero(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: topk_groups must be in [1, groups = 4], got 0}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, groups = 4, topk_groups = 0>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// routing verify: group_score without expert groups
func.func @group_score_without_groups(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: group_score applies to group-limited routing (groups > 1)}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, group_score = max>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// statistics parse: an empty list is rejected (omit the clause instead)
func.func @empty_statistics(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{statistics list must not be empty; omit the clause instead}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2> statistics []
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}
