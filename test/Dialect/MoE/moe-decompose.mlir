// RUN: moe-opt %s --moe-decompose --split-input-file | FileCheck %s
// RUN: moe-opt %s --moe-decompose=row-align=16 --split-input-file | FileCheck %s --check-prefix=ALIGN
// RUN: not moe-opt %s --moe-decompose=row-align=0 --split-input-file 2>&1 | FileCheck %s --check-prefix=BADALIGN

// BADALIGN: error: moe-decompose: row-align must be at least 1, got 0

// Mixtral: softmax top-2 with renormalization, SwiGLU experts, no shared expert.
// CHECK-LABEL: func @mixtral
// CHECK-SAME: (%[[X:.*]]: tensor<?x16xf32>, %[[WG:.*]]: tensor<8x16xf32>, %[[W1:.*]]: tensor<8x32x16xf32>, %[[W3:.*]]: tensor<8x32x16xf32>, %[[W2:.*]]: tensor<8x16x32xf32>)
// CHECK-NOT: moe.layer
// CHECK: %[[LOGITS:.*]] = linalg.matmul indexing_maps = [{{.*}}] ins(%[[X]], %[[WG]] : tensor<?x16xf32>, tensor<8x16xf32>) outs(%{{.*}} : tensor<?x8xf32>)
// CHECK: %[[W:.*]], %[[IDS:.*]] = moe.gate %[[LOGITS]] routing <softmax, top_k = 2, renormalize> : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
// CHECK: %[[ROWS:.*]], %[[OFF:.*]], %[[MAP:.*]] = moe.dispatch %[[X]], %[[IDS]] : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
// CHECK: %[[G:.*]] = moe.expert_matmul %[[ROWS]], %[[W1]] offsets(%[[OFF]] : tensor<9xi64>) : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
// CHECK: %[[U:.*]] = moe.expert_matmul %[[ROWS]], %[[W3]] offsets(%[[OFF]] : tensor<9xi64>)
// CHECK: %[[H:.*]] = linalg.generic {{.*}} ins(%[[G]], %[[U]] : tensor<?x32xf32>, tensor<?x32xf32>)
// CHECK-NEXT: ^bb0(%[[GV:.*]]: f32, %[[UV:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[NEG:.*]] = arith.negf %[[GV]]
// CHECK-NEXT: %[[EXP:.*]] = math.exp %[[NEG]]
// CHECK-NEXT: %[[DEN:.*]] = arith.addf %[[EXP]], %{{.*}}
// CHECK-NEXT: %[[SIG:.*]] = arith.divf %{{.*}}, %[[DEN]]
// CHECK-NEXT: %[[SILU:.*]] = arith.mulf %[[GV]], %[[SIG]]
// CHECK-NEXT: %[[PROD:.*]] = arith.mulf %[[SILU]], %[[UV]]
// CHECK-NEXT: linalg.yield %[[PROD]]
// CHECK: %[[D:.*]] = moe.expert_matmul %[[H]], %[[W2]] offsets(%[[OFF]] : tensor<9xi64>) : tensor<?x32xf32>, tensor<8x16x32xf32> -> tensor<?x16xf32>
// CHECK: %[[Y:.*]] = moe.combine %[[D]], %[[W]], %[[MAP]] : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
// CHECK: return %[[Y]]
// ALIGN-LABEL: func @mixtral
// ALIGN: moe.dispatch %{{.*}}, %{{.*}} align 16 :
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

// -----

