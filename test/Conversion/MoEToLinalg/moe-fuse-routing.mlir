// RUN: moe-opt %s --moe-fuse-routing --canonicalize --cse --split-input-file \
// RUN:   --allow-unregistered-dialect | FileCheck %s
// RUN: moe-opt %s --moe-fuse-routing=token-parallel --canonicalize --cse \
// RUN:   --split-input-file --allow-unregistered-dialect | FileCheck %s --check-prefix=TOKENS
// RUN: moe-opt %s --moe-fuse-routing="token-parallel lane-max-tokens=16" \
// RUN:   --canonicalize --cse --split-input-file --allow-unregistered-dialect \
// RUN:   | FileCheck %s --check-prefix=LANES
// RUN: not moe-opt %s --moe-fuse-routing="lane-max-tokens=-1" --split-input-file \
// RUN:   --allow-unregistered-dialect 2>&1 \
// RUN:   | FileCheck %s --check-prefix=BAD-LANES
// BAD-LANES: moe-fuse-routing: lane-max-tokens must be at least 0

// A softmax top-2 gate whose ids feed a routing plan: one scf.forall over
// chunks of 64 tokens writes each token's weights and ids and, in the
// chunk's work row (8 counts, then 8 scores), the chunk's expert counts.
// Per token: the logits and their max, exp and sum, the division, then one
// pass of top-2 insertion. After the loop only the counts' sum, the aligned
// offsets, the block table and the placement (in parallel from the chunks'
// counts) remain: no [T,E] tensor but the logits, and no moe op.
// CHECK-LABEL: func @softmax_top2
// CHECK-SAME: (%[[LOGITS:.*]]: tensor<?x8xf32>)
// CHECK-NOT: moe.
// CHECK: %[[T:.*]] = tensor.dim %[[LOGITS]], %c0
// CHECK: %[[CHUNKS:.*]] = arith.ceildivui %[[T]], %c64
// CHECK: %[[WORK0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x16xf32>)
// CHECK: %[[ROUTED:.*]]:3 = scf.forall (%[[C:.*]]) in (%[[CHUNKS]]) shared_outs(%[[W:.*]] = %{{.*}}, %[[IDS:.*]] = %{{.*}}, %[[WORK:.*]] = %[[WORK0]]) -> (tensor<?x2xf32>, tensor<?x2xi32>, tensor<?x16xf32>)
// CHECK:   tensor.extract_slice %[[WORK]][%[[C]], 0] [1, 16] [1, 1]
// CHECK:   scf.for
// CHECK:     scf.for {{.*}} -> (tensor<1x16xf32>, f32)
// CHECK:       tensor.extract %[[LOGITS]]
// CHECK:       arith.maximumf
// CHECK:     scf.for {{.*}} -> (tensor<1x16xf32>, f32)
// CHECK:       math.exp
// CHECK:       arith.addf
// CHECK:     scf.for {{.*}} -> (tensor<1x16xf32>)
// CHECK:       arith.divf
// CHECK:     scf.for {{.*}} -> (f32, f32, index, index)
// CHECK:       scf.if
// CHECK:     arith.divf
// CHECK:     arith.addf %{{.*}}, %cst
// CHECK-NOT: tensor<?x8xf32>
// CHECK:   tensor.parallel_insert_slice
// The plan's per-expert steps in parallel: each expert's count summed
// over the chunks, the padded counts and their scan (E + 1 = 9: four
// steps), each block's expert and filled rows (a binary search of its
// first row in the offsets).
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<8xi32>)
// CHECK:   scf.for
// CHECK:     tensor.extract %[[ROUTED]]#2
// CHECK:     arith.fptosi
// CHECK-COUNT-5: } -> tensor<9xi64>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<?xi32>)
// CHECK-NOT: scf.for
// CHECK: } -> tensor<?xi32>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<?xi32>)
// CHECK-NOT: scf.for
// CHECK: } -> tensor<?xi32>
// The placement in parallel: each expert's first row per chunk (a forall
// over the experts), each chunk's assignments from there (a forall over
// the chunks, writing its tokens' rows of the row map),
// each token's rows' sources (a forall over the tokens).
// CHECK: scf.forall (%{{.*}}) in (8) {{.*}} -> (tensor<?x8xi32>)
// CHECK:   scf.for {{.*}} -> (tensor<?x1xi32>, index)
// CHECK: scf.forall (%{{.*}}) in (%[[CHUNKS]]) {{.*}} -> (tensor<?x2xi32>)
// CHECK:   scf.for {{.*}} -> (tensor<?x2xi32>, tensor<1x8xi32>)
// CHECK: scf.forall (%{{.*}}) in (%[[T]]) {{.*}} -> (tensor<?xi32>)
// CHECK-COUNT-2: tensor.parallel_insert_slice
// CHECK-NOT: tensor<?x8xf32>
// CHECK: return %[[ROUTED]]#0
// Up to 16 tokens, a loop whose token's work is reductions over the
// experts: the logits' maximum, the exponentials (a parallel loop into the
// token's scores) and their sum, the division, then per choice the
// largest selection key below the previous choice's; past 16 tokens, the
// loop of a token per iteration. Both write the same rows.
// LANES-LABEL: func @softmax_top2
// LANES: %[[W0:.*]] = tensor.empty(%{{.*}}) : tensor<?x2xf32>
// LANES: %[[FEW:.*]] = arith.cmpi ule, %{{.*}}, %c16
// LANES: scf.if %[[FEW]] -> (tensor<?x2xf32>, tensor<?x2xi32>)
// LANES:   scf.forall {{.*}} shared_outs(%{{.*}} = %[[W0]]
// LANES:     scf.parallel {{.*}} to (%c8) {{.*}} -> f32
// LANES:       arith.maximumf
// LANES:     linalg.generic
// LANES:       math.exp
// LANES:     scf.parallel {{.*}} -> f32
// LANES:       arith.addf
// LANES:     linalg.generic
// LANES:       arith.divf
// LANES:     scf.parallel {{.*}} -> i64
// LANES:       arith.maxui
// LANES:     scf.parallel {{.*}} -> i64
// LANES:       arith.cmpi ult
// LANES:       arith.maxui
// LANES: } else {
// LANES:   scf.forall {{.*}} shared_outs(%{{.*}} = %[[W0]]
// LANES:     scf.if
func.func @softmax_top2(%logits: tensor<?x8xf32>)
    -> (tensor<?x2xf32>, tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2, renormalize>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(16) align(16)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  return %w, %o, %b, %s, %r, %m : tensor<?x2xf32>, tensor<9xi64>,
      tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
}

