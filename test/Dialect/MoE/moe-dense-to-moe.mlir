// RUN: moe-opt %s --split-input-file --moe-dense-to-moe="mode=split experts=4 top-k=2" | FileCheck %s --check-prefix=SPLIT
// RUN: moe-opt %s --split-input-file --moe-dense-to-moe="mode=upcycle experts=4 top-k=2" | FileCheck %s --check-prefix=UP
// RUN: moe-opt %s --split-input-file --moe-dense-to-moe="mode=split experts=4 router-weight=model.layers.3.mlp.gate.weight routing=<sigmoid,top_k=1>" | FileCheck %s --check-prefix=BOUND

// A SwiGLU dense FFN in its dense-expert form (one expert, weight 1), with
// an importance score per neuron.
//
// split: by importance the neurons are 1 4 6 2 7 3 5 0, dealt round-robin
// (1 7 | 4 3 | 6 5 | 2 0).
// SPLIT-LABEL: func @swiglu
// SPLIT-SAME: (%[[X:.*]]: tensor<?x16xf32>, %[[WG:.*]]: tensor<1x8x16xf32>, %[[WU:.*]]: tensor<1x8x16xf32>, %[[WD:.*]]: tensor<1x16x8xf32>)
// SPLIT: %[[TABLE:.*]] = arith.constant dense<{{\[\[}}1, 7], [4, 3], [6, 5], [2, 0]]> : tensor<4x2xi64>
// SPLIT: %[[G:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<4x2xi64>) outs(%{{.*}} : tensor<4x2x16xf32>)
// SPLIT: arith.cmpi sge
// SPLIT: tensor.extract %[[WG]][%{{.*}}, %{{.*}}, %{{.*}}] : tensor<1x8x16xf32>
// SPLIT: arith.select
// SPLIT: %[[U:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<4x2xi64>) outs(%{{.*}} : tensor<4x2x16xf32>)
// SPLIT: tensor.extract %[[WU]]
// SPLIT: %[[D:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<4x2xi64>) outs(%{{.*}} : tensor<4x16x2xf32>)
// SPLIT: tensor.extract %[[WD]]
// The similarity router: the mean of each expert's gate rows, read from the
// dense weight in one reduction (a padding slot would read row 0, times 0).
// SPLIT: %[[RT:.*]] = arith.constant dense<{{\[\[}}1, 7], [4, 3], [6, 5], [2, 0]]> : tensor<4x2xi64>
// SPLIT: %[[COEF:.*]] = arith.constant dense<5.000000e-01> : tensor<4x2xf32>
// SPLIT: %[[R:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]{{.*}} ins(%[[RT]], %[[COEF]] : tensor<4x2xi64>, tensor<4x2xf32>)
// SPLIT: arith.maxsi
// SPLIT: tensor.extract %[[WG]]
// SPLIT: moe.layer %[[X]] : tensor<?x16xf32> routing <softmax, top_k = 2, unweighted> router(%[[R]] : tensor<4x16xf32>) experts(gate %[[G]] : tensor<4x2x16xf32>, up %[[U]] : tensor<4x2x16xf32>, down %[[D]] : tensor<4x16x2xf32>) activation silu -> tensor<?x16xf32>
// SPLIT-NOT: moe.neuron_importance
//
// upcycle: four copies of the weights, zero router, normalized top-2.
// UP-LABEL: func @swiglu
// UP-SAME: (%[[X:.*]]: tensor<?x16xf32>, %[[WG:.*]]: tensor<1x8x16xf32>, %[[WU:.*]]: tensor<1x8x16xf32>, %[[WD:.*]]: tensor<1x16x8xf32>)
// UP: %[[G1:.*]] = tensor.collapse_shape %[[WG]] {{\[\[}}0, 1], [2]] : tensor<1x8x16xf32> into tensor<8x16xf32>
// UP: %[[G:.*]] = linalg.broadcast ins(%[[G1]] : tensor<8x16xf32>) outs(%{{.*}} : tensor<4x8x16xf32>) dimensions = [0]
// UP: %[[U:.*]] = linalg.broadcast
// UP: %[[D1:.*]] = tensor.collapse_shape %[[WD]]
// UP: %[[D:.*]] = linalg.broadcast ins(%[[D1]] : tensor<16x8xf32>) outs(%{{.*}} : tensor<4x16x8xf32>) dimensions = [0]
// UP: %[[R:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<4x16xf32>)
// UP: moe.layer %[[X]] : tensor<?x16xf32> routing <softmax, top_k = 2, renormalize> router(%[[R]] : tensor<4x16xf32>) experts(gate %[[G]] : tensor<4x8x16xf32>, up %[[U]] : tensor<4x8x16xf32>, down %[[D]] : tensor<4x16x8xf32>) activation silu
//
// A bound router: a new argument with its checkpoint name.
// BOUND-LABEL: func @swiglu
// BOUND-SAME: %[[ROUTER:[a-z0-9_]+]]: tensor<4x16xf32> {moe.weight = "model.layers.3.mlp.gate.weight"}
// BOUND: moe.layer %{{.*}} routing <sigmoid, top_k = 1> router(%[[ROUTER]] : tensor<4x16xf32>)
func.func @swiglu(%x: tensor<?x16xf32>, %wg: tensor<1x8x16xf32>,
                  %wu: tensor<1x8x16xf32>, %wd: tensor<1x16x8xf32>)
    -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(gate %wg : tensor<1x8x16xf32>, up %wu : tensor<1x8x16xf32>,
              down %wd : tensor<1x16x8xf32>) activation silu
      {moe.neuron_importance = array<f32: 0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7, 0.4>}
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// A plain (GELU) bf16 FFN with biases (BERT's): without importance the
// neurons keep their index order (dealt 0 4 | 1 5 | 2 6 | 3 7); the up bias
// is gathered like the rows, the down bias copied into every expert and
// halved (top-2 unweighted adds it twice). The similarity router reads the
// up rows (no gate) and is converted to bf16.
// SPLIT-LABEL: func @plain_bias
// SPLIT: %[[TABLE:.*]] = arith.constant dense<{{\[\[}}0, 4], [1, 5], [2, 6], [3, 7]]> : tensor<4x2xi64>
// SPLIT: %[[U:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<4x2x16xbf16>)
// SPLIT: %[[D:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<4x16x2xbf16>)
// SPLIT: %[[UB:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<4x2xi64>) outs(%{{.*}} : tensor<4x2xbf16>)
// SPLIT: %[[DB1:.*]] = linalg.broadcast {{.*}} outs(%{{.*}} : tensor<4x16xbf16>)
// SPLIT: %[[DB:.*]] = linalg.generic {{.*}} ins(%[[DB1]] : tensor<4x16xbf16>)
// SPLIT: arith.mulf %{{.*}}, %cst
// SPLIT: %[[R32:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<4x2xi64>, tensor<4x2xf32>)
// SPLIT: tensor.extract %{{.*}} : tensor<1x8x16xbf16>
// SPLIT: %[[R:.*]] = linalg.generic {{.*}} ins(%[[R32]] : tensor<4x16xf32>) outs(%{{.*}} : tensor<4x16xbf16>)
// SPLIT: moe.layer %{{.*}} routing <softmax, top_k = 2, unweighted> router(%[[R]] : tensor<4x16xbf16>) experts(up %[[U]] : tensor<4x2x16xbf16>, down %[[D]] : tensor<4x16x2xbf16>) activation gelu up_bias(%[[UB]] : tensor<4x2xbf16>) down_bias(%[[DB]] : tensor<4x16xbf16>)
//
// UP-LABEL: func @plain_bias
// UP: moe.layer %{{.*}} routing <softmax, top_k = 2, renormalize> router(%{{.*}} : tensor<4x16xbf16>) experts(up %{{.*}} : tensor<4x8x16xbf16>, down %{{.*}} : tensor<4x16x8xbf16>) activation gelu up_bias(%{{.*}} : tensor<4x8xbf16>) down_bias(%{{.*}} : tensor<4x16xbf16>)
// BOUND-LABEL: func @plain_bias
func.func @plain_bias(%x: tensor<?x16xbf16>, %wu: tensor<1x8x16xbf16>,
                      %wd: tensor<1x16x8xbf16>, %bu: tensor<1x8xbf16>,
                      %bd: tensor<1x16xbf16>) -> tensor<?x16xbf16> {
  %r = arith.constant dense<0.0> : tensor<1x16xbf16>
  %y = moe.layer %x : tensor<?x16xbf16> routing <sigmoid, top_k = 1, renormalize>
      router(%r : tensor<1x16xbf16>)
      experts(up %wu : tensor<1x8x16xbf16>, down %wd : tensor<1x16x8xbf16>)
      activation gelu up_bias(%bu : tensor<1x8xbf16>)
      down_bias(%bd : tensor<1x16xbf16>) -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

// Layers that are not dense FFNs stay: several experts, or one expert whose
// weight is a sigmoid score (not 1).
// SPLIT-LABEL: func @not_dense
// SPLIT: moe.layer %{{.*}} routing <softmax, top_k = 1> router(%{{.*}} : tensor<2x16xf32>)
// SPLIT: moe.layer %{{.*}} routing <sigmoid, top_k = 1> router(%{{.*}} : tensor<1x16xf32>)
// UP-LABEL: func @not_dense
// UP-NOT: linalg.broadcast
// BOUND-LABEL: func @not_dense
func.func @not_dense(%x: tensor<?x16xf32>, %r2: tensor<2x16xf32>,
                     %u2: tensor<2x8x16xf32>, %d2: tensor<2x16x8xf32>,
                     %r1: tensor<1x16xf32>, %u1: tensor<1x8x16xf32>,
                     %d1: tensor<1x16x8xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r2 : tensor<2x16xf32>)
      experts(up %u2 : tensor<2x8x16xf32>, down %d2 : tensor<2x16x8xf32>)
      activation relu -> tensor<?x16xf32>
  %b = moe.layer %x : tensor<?x16xf32> routing <sigmoid, top_k = 1>
      router(%r1 : tensor<1x16xf32>)
      experts(up %u1 : tensor<1x8x16xf32>, down %d1 : tensor<1x16x8xf32>)
      activation relu -> tensor<?x16xf32>
  return %a, %b : tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// In the dense form every weight is 1, so `weight_inputs` changes nothing;
// it is dropped, since it would scale the experts' inputs by their weights.
// Other discardable attributes carry over.
// UP-LABEL: func @weight_inputs
// UP: moe.layer
// UP-NOT: weight_inputs
// UP-SAME: {note = "kept"}
// UP: return
// SPLIT-LABEL: func @weight_inputs
// SPLIT: moe.layer
// SPLIT-NOT: weight_inputs
// SPLIT-SAME: {note = "kept"}
// BOUND-LABEL: func @weight_inputs
func.func @weight_inputs(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                         %wd: tensor<1x16x8xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu weight_inputs {note = "kept"} -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Block-scaled (FP8) weights: split dequantizes them to f32 and gathers from
// that, so the experts take no scales; upcycle copies weights and scales.
// SPLIT-LABEL: func @fp8
// SPLIT: %[[DU:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x8x16xf8E4M3FN>, tensor<1x1x1xf32>) outs(%{{.*}} : tensor<1x8x16xf32>)
// SPLIT: linalg.generic {{.*}} outs(%{{.*}} : tensor<4x2x16xf32>)
// SPLIT: tensor.extract %[[DU]]
// SPLIT: moe.layer {{.*}} experts(up %{{.*}} : tensor<4x2x16xf32>, down %{{.*}} : tensor<4x16x2xf32>) activation relu -> tensor<?x16xf32>
// UP-LABEL: func @fp8
// UP: moe.layer {{.*}} experts(up %{{.*}} : tensor<4x8x16xf8E4M3FN>, down %{{.*}} : tensor<4x16x8xf8E4M3FN>) activation relu up_scale(%{{.*}} : tensor<4x1x1xf32>) down_scale(%{{.*}} : tensor<4x1x1xf32>) weight_block [128, 128]
// BOUND-LABEL: func @fp8
func.func @fp8(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf8E4M3FN>,
               %wd: tensor<1x16x8xf8E4M3FN>, %su: tensor<1x1x1xf32>,
               %sd: tensor<1x1x1xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf8E4M3FN>, down %wd : tensor<1x16x8xf8E4M3FN>)
      activation relu up_scale(%su : tensor<1x1x1xf32>)
      down_scale(%sd : tensor<1x1x1xf32>) weight_block [128, 128]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
