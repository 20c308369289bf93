// RUN: moe-opt %s --split-input-file --moe-clone-shared-fills | FileCheck %s

// A zeroed tensor two foralls write in place (CSE merged their fills):
// the second gets an empty tensor and a fill of its own, made just before
// it; the first keeps the original.
// CHECK-LABEL: func.func @two_foralls
// CHECK-SAME: %[[N:.*]]: index
// CHECK: %[[E:.*]] = tensor.empty(%[[N]]) : tensor<?x256xi32>
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}} : i32) outs(%[[E]] : tensor<?x256xi32>)
// CHECK: scf.forall (%{{.*}}) in (%[[N]]) shared_outs(%{{.*}} = %[[Z]])
// CHECK: %[[E2:.*]] = tensor.empty(%[[N]]) : tensor<?x256xi32>
// CHECK: %[[Z2:.*]] = linalg.fill ins(%{{.*}} : i32) outs(%[[E2]] : tensor<?x256xi32>)
// CHECK: scf.forall (%{{.*}}) in (256) shared_outs(%{{.*}} = %[[Z2]])
func.func @two_foralls(%n: index) -> (tensor<?x256xi32>, tensor<?x256xi32>) {
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %e = tensor.empty(%n) : tensor<?x256xi32>
  %z = linalg.fill ins(%c0 : i32) outs(%e : tensor<?x256xi32>) -> tensor<?x256xi32>
  %a = scf.forall (%i) in (%n) shared_outs(%o = %z) -> (tensor<?x256xi32>) {
    %one = tensor.from_elements %c1 : tensor<1x1xi32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %one into %o[%i, 0] [1, 1] [1, 1] : tensor<1x1xi32> into tensor<?x256xi32>
    }
  }
  %b = scf.forall (%j) in (256) shared_outs(%o = %z) -> (tensor<?x256xi32>) {
    %one = tensor.from_elements %c1 : tensor<1x1xi32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %one into %o[0, %j] [1, 1] [1, 1] : tensor<1x1xi32> into tensor<?x256xi32>
    }
  }
  return %a, %b : tensor<?x256xi32>, tensor<?x256xi32>
}

// -----

// A destination-style op and a loop both write the fill, and an op only
// reads it: each writer gets its own fill, the reader keeps the original.
// CHECK-LABEL: func.func @writers_and_reader
// CHECK: %[[Z:.*]] = linalg.fill
// CHECK: %[[Z1:.*]] = linalg.fill
// CHECK: linalg.generic {{.*}} outs(%[[Z1]] : tensor<8xf32>)
// CHECK: %[[Z2:.*]] = linalg.fill
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[Z2]])
// CHECK: tensor.extract %[[Z]]
func.func @writers_and_reader(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>, f32) {
  %cst = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %e = tensor.empty() : tensor<8xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<8xf32>) -> tensor<8xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      ins(%x : tensor<8xf32>) outs(%z : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<8xf32>
  %l = scf.for %i = %c0 to %c8 step %c1 iter_args(%acc = %z) -> (tensor<8xf32>) {
    %v = tensor.insert %cst into %acc[%i] : tensor<8xf32>
    scf.yield %v : tensor<8xf32>
  }
  %r = tensor.extract %z[%c0] : tensor<8xf32>
  return %g, %l, %r : tensor<8xf32>, tensor<8xf32>, f32
}

// -----

// Left alone: a fill written in place once, and a fill of a tensor that is
// not empty (its values are the input's, not the fill's alone).
// CHECK-LABEL: func.func @left_alone
// CHECK-COUNT-2: linalg.fill
// CHECK-NOT: linalg.fill
func.func @left_alone(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<8xf32>) -> tensor<8xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      ins(%x : tensor<8xf32>) outs(%z : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<8xf32>
  %y = linalg.fill ins(%cst : f32) outs(%x : tensor<8xf32>) -> tensor<8xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      ins(%x : tensor<8xf32>) outs(%y : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<8xf32>
  return %g, %h, %y : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>
}