// -----

// DeepSeek-V3 routing: sigmoid scores into the work row (16 counts, 16
// scores, 4 group scores), the selection bias added where a score is
// selected, the group scores (sum of the top two), then the top-4 over the
// experts of the groups fewer than 2 groups rank before; weights
// renormalized and scaled.
// CHECK-LABEL: func @deepseek_v3
// CHECK-SAME: (%[[LOGITS:.*]]: tensor<?x16xf32>, %[[BIAS:.*]]: tensor<16xf32>)
// CHECK: scf.forall {{.*}} -> (tensor<?x4xf32>, tensor<?x4xi32>, tensor<?x36xf32>)
// CHECK:   scf.for
// CHECK:     math.exp
// CHECK:     arith.divf %cst{{.*}}, %{{.*}} : f32
// CHECK:   scf.for %{{.*}} = %c0 to %c4
// CHECK:     scf.for %{{.*}} = %c0 to %c4 {{.*}} -> (f32, f32)
// CHECK:       tensor.extract %[[BIAS]]
// CHECK:       arith.maximumf
// CHECK:       arith.minimumf
// CHECK:     arith.addf
// CHECK:   scf.for %{{.*}} = %c0 to %c4 {{.*}} -> (f32, f32, f32, f32, index, index, index, index)
// CHECK:     scf.for %{{.*}} = %c0 to %c4 {{.*}} -> (index)
// CHECK:     arith.cmpi slt, %{{.*}}, %c2
// CHECK:     scf.if
// CHECK:       scf.for
// CHECK:         tensor.extract %[[BIAS]]
// CHECK:   arith.mulf %{{.*}}, %cst
// On lanes, each group's best two selection keys are reductions over the
// group's 4 experts, the kept groups the bits of an i64, and each choice
// takes only experts of kept groups.
// LANES-LABEL: func @deepseek_v3
// LANES: scf.if
// LANES:   scf.for {{.*}} -> (tensor<4xf32>)
// LANES:     scf.parallel {{.*}} to (%c4) {{.*}} -> i64
// LANES:     scf.parallel {{.*}} to (%c4) {{.*}} -> i64
// LANES:     arith.addf
// LANES:   scf.for {{.*}} -> (i64)
// LANES:     arith.shli
// LANES:   scf.parallel {{.*}} to (%c16) {{.*}} -> i64
// LANES:     arith.divui
// LANES:     arith.shrui
func.func @deepseek_v3(%logits: tensor<?x16xf32>, %bias: tensor<16xf32>)
    -> (tensor<?x4xf32>, tensor<?x4xi32>) {
  %w, %ids = moe.gate %logits bias(%bias : tensor<16xf32>)
      routing <sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias,
               groups = 4, topk_groups = 2, group_score = sum_top2>
      : tensor<?x16xf32> -> tensor<?x4xf32>, tensor<?x4xi32>
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(8) align(8)
      : tensor<?x4xi32> -> tensor<17xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x4xi32>
  return %w, %m : tensor<?x4xf32>, tensor<?x4xi32>
}

// -----

