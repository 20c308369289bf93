// RUN: moe-opt %s --convert-moe-to-linalg --canonicalize --split-input-file | FileCheck %s

// Counts: kept ids (after capacity dropping) and chosen ids (before), each a
// range-guarded scatter-add into a zero [E] i64 vector; dropped = the
// difference of their sums, as a 0-d tensor.

// CHECK-LABEL: func.func @counts
// CHECK-DAG:     %[[ZEROS:.+]] = arith.constant dense<0> : tensor<4xi64>
// CHECK:         %[[KEPT:.+]] = scf.for {{.+}} iter_args(%{{.+}} = %[[ZEROS]]) -> (tensor<4xi64>)
// CHECK:           scf.if %{{.+}} -> (tensor<4xi64>)
// CHECK:             arith.addi %{{.+}}, %c1_i64 : i64
// CHECK:             tensor.insert
// CHECK:         %[[CHOSEN:.+]] = scf.for {{.+}} iter_args(%{{.+}} = %[[ZEROS]]) -> (tensor<4xi64>)
// CHECK:         %[[SUMCHOSEN:.+]] = scf.for {{.+}} -> (i64)
// CHECK:           tensor.extract %[[CHOSEN]]
// CHECK:         %[[SUMKEPT:.+]] = scf.for {{.+}} -> (i64)
// CHECK:           tensor.extract %[[KEPT]]
// CHECK:         %[[DROPPED:.+]] = arith.subi %[[SUMCHOSEN]], %[[SUMKEPT]] : i64
// CHECK:         %[[D:.+]] = tensor.from_elements %[[DROPPED]] : tensor<i64>
// CHECK:         return %{{.+}}, %{{.+}}, %[[KEPT]], %[[CHOSEN]], %[[D]]
func.func @counts(%logits: tensor<?x4xf32>)
    -> (tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>, tensor<4xi64>, tensor<i64>) {
  %w, %ids, %n, %b, %d = moe.gate %logits
      routing <softmax, top_k = 2, capacity = fixed(1)>
      statistics [tokens_per_expert, tokens_per_expert_before_drop, dropped_count]
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>, tensor<4xi64>, tensor<i64>
  return %w, %ids, %n, %b, %d : tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>, tensor<4xi64>, tensor<i64>
}

// -----

// Load-balancing loss: first choices counted and probabilities summed per
// expert in one pass over the tokens, then E * sum(count * probSum) / T^2,
// 0 when T = 0. Sigmoid scores are normalized by their row sum first.

// CHECK-LABEL: func.func @load_balancing
// CHECK:         %[[SUMS:.+]]:2 = scf.for {{.+}} -> (tensor<4xi64>, tensor<4xf32>)
// CHECK:           %[[ROWSUM:.+]] = scf.for {{.+}} -> (f32)
// CHECK:           scf.for {{.+}} -> (tensor<4xf32>)
// CHECK:             arith.divf %{{.+}}, %[[ROWSUM]] : f32
// CHECK:         %[[DOT:.+]] = scf.for {{.+}} -> (f32)
// CHECK:           arith.sitofp %{{.+}} : i64 to f32
// CHECK:         %[[NUM:.+]] = arith.mulf %[[DOT]], %cst{{.*}} : f32
// CHECK:         %[[T2:.+]] = arith.mulf %[[T:.+]], %[[T]] : f32
// CHECK:         %[[LOSS:.+]] = arith.divf %[[NUM]], %[[T2]] : f32
// CHECK:         %[[SAFE:.+]] = arith.select %{{.+}}, %cst{{.*}}, %[[LOSS]] : f32
// CHECK:         tensor.from_elements %[[SAFE]] : tensor<f32>
func.func @load_balancing(%logits: tensor<?x4xf32>)
    -> (tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>) {
  %w, %ids, %lb = moe.gate %logits routing <sigmoid, top_k = 2, renormalize>
      statistics [load_balancing_loss]
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>
  return %w, %ids, %lb : tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>
}

// -----

// z-loss: per token max, sum of exp(l - max), (max + log(sum))^2, averaged.

// CHECK-LABEL: func.func @z_loss
// CHECK:         %[[TOTAL:.+]] = scf.for {{.+}} -> (f32)
// CHECK:           %[[MAX:.+]] = scf.for {{.+}} -> (f32)
// CHECK:             arith.maximumf
// CHECK:           %[[SUM:.+]] = scf.for {{.+}} -> (f32)
// CHECK:             arith.subf %{{.+}}, %[[MAX]] : f32
// CHECK:             math.exp
// CHECK:           %[[LOG:.+]] = math.log %[[SUM]] : f32
// CHECK:           %[[LSE:.+]] = arith.addf %[[MAX]], %[[LOG]] : f32
// CHECK:           arith.mulf %[[LSE]], %[[LSE]] : f32
// CHECK:         arith.divf %[[TOTAL]], %{{.+}} : f32
// CHECK:         tensor.from_elements %{{.+}} : tensor<f32>
func.func @z_loss(%logits: tensor<?x4xf32>) -> (tensor<?x1xf32>, tensor<?x1xi32>, tensor<f32>) {
  %w, %ids, %z = moe.gate %logits routing <softmax, top_k = 1> statistics [z_loss]
      : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi32>, tensor<f32>
  return %w, %ids, %z : tensor<?x1xf32>, tensor<?x1xi32>, tensor<f32>
}

// -----

// Importance loss: per-expert sums of the combine weights, then
// var / mean^2 (population variance), 0 when the mean is 0. Expert choice:
// the first choice of a token is the arg-max of its selection scores.

// CHECK-LABEL: func.func @importance_expert_choice
// CHECK:         %[[IMP:.+]] = scf.for {{.+}} -> (tensor<4xf32>)
// CHECK:           scf.if %{{.+}} -> (tensor<4xf32>)
// CHECK:             arith.addf
// CHECK:         %[[TOTAL:.+]] = scf.for {{.+}} -> (f32)
// CHECK:         %[[MEAN:.+]] = arith.divf %[[TOTAL]], %{{.+}} : f32
// CHECK:         %[[SQUARES:.+]] = scf.for {{.+}} -> (f32)
// CHECK:           arith.subf %{{.+}}, %[[MEAN]] : f32
// CHECK:         %[[VAR:.+]] = arith.divf %[[SQUARES]], %{{.+}} : f32
// CHECK:         %[[ZERO:.+]] = arith.cmpf oeq, %[[MEAN]], %{{.+}} : f32
// CHECK:         %[[MEAN2:.+]] = arith.mulf %[[MEAN]], %[[MEAN]] : f32
// CHECK:         %[[CV2:.+]] = arith.divf %[[VAR]], %[[MEAN2]] : f32
// CHECK:         arith.select %[[ZERO]], %{{.+}}, %[[CV2]] : f32
func.func @importance_expert_choice(%logits: tensor<?x4xf32>)
    -> (tensor<?x4xf32>, tensor<?x4xi32>, tensor<f32>, tensor<f32>) {
  %w, %ids, %imp, %lb = moe.gate %logits
      routing <softmax, expert_choice, capacity = factor(1.0, round)>
      statistics [importance_loss, load_balancing_loss]
      : tensor<?x4xf32> -> tensor<?x4xf32>, tensor<?x4xi32>, tensor<f32>, tensor<f32>
  return %w, %ids, %imp, %lb : tensor<?x4xf32>, tensor<?x4xi32>, tensor<f32>, tensor<f32>
}
