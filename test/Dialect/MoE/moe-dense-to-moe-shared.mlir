// RUN: moe-opt %s --moe-dense-to-moe="mode=split experts=4 top-k=2 shared=2" | FileCheck %s

// split with S = 2: by importance the neurons are 1 4 6 2 7 3 5 0; 1 and 4
// are the shared expert's, the other six are dealt round-robin (6 5 | 2 0 |
// 7 | 3), and the two shorter experts end in a slot without a neuron (-1).
// The shared neurons are gathered like the experts' (one row of the table)
// and reshaped to the shared expert's [S, H] and [H, S].
// CHECK-LABEL: func @swiglu
// CHECK-SAME: (%[[X:.*]]: tensor<?x16xf32>, %[[WG:.*]]: tensor<1x8x16xf32>, %[[WU:.*]]: tensor<1x8x16xf32>, %[[WD:.*]]: tensor<1x16x8xf32>)
// CHECK: %[[TABLE:.*]] = arith.constant dense<{{\[\[}}6, 5], [2, 0], [7, -1], [3, -1]]> : tensor<4x2xi64>
// CHECK: %[[SHARED:.*]] = arith.constant dense<{{\[\[}}1, 4]]> : tensor<1x2xi64>
// CHECK: %[[G:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<4x2xi64>) outs(%{{.*}} : tensor<4x2x16xf32>)
// CHECK: %[[U:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<4x2xi64>) outs(%{{.*}} : tensor<4x2x16xf32>)
// CHECK: %[[D:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<4x2xi64>) outs(%{{.*}} : tensor<4x16x2xf32>)
// CHECK: %[[SG1:.*]] = linalg.generic {{.*}} ins(%[[SHARED]] : tensor<1x2xi64>) outs(%{{.*}} : tensor<1x2x16xf32>)
// CHECK: tensor.extract %[[WG]]
// CHECK: %[[SG:.*]] = tensor.collapse_shape %[[SG1]] {{\[\[}}0, 1], [2]] : tensor<1x2x16xf32> into tensor<2x16xf32>
// CHECK: %[[SU1:.*]] = linalg.generic {{.*}} ins(%[[SHARED]] : tensor<1x2xi64>) outs(%{{.*}} : tensor<1x2x16xf32>)
// CHECK: tensor.extract %[[WU]]
// CHECK: %[[SU:.*]] = tensor.collapse_shape %[[SU1]]
// CHECK: %[[SD1:.*]] = linalg.generic {{.*}} ins(%[[SHARED]] : tensor<1x2xi64>) outs(%{{.*}} : tensor<1x16x2xf32>)
// CHECK: tensor.extract %[[WD]]
// CHECK: %[[SD:.*]] = tensor.collapse_shape %[[SD1]] {{\[\[}}0, 1], [2]] : tensor<1x16x2xf32> into tensor<16x2xf32>
// The similarity router: the mean of each expert's own gate rows.
// CHECK: %[[COEF:.*]] = arith.constant dense<{{\[\[}}5.000000e-01, 5.000000e-01], [5.000000e-01, 5.000000e-01], [1.000000e+00, 0.000000e+00], [1.000000e+00, 0.000000e+00]]> : tensor<4x2xf32>
// CHECK: %[[R:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %[[COEF]] : tensor<4x2xi64>, tensor<4x2xf32>)
// CHECK: tensor.extract %[[WG]]
// CHECK: moe.layer %[[X]] : tensor<?x16xf32> routing <softmax, top_k = 2, unweighted> router(%[[R]] : tensor<4x16xf32>) experts(gate %[[G]] : tensor<4x2x16xf32>, up %[[U]] : tensor<4x2x16xf32>, down %[[D]] : tensor<4x16x2xf32>) activation silu shared_gate(%[[SG]] : tensor<2x16xf32>) shared_up(%[[SU]] : tensor<2x16xf32>) shared_down(%[[SD]] : tensor<16x2xf32>) -> tensor<?x16xf32>
// CHECK-NOT: moe.neuron_importance
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

// Weights bound to checkpoint tensors: each gather reads a tensor through
// views of its own, so the shared expert's gathers and the router read new
// arguments bound to the same tensors (the runtime binds a tensor once), and
// every chain of views can be folded into a packing function.
// CHECK-LABEL: func @bound
// CHECK-SAME: %[[WG:[a-z0-9_]+]]: tensor<8x16xf32> {moe.weight = "mlp.gate_proj.weight"}
// CHECK-SAME: %[[WU:[a-z0-9_]+]]: tensor<8x16xf32> {moe.weight = "mlp.up_proj.weight"}
// CHECK-SAME: %[[WD:[a-z0-9_]+]]: tensor<16x8xf32> {moe.weight = "mlp.down_proj.weight"}
// CHECK-SAME: %[[SG:[a-z0-9_]+]]: tensor<8x16xf32> {moe.weight = "mlp.gate_proj.weight"}
// CHECK-SAME: %[[SU:[a-z0-9_]+]]: tensor<8x16xf32> {moe.weight = "mlp.up_proj.weight"}
// CHECK-SAME: %[[SD:[a-z0-9_]+]]: tensor<16x8xf32> {moe.weight = "mlp.down_proj.weight"}
// CHECK-SAME: %[[RG:[a-z0-9_]+]]: tensor<8x16xf32> {moe.weight = "mlp.gate_proj.weight"}
// CHECK-DAG: tensor.expand_shape %[[WG]]
// CHECK-DAG: tensor.expand_shape %[[SG]]
// CHECK-DAG: tensor.expand_shape %[[SU]]
// CHECK-DAG: tensor.expand_shape %[[SD]]
// CHECK-DAG: tensor.expand_shape %[[RG]]
func.func @bound(%x: tensor<?x16xf32>,
                 %wg: tensor<8x16xf32> {moe.weight = "mlp.gate_proj.weight"},
                 %wu: tensor<8x16xf32> {moe.weight = "mlp.up_proj.weight"},
                 %wd: tensor<16x8xf32> {moe.weight = "mlp.down_proj.weight"})
    -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %g = tensor.expand_shape %wg [[0, 1], [2]] output_shape [1, 8, 16]
      : tensor<8x16xf32> into tensor<1x8x16xf32>
  %u = tensor.expand_shape %wu [[0, 1], [2]] output_shape [1, 8, 16]
      : tensor<8x16xf32> into tensor<1x8x16xf32>
  %d = tensor.expand_shape %wd [[0, 1], [2]] output_shape [1, 16, 8]
      : tensor<16x8xf32> into tensor<1x16x8xf32>
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(gate %g : tensor<1x8x16xf32>, up %u : tensor<1x8x16xf32>,
              down %d : tensor<1x16x8xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