// Qwen2-MoE in bf16: top-4 without renormalization, shared expert behind a
// sigmoid gate. Routing logits and the shared expert accumulate in f32; the
// bf16 shared expert is an expert every token picks, on the tokens in f32:
// its dispatch (from T alone) comes between the logits and the gate, and
// its combine is the first T rows of its down projection (one row per
// token, in token order).
// CHECK-LABEL: func @qwen2_moe_bf16
// CHECK-SAME: (%[[X:.*]]: tensor<?x16xbf16>, %[[WG:.*]]: tensor<6x16xbf16>, %{{.*}}: tensor<6x8x16xbf16>, %{{.*}}: tensor<6x8x16xbf16>, %{{.*}}: tensor<6x16x8xbf16>, %[[S1:.*]]: tensor<24x16xbf16>, %[[S3:.*]]: tensor<24x16xbf16>, %[[S2:.*]]: tensor<16x24xbf16>, %[[SG:.*]]: tensor<1x16xbf16>)
// CHECK: %[[LOGITS:.*]] = linalg.matmul {{.*}} ins(%[[X]], %[[WG]] : tensor<?x16xbf16>, tensor<6x16xbf16>) outs(%{{.*}} : tensor<?x6xf32>)
// CHECK: %[[XF:.*]] = linalg.generic {{.*}} ins(%[[X]] : tensor<?x16xbf16>) outs(%{{.*}} : tensor<?x16xf32>)
// CHECK: %[[SR:.*]], %[[SOFF:.*]], %[[SMAP:.*]] = moe.dispatch %[[XF]], %{{.*}} : tensor<?x16xf32>, tensor<?x1xi32> -> tensor<?x16xf32>, tensor<2xi64>, tensor<?x1xi32>
// CHECK: moe.gate %[[LOGITS]] routing <softmax, top_k = 4> : tensor<?x6xf32> -> tensor<?x4xf32>, tensor<?x4xi32>
// CHECK: moe.dispatch {{.*}} -> tensor<?x16xbf16>, tensor<7xi64>, tensor<?x4xi32>
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<?x8xbf16>)
// CHECK: arith.extf
// CHECK: arith.truncf {{.*}} : f32 to bf16
// CHECK: %[[ROUTED:.*]] = moe.combine {{.*}} -> tensor<?x16xbf16>
// CHECK: %[[E1:.*]] = tensor.expand_shape %[[S1]] {{\[\[}}0, 1], [2]] output_shape [1, 24, 16]
// CHECK: %[[E3:.*]] = tensor.expand_shape %[[S3]]
// CHECK: %[[E2:.*]] = tensor.expand_shape %[[S2]]
// CHECK: %[[SGATE:.*]] = moe.expert_matmul %[[SR]], %[[E1]] offsets(%[[SOFF]] : tensor<2xi64>) : tensor<?x16xf32>, tensor<1x24x16xbf16> -> tensor<?x24xf32>
// CHECK: %[[SUP:.*]] = moe.expert_matmul %[[SR]], %[[E3]] offsets(%[[SOFF]] : tensor<2xi64>)
// CHECK: %[[SH:.*]] = linalg.generic {{.*}} ins(%[[SGATE]], %[[SUP]] : tensor<?x24xf32>, tensor<?x24xf32>)
// CHECK: %[[SD:.*]] = moe.expert_matmul %[[SH]], %[[E2]] offsets(%[[SOFF]] : tensor<2xi64>) : tensor<?x24xf32>, tensor<1x16x24xbf16> -> tensor<?x16xf32>
// CHECK: %[[SOUT:.*]] = tensor.extract_slice %[[SD]][0, 0] [%{{.*}}, 16] [1, 1] : tensor<?x16xf32> to tensor<?x16xf32>
// CHECK: %[[Z:.*]] = linalg.matmul {{.*}} ins(%[[X]], %[[SG]] : tensor<?x16xbf16>, tensor<1x16xbf16>) outs(%{{.*}} : tensor<?x1xf32>)
// CHECK: %[[Y:.*]] = linalg.generic {indexing_maps = [#[[ID:.*]], #[[ID]], #[[BCAST:.*]], #[[ID]]]{{.*}} ins(%[[ROUTED]], %[[SOUT]], %[[Z]] : tensor<?x16xbf16>, tensor<?x16xf32>, tensor<?x1xf32>) outs(%{{.*}} : tensor<?x16xbf16>)
// CHECK-NEXT: ^bb0(%[[R:.*]]: bf16, %[[S:.*]]: f32, %[[ZV:.*]]: f32, %{{.*}}: bf16):
// CHECK-NEXT: %[[RF:.*]] = arith.extf %[[R]] : bf16 to f32
// CHECK: %[[GATED:.*]] = arith.mulf %{{.*}}, %[[S]]
// CHECK-NEXT: %[[SUM:.*]] = arith.addf %[[RF]], %[[GATED]]
// CHECK-NEXT: %[[T:.*]] = arith.truncf %[[SUM]] : f32 to bf16
// CHECK-NEXT: linalg.yield %[[T]]
// CHECK: return %[[Y]]
func.func @qwen2_moe_bf16(%x: tensor<?x16xbf16>, %wg: tensor<6x16xbf16>,
    %w1: tensor<6x8x16xbf16>, %w3: tensor<6x8x16xbf16>, %w2: tensor<6x16x8xbf16>,
    %s1: tensor<24x16xbf16>, %s3: tensor<24x16xbf16>, %s2: tensor<16x24xbf16>,
    %sg: tensor<1x16xbf16>) -> tensor<?x16xbf16> {
  %y = moe.layer %x : tensor<?x16xbf16>
      routing <softmax, top_k = 4>
      router(%wg : tensor<6x16xbf16>)
      experts(gate %w1 : tensor<6x8x16xbf16>, up %w3 : tensor<6x8x16xbf16>,
              down %w2 : tensor<6x16x8xbf16>) activation silu
      shared_gate(%s1 : tensor<24x16xbf16>) shared_up(%s3 : tensor<24x16xbf16>)
      shared_down(%s2 : tensor<16x24xbf16>)
      shared_expert_gate(%sg : tensor<1x16xbf16>)
      -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

// DeepSeek-V3: sigmoid scores, selection-only bias, group-limited top-k,
// scaling, an ungated shared expert (bf16: an expert every token picks)
// whose output the routed combine's sums are added to, routing statistics
// passed through.
// CHECK-LABEL: func @deepseek_v3
// CHECK-SAME: %[[B:[a-z0-9]+]]: tensor<16xf32>
// CHECK: %[[LOGITS:.*]] = linalg.matmul
// CHECK: moe.dispatch %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<?x1xi32>
// CHECK: %[[W:.*]], %[[IDS:.*]], %[[STATS:.*]]:2 = moe.gate %[[LOGITS]] bias(%[[B]] : tensor<16xf32>) routing <sigmoid, top_k = 4, renormalize, scale = 2.500000e+00, selection_bias, groups = 4, topk_groups = 2, group_score = sum_top2> statistics [tokens_per_expert, load_balancing_loss] : tensor<?x16xf32> -> tensor<?x4xf32>, tensor<?x4xi32>, tensor<16xi64>, tensor<f32>
// CHECK: %[[ROUTED:.*]] = moe.expert_matmul {{.*}}, tensor<16x16x8xbf16> -> 
// CHECK: %[[SOUT:.*]] = tensor.extract_slice {{.*}} : tensor<?x16xf32> to tensor<?x16xf32>
// CHECK-NOT: linalg.generic
// CHECK: %[[Y:.*]] = moe.combine %[[ROUTED]], %[[W]], %{{.*}} init(%[[SOUT]] : tensor<?x16xf32>) : tensor<?x16xf32>, tensor<?x4xf32>, tensor<?x4xi32> -> tensor<?x16xf32>
// CHECK-NEXT: return %[[Y]], %[[STATS]]#0, %[[STATS]]#1
func.func @deepseek_v3(%x: tensor<?x16xf32>, %wg: tensor<16x16xf32>,
    %b: tensor<16xf32>, %w1: tensor<16x8x16xbf16>, %w3: tensor<16x8x16xbf16>,
    %w2: tensor<16x16x8xbf16>, %s1: tensor<8x16xbf16>, %s3: tensor<8x16xbf16>,
    %s2: tensor<16x8xbf16>) -> (tensor<?x16xf32>, tensor<16xi64>, tensor<f32>) {
  %y, %load, %aux = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias,
               groups = 4, topk_groups = 2, group_score = sum_top2>
      router(%wg : tensor<16x16xf32>) score_bias(%b : tensor<16xf32>)
      experts(gate %w1 : tensor<16x8x16xbf16>, up %w3 : tensor<16x8x16xbf16>,
              down %w2 : tensor<16x16x8xbf16>) activation silu
      shared_gate(%s1 : tensor<8x16xbf16>) shared_up(%s3 : tensor<8x16xbf16>)
      shared_down(%s2 : tensor<16x8xbf16>)
      statistics [tokens_per_expert, load_balancing_loss]
      -> tensor<?x16xf32>, tensor<16xi64>, tensor<f32>
  return %y, %load, %aux : tensor<?x16xf32>, tensor<16xi64>, tensor<f32>
}

// -----

// DeepSeek-V3 FP8: block-scaled routed and shared weights (blocks of 4 x 8).
// The routed projections carry their scales; the shared expert is an expert
// every token picks once with weight 1: a dispatch of zero ids (first),
// its weights and scales as [1, N, K] and [1, NB, KB], its result the first
// T rows of its down projection.
// CHECK-LABEL: func @deepseek_v3_fp8
// CHECK-SAME: %[[W1:[a-z0-9]+]]: tensor<16x8x16xf8E4M3FN>, %[[W3:[a-z0-9]+]]: tensor<16x8x16xf8E4M3FN>, %[[W2:[a-z0-9]+]]: tensor<16x16x8xf8E4M3FN>
// CHECK-SAME: %[[C1:[a-z0-9]+]]: tensor<16x2x2xf32>, %[[C3:[a-z0-9]+]]: tensor<16x2x2xf32>, %[[C2:[a-z0-9]+]]: tensor<16x4x1xf32>, %[[S1:[a-z0-9]+]]: tensor<8x16xf8E4M3FN>, %{{.*}}: tensor<8x16xf8E4M3FN>, %{{.*}}: tensor<16x8xf8E4M3FN>, %[[D1:[a-z0-9]+]]: tensor<2x2xf32>
// CHECK: %[[IDS:.*]] = linalg.fill ins(%{{.*}} : i32) outs(%{{.*}} : tensor<?x1xi32>)
// CHECK: %[[SR:.*]], %[[SOFF:.*]], %[[SMAP:.*]] = moe.dispatch %{{.*}}, %[[IDS]] : tensor<?x16xf32>, tensor<?x1xi32> -> tensor<?x16xf32>, tensor<2xi64>, tensor<?x1xi32>
// CHECK: moe.expert_matmul %{{.*}}, %[[W1]] offsets(%{{.*}}) scale(%[[C1]] : tensor<16x2x2xf32>) block [4, 8]
// CHECK: moe.expert_matmul %{{.*}}, %[[W3]] offsets(%{{.*}}) scale(%[[C3]] : tensor<16x2x2xf32>) block [4, 8]
// CHECK: moe.expert_matmul %{{.*}}, %[[W2]] offsets(%{{.*}}) scale(%[[C2]] : tensor<16x4x1xf32>) block [4, 8]
// CHECK: %[[SG:.*]] = tensor.expand_shape %[[S1]] {{\[\[}}0, 1], [2]] output_shape [1, 8, 16]
// CHECK: %[[DG:.*]] = tensor.expand_shape %[[D1]] {{\[\[}}0, 1], [2]] output_shape [1, 2, 2]
// CHECK-COUNT-4: tensor.expand_shape
// CHECK: moe.expert_matmul %[[SR]], %[[SG]] offsets(%[[SOFF]] : tensor<2xi64>) scale(%[[DG]] : tensor<1x2x2xf32>) block [4, 8]
// CHECK: moe.expert_matmul %[[SR]], %{{.*}} offsets(%[[SOFF]] : tensor<2xi64>) scale(%{{.*}} : tensor<1x2x2xf32>) block [4, 8]
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} offsets(%[[SOFF]] : tensor<2xi64>) scale(%{{.*}} : tensor<1x4x1xf32>) block [4, 8] : tensor<?x8xf32>, tensor<1x16x8xf8E4M3FN> -> tensor<?x16xf32>
// CHECK: %[[SOUT:.*]] = tensor.extract_slice
// CHECK-NOT: linalg.matmul
// CHECK: moe.combine {{.*}} init(%[[SOUT]] : tensor<?x16xf32>)
// CHECK-NOT: moe.combine
// CHECK-NOT: linalg.matmul
func.func @deepseek_v3_fp8(%x: tensor<?x16xf32>, %wg: tensor<16x16xf32>,
    %b: tensor<16xf32>, %w1: tensor<16x8x16xf8E4M3FN>, %w3: tensor<16x8x16xf8E4M3FN>,
    %w2: tensor<16x16x8xf8E4M3FN>, %c1: tensor<16x2x2xf32>, %c3: tensor<16x2x2xf32>,
    %c2: tensor<16x4x1xf32>, %s1: tensor<8x16xf8E4M3FN>, %s3: tensor<8x16xf8E4M3FN>,
    %s2: tensor<16x8xf8E4M3FN>, %d1: tensor<2x2xf32>, %d3: tensor<2x2xf32>,
    %d2: tensor<4x1xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias,
               groups = 4, topk_groups = 2, group_score = sum_top2>
      router(%wg : tensor<16x16xf32>) score_bias(%b : tensor<16xf32>)
      experts(gate %w1 : tensor<16x8x16xf8E4M3FN>, up %w3 : tensor<16x8x16xf8E4M3FN>,
              down %w2 : tensor<16x16x8xf8E4M3FN>) activation silu
      shared_gate(%s1 : tensor<8x16xf8E4M3FN>) shared_up(%s3 : tensor<8x16xf8E4M3FN>)
      shared_down(%s2 : tensor<16x8xf8E4M3FN>)
      gate_scale(%c1 : tensor<16x2x2xf32>) up_scale(%c3 : tensor<16x2x2xf32>)
      down_scale(%c2 : tensor<16x4x1xf32>) shared_gate_scale(%d1 : tensor<2x2xf32>)
      shared_up_scale(%d3 : tensor<2x2xf32>) shared_down_scale(%d2 : tensor<4x1xf32>)
      weight_block [4, 8]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// NLLB-MoE-style: ungated ReLU experts with biases, capacity routing.
// CHECK-LABEL: func @biased_relu_capacity
// CHECK-SAME: %[[WI:[a-z0-9]+]]: tensor<4x32x16xf32>, %[[WO:[a-z0-9]+]]: tensor<4x16x32xf32>, %[[BI:[a-z0-9]+]]: tensor<4x32xf32>, %[[BO:[a-z0-9]+]]: tensor<4x16xf32>
// CHECK: moe.gate %{{.*}} routing <softmax, top_k = 2, renormalize = kept, capacity = fraction(2.500000e-01), priority = score> : tensor<7x4xf32> -> tensor<7x2xf32>, tensor<7x2xi32>
// CHECK: %[[ROWS:.*]], %[[OFF:.*]], %{{.*}} = moe.dispatch {{.*}} : tensor<7x16xf32>, tensor<7x2xi32> -> tensor<?x16xf32>, tensor<5xi64>, tensor<7x2xi32>
// CHECK: %[[U:.*]] = moe.expert_matmul %[[ROWS]], %[[WI]] offsets(%[[OFF]] : tensor<5xi64>) bias(%[[BI]] : tensor<4x32xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[U]] : tensor<?x32xf32>)
// CHECK-NEXT: ^bb0(%[[V:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[RELU:.*]] = arith.maximumf %[[V]], %{{.*}}
// CHECK-NEXT: linalg.yield %[[RELU]]
// CHECK: moe.expert_matmul %{{.*}}, %[[WO]] offsets(%[[OFF]] : tensor<5xi64>) bias(%[[BO]] : tensor<4x16xf32>)
// CHECK: moe.combine {{.*}} -> tensor<7x16xf32>
func.func @biased_relu_capacity(%x: tensor<7x16xf32>, %wg: tensor<4x16xf32>,
    %wi: tensor<4x32x16xf32>, %wo: tensor<4x16x32xf32>, %bi: tensor<4x32xf32>,
    %bo: tensor<4x16xf32>) -> tensor<7x16xf32> {
  %y = moe.layer %x : tensor<7x16xf32>
      routing <softmax, top_k = 2, renormalize = kept, capacity = fraction(0.25),
               priority = score>
      router(%wg : tensor<4x16xf32>)
      experts(up %wi : tensor<4x32x16xf32>, down %wo : tensor<4x16x32xf32>)
      activation relu
      up_bias(%bi : tensor<4x32xf32>) down_bias(%bo : tensor<4x16xf32>)
      -> tensor<7x16xf32>
  return %y : tensor<7x16xf32>
}

// -----

// Noisy top-k gating with noise samples: logits + noise * softplus(x Wn^T),
// with the gated GELU experts' gate bias.
// CHECK-LABEL: func @noisy_gelu
// CHECK-SAME: (%[[X:.*]]: tensor<?x16xf32>, %[[WG:.*]]: tensor<4x16xf32>, %[[WN:.*]]: tensor<4x16xf32>, %[[N:.*]]: tensor<?x4xf32>
// CHECK: %[[LOGITS:.*]] = linalg.matmul {{.*}} ins(%[[X]], %[[WG]]
// CHECK: %[[NL:.*]] = linalg.matmul {{.*}} ins(%[[X]], %[[WN]]
// CHECK: %[[NOISE:.*]] = linalg.generic {{.*}} ins(%[[N]], %[[NL]] : tensor<?x4xf32>, tensor<?x4xf32>)
// CHECK-NEXT: ^bb0(%[[NV:.*]]: f32, %[[LV:.*]]: f32, %{{.*}}: f32):
// CHECK: math.absf %[[LV]]
// CHECK: math.log1p
// CHECK: %[[SP:.*]] = arith.addf
// CHECK-NEXT: %[[SCALED:.*]] = arith.mulf %[[NV]], %[[SP]]
// CHECK-NEXT: linalg.yield %[[SCALED]]
// CHECK: moe.gate %[[LOGITS]] noise(%[[NOISE]] : tensor<?x4xf32>) routing <softmax, top_k = 2, renormalize, noisy>
// CHECK: moe.expert_matmul {{.*}} bias(%{{.*}} : tensor<4x32xf32>)
// CHECK: linalg.generic
// CHECK: math.erf
func.func @noisy_gelu(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %wn: tensor<4x16xf32>, %n: tensor<?x4xf32>, %w1: tensor<4x32x16xf32>,
    %w3: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>, %b1: tensor<4x32xf32>)
    -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize, noisy>
      router(%wg : tensor<4x16xf32>) noise_router(%wn : tensor<4x16xf32>)
      noise(%n : tensor<?x4xf32>)
      experts(gate %w1 : tensor<4x32x16xf32>, up %w3 : tensor<4x32x16xf32>,
              down %w2 : tensor<4x16x32xf32>) activation gelu
      gate_bias(%b1 : tensor<4x32xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Noisy gating without noise samples (inference): the noise router is unused.
// CHECK-LABEL: func @noisy_without_noise
// CHECK-COUNT-1: linalg.matmul
// CHECK-NOT: linalg.matmul
// CHECK: moe.gate %{{.*}} routing <softmax, top_k = 2, renormalize, noisy> :
func.func @noisy_without_noise(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %wn: tensor<4x16xf32>, %w3: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>)
    -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize, noisy>
      router(%wg : tensor<4x16xf32>) noise_router(%wn : tensor<4x16xf32>)
      experts(up %w3 : tensor<4x32x16xf32>, down %w2 : tensor<4x16x32xf32>)
      activation gelu_tanh
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// GShard top-2 with random routing of the second choice: the uniform samples
// go to the gate; expert choice gives [T, E] gate results.
// CHECK-LABEL: func @gshard_random
// CHECK-SAME: %[[U:[a-z0-9]+]]: tensor<?xf32>
// CHECK: moe.gate %{{.*}} uniform(%[[U]] : tensor<?xf32>) routing <softmax, top_k = 2, renormalize = kept, capacity = factor(2.000000e+00, ceil), group_size = 4, second = random> statistics [dropped_count]
// CHECK: math.tanh
func.func @gshard_random(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %u: tensor<?xf32>, %w3: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>)
    -> (tensor<?x16xf32>, tensor<i64>) {
  %y, %dropped = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize = kept,
               capacity = factor(2.0, ceil), group_size = 4, second = random>
      router(%wg : tensor<4x16xf32>) uniform(%u : tensor<?xf32>)
      experts(up %w3 : tensor<4x32x16xf32>, down %w2 : tensor<4x16x32xf32>)
      activation gelu_tanh statistics [dropped_count]
      -> tensor<?x16xf32>, tensor<i64>
  return %y, %dropped : tensor<?x16xf32>, tensor<i64>
}

// -----

// CHECK-LABEL: func @expert_choice
// CHECK: %[[W:.*]], %[[IDS:.*]] = moe.gate %{{.*}} routing <softmax, expert_choice, capacity = factor(2.000000e+00, round)> : tensor<?x4xf32> -> tensor<?x4xf32>, tensor<?x4xi32>
// CHECK: moe.dispatch %{{.*}}, %[[IDS]] : tensor<?x16xf32>, tensor<?x4xi32> -> tensor<?x16xf32>, tensor<5xi64>, tensor<?x4xi32>
// CHECK: moe.combine %{{.*}}, %[[W]], %{{.*}} : tensor<?x16xf32>, tensor<?x4xf32>, tensor<?x4xi32> -> tensor<?x16xf32>
func.func @expert_choice(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %w3: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, expert_choice, capacity = factor(2.0, round)>
      router(%wg : tensor<4x16xf32>)
      experts(up %w3 : tensor<4x32x16xf32>, down %w2 : tensor<4x16x32xf32>)
      activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Layers nested in other regions are decomposed too.
// CHECK-LABEL: func @nested
// CHECK: scf.execute_region
// CHECK-NOT: moe.layer
// CHECK: moe.gate
func.func @nested(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %w3: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
  %r = scf.execute_region -> tensor<?x16xf32> {
    %y = moe.layer %x : tensor<?x16xf32>
        routing <softmax, top_k = 1>
        router(%wg : tensor<4x16xf32>)
        experts(up %w3 : tensor<4x32x16xf32>, down %w2 : tensor<4x16x32xf32>)
        activation relu
        -> tensor<?x16xf32>
    scf.yield %y : tensor<?x16xf32>
  }
  return %r : tensor<?x16xf32>
}

// -----

// weight_inputs (Llama 4): every (token, choice) is a row of its own, the
// token times the choice's weight, dispatched to that expert alone and
// combined with weight 1; the rows of a token are then summed.
// CHECK-LABEL: func @weight_inputs
// CHECK: %[[W:.*]], %[[IDS:.*]] = moe.gate %{{.*}} routing <sigmoid, top_k = 2> : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
// CHECK: %[[SCALED:.*]] = linalg.generic {{.*}} ins(%[[X:.*]], %[[W]] : tensor<?x16xf32>, tensor<?x2xf32>) outs(%{{.*}} : tensor<?x2x16xf32>)
// CHECK: arith.mulf
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape %[[SCALED]] {{\[}}[0, 1], [2]] : tensor<?x2x16xf32> into tensor<?x16xf32>
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[IDS]] {{\[}}[0, 1]] : tensor<?x2xi32> into tensor<?xi32>
// CHECK: %[[CHOICES:.*]] = tensor.expand_shape %[[FLAT]] {{\[}}[0, 1]] output_shape [%{{.*}}, 1] : tensor<?xi32> into tensor<?x1xi32>
// CHECK: %[[ONES:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x1xf32>)
// CHECK: %{{.*}}, %{{.*}}, %[[MAP:.*]] = moe.dispatch %[[ROWS]], %[[CHOICES]] : tensor<?x16xf32>, tensor<?x1xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x1xi32>
// CHECK: %[[C:.*]] = moe.combine %{{.*}}, %[[ONES]], %[[MAP]] : tensor<?x16xf32>, tensor<?x1xf32>, tensor<?x1xi32> -> tensor<?x16xf32>
// CHECK: %[[PER:.*]] = tensor.expand_shape %[[C]] {{\[}}[0, 1], [2]] output_shape [%{{.*}}, 2, 16] : tensor<?x16xf32> into tensor<?x2x16xf32>
// CHECK: %[[Y:.*]] = linalg.reduce ins(%[[PER]] : tensor<?x2x16xf32>) outs(%{{.*}} : tensor<?x16xf32>) dimensions = [1]
// CHECK: return %[[Y]]
func.func @weight_inputs(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                         %w1: tensor<8x32x16xf32>, %w3: tensor<8x32x16xf32>,
                         %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu weight_inputs
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// gpt-oss: the router bias is added to the f32 logits; the clamped SwiGLU
// is min(g, limit) * sigmoid(alpha * min(g, limit)) * (clamp(u) + 1).
// CHECK-LABEL: func @gpt_oss
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[ALPHA:.*]] = arith.constant 1.702000e+00 : f32
// CHECK-DAG: %[[NEGLIMIT:.*]] = arith.constant -7.000000e+00 : f32
// CHECK-DAG: %[[LIMIT:.*]] = arith.constant 7.000000e+00 : f32
// CHECK: %[[LOGITS:.*]] = linalg.matmul
// CHECK: %[[BIASED:.*]] = linalg.generic {{.*}} ins(%[[LOGITS]], %{{.*}} : tensor<?x8xf32>, tensor<8xbf16>)
// CHECK: arith.extf
// CHECK: arith.addf
// CHECK: moe.gate %[[BIASED]] routing <softmax, top_k = 2, renormalize>
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[G:.*]]: f32, %[[U:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[GC:.*]] = arith.minimumf %[[G]], %[[LIMIT]]
// CHECK-NEXT: %[[UH:.*]] = arith.minimumf %[[U]], %[[LIMIT]]
// CHECK-NEXT: %[[UC:.*]] = arith.maximumf %[[UH]], %[[NEGLIMIT]]
// CHECK-NEXT: %[[AG:.*]] = arith.mulf %[[GC]], %[[ALPHA]]
// CHECK: %[[GLU:.*]] = arith.mulf %[[GC]], %{{.*}}
// CHECK: %[[UP1:.*]] = arith.addf %[[UC]], %[[ONE]]
// CHECK: arith.mulf %[[GLU]], %[[UP1]]
func.func @gpt_oss(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                   %rb: tensor<8xbf16>, %w1: tensor<8x32x16xf32>,
                   %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>)
    -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%wg : tensor<8x16xf32>) router_bias(%rb : tensor<8xbf16>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>)
      activation clamped_swiglu swiglu_alpha 1.702 swiglu_limit 7.0
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// zero_experts (LongCat-Flash): choices of ids 8 and 9 are not dispatched
// (id -1); their weights, summed per token, times the token are added.
// CHECK-LABEL: func @zero_experts
// CHECK-DAG: %[[EIGHT:.*]] = arith.constant 8 : i32
// CHECK: %[[W:.*]], %[[IDS:.*]] = moe.gate %{{.*}} routing <softmax, top_k = 3> : tensor<?x10xf32> -> tensor<?x3xf32>, tensor<?x3xi32>
// CHECK: %[[ROUTED:.*]] = linalg.generic {{.*}} ins(%[[IDS]] : tensor<?x3xi32>)
// CHECK: arith.cmpi sge, %{{.*}}, %[[EIGHT]] : i32
// CHECK: %[[IDW:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[IDS]], %[[W]] : tensor<?x3xi32>, tensor<?x3xf32>) outs(%{{.*}} : tensor<?x1xf32>)
// CHECK: moe.dispatch %[[X:.*]], %[[ROUTED]] : tensor<?x16xf32>, tensor<?x3xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x3xi32>
// CHECK: %[[C:.*]] = moe.combine
// CHECK: %[[Y:.*]] = linalg.generic {{.*}} ins(%[[C]], %[[X]], %[[IDW]] : tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x1xf32>)
// CHECK: return %[[Y]]
func.func @zero_experts(%x: tensor<?x16xf32>, %wg: tensor<10x16xf32>,
                        %w1: tensor<8x32x16xf32>, %w3: tensor<8x32x16xf32>,
                        %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 3>
      router(%wg : tensor<10x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu zero_experts 2
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