// Noise is added to each logit as it is read; a random second choice is
// dispatched only when twice its gate exceeds the token's sample.
// CHECK-LABEL: func @noisy_random_second
// CHECK-SAME: (%[[LOGITS:.*]]: tensor<?x4xf32>, %[[NOISE:.*]]: tensor<?x4xf32>, %[[U:.*]]: tensor<?xf32>)
// CHECK: scf.forall
// CHECK:   tensor.extract %[[LOGITS]]
// CHECK:   tensor.extract %[[NOISE]]
// CHECK:   arith.addf
// CHECK:   tensor.extract %[[U]]
// CHECK:   arith.cmpf ogt
// CHECK:   arith.select %{{.*}}, %{{.*}}, %c-1_i32 : i32
func.func @noisy_random_second(%logits: tensor<?x4xf32>,
                               %noise: tensor<?x4xf32>, %u: tensor<?xf32>)
    -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits noise(%noise : tensor<?x4xf32>)
      uniform(%u : tensor<?xf32>)
      routing <softmax, top_k = 2, second = random, noisy>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<5xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  return %w, %m : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// Gates that rank tokens against each other (capacity, expert choice), that
// keep more than 16 choices, or that return statistics are not fused; nor is
// a plan of ids from anywhere else.
// CHECK-LABEL: func @not_fused
// CHECK: moe.gate {{.*}} capacity
// CHECK: moe.routing_plan
// CHECK: moe.gate {{.*}} expert_choice
// CHECK: moe.routing_plan
// CHECK: moe.gate {{.*}} top_k = 17
// CHECK: moe.routing_plan
// CHECK: moe.gate {{.*}} statistics
// CHECK: moe.routing_plan
// CHECK: moe.routing_plan
func.func @not_fused(%logits: tensor<?x8xf32>, %wide: tensor<?x32xf32>,
                     %ids: tensor<?x2xi32>) {
  %w0, %i0 = moe.gate %logits
      routing <softmax, top_k = 2, capacity = fixed(3)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %p0:5 = moe.routing_plan %i0 block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  %w1, %i1 = moe.gate %logits
      routing <softmax, expert_choice, capacity = fixed(2)>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  %p1:5 = moe.routing_plan %i1 block_rows(4) align(4)
      : tensor<?x8xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x8xi32>
  %w2, %i2 = moe.gate %wide routing <softmax, top_k = 17>
      : tensor<?x32xf32> -> tensor<?x17xf32>, tensor<?x17xi32>
  %p2:5 = moe.routing_plan %i2 block_rows(4) align(4)
      : tensor<?x17xi32> -> tensor<33xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x17xi32>
  %w3, %i3, %load = moe.gate %logits routing <softmax, top_k = 2>
      statistics [tokens_per_expert]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<8xi64>
  %p3:5 = moe.routing_plan %i3 block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  %p4:5 = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  "test.use"(%w0, %p0#0, %w1, %p1#0, %w2, %p2#0, %w3, %load, %p3#0, %p4#0)
      : (tensor<?x2xf32>, tensor<9xi64>, tensor<?x8xf32>, tensor<9xi64>,
         tensor<?x17xf32>, tensor<33xi64>, tensor<?x2xf32>, tensor<8xi64>,
         tensor<9xi64>, tensor<9xi64>) -> ()
  return
}

// -----

// token-parallel: the tokens are routed by a forall over the tokens, each
// with a zeroed scratch row of its own made in its iteration (no [T, 16]
// tensor), then counted per chunk by a forall over the chunks, a chunk
// of floor(sqrt(T / K)) tokens within [1, 64] (each chunk's placement and
// each expert's sum over the chunks then take about as many steps); the
// plan is built from those counts as before.
// TOKENS-LABEL: func @softmax_top2_tokens
// TOKENS-SAME: (%[[LOGITS:.*]]: tensor<?x8xf32>)
// TOKENS: %[[T:.*]] = tensor.dim %[[LOGITS]], %c0
// TOKENS-NOT: x16xf32>
// TOKENS: %[[ROUTED:.*]]:2 = scf.forall (%{{.*}}) in (%[[T]]) shared_outs({{.*}}) -> (tensor<?x2xf32>, tensor<?x2xi32>)
// TOKENS:   %[[ROW:.*]] = tensor.empty() : tensor<1x16xf32>
// TOKENS:   linalg.fill ins(%{{.*}} : f32) outs(%[[ROW]] : tensor<1x16xf32>)
// TOKENS:   math.exp
// TOKENS:   tensor.parallel_insert_slice
// TOKENS: %[[PER:.*]] = arith.divui %[[T]], %c2
// TOKENS: %[[ROOT:.*]] = math.sqrt
// TOKENS: %[[AT_LEAST:.*]] = arith.maxui %{{.*}}, %c1
// TOKENS: %[[SIZE:.*]] = arith.minui %[[AT_LEAST]], %c64
// TOKENS: %[[CHUNKS:.*]] = arith.ceildivui %[[T]], %[[SIZE]]
// TOKENS: scf.forall (%{{.*}}) in (%[[CHUNKS]]) shared_outs({{.*}}) -> (tensor<?x8xi32>)
// TOKENS:   tensor.extract %[[ROUTED]]#1
// TOKENS: return %[[ROUTED]]#0
func.func @softmax_top2_tokens(%logits: tensor<?x8xf32>)
    -> (tensor<?x2xf32>, tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2, renormalize>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(16) align(16)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  return %w, %o, %b, %s, %r, %m : tensor<?x2xf32>, tensor<9xi64>,
      tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
}
