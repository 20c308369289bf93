// RUN: moe-opt %s --moe-expand-float8 | FileCheck %s

// An f8E4M3FN -> f32 conversion as integer arithmetic on its bits: sign,
// exponent rebiased by 120 (<< 3 with the mantissa, then << 20), subnormals
// as mantissa * 2^-9, S.1111.111 a NaN.
// CHECK-LABEL: func @scalar
// CHECK-NOT: arith.extf
// CHECK: %[[B:.*]] = arith.bitcast %{{.*}} : f8E4M3FN to i8
// CHECK: %[[W:.*]] = arith.extui %[[B]] : i8 to i32
// CHECK: arith.addi %{{.*}}, %c960_i32
// CHECK: arith.uitofp
// CHECK: arith.mulf %{{.*}}, %cst
// CHECK: arith.cmpi ult, %{{.*}}, %c8_i32
// CHECK: arith.cmpi eq, %{{.*}}, %c127_i32
// CHECK: arith.select %{{.*}}, %c2143289344_i32
// CHECK: arith.ori
// CHECK: arith.bitcast %{{.*}} : i32 to f32
func.func @scalar(%x: f8E4M3FN) -> f32 {
  %y = arith.extf %x : f8E4M3FN to f32
  return %y : f32
}

// Vectors element-wise; other targets through f32.
// CHECK-LABEL: func @vector
// CHECK: arith.bitcast %{{.*}} : vector<16xf8E4M3FN> to vector<16xi8>
// CHECK: %[[F:.*]] = arith.bitcast %{{.*}} : vector<16xi32> to vector<16xf32>
// CHECK: arith.extf %[[F]] : vector<16xf32> to vector<16xf64>
func.func @vector(%x: vector<16xf8E4M3FN>) -> vector<16xf64> {
  %y = arith.extf %x : vector<16xf8E4M3FN> to vector<16xf64>
  return %y : vector<16xf64>
}

// CHECK-LABEL: func @to_bf16
// CHECK: %[[F:.*]] = arith.bitcast %{{.*}} : i32 to f32
// CHECK: arith.truncf %[[F]] : f32 to bf16
func.func @to_bf16(%x: f8E4M3FN) -> bf16 {
  %y = arith.extf %x : f8E4M3FN to bf16
  return %y : bf16
}

// Other conversions are left alone.
// CHECK-LABEL: func @others
// CHECK: arith.extf %{{.*}} : bf16 to f32
func.func @others(%x: bf16) -> f32 {
  %y = arith.extf %x : bf16 to f32
  return %y : f32
}
