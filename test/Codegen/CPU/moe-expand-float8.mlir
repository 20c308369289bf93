// RUN: moe-opt %s --moe-expand-float8 | FileCheck %s

// An f8E4M3FN -> f32 conversion as integer arithmetic on its bits, with no
// f32 subnormal on the way (flush-to-zero modes change nothing): a normal
// value's E.EEE.MMM shifted left by 20 with the exponent rebiased by 120
// (+ 120 << 23 = 1006632960), a subnormal one's mantissa times 2^-9, the
// sign or'ed in; S.1111.111 (byte & 0x7F == 0x7F) a NaN.
// CHECK-LABEL: func @scalar
// CHECK-NOT: arith.extf
// CHECK: %[[B:.*]] = arith.bitcast %{{.*}} : f8E4M3FN to i8
// CHECK: %[[W:.*]] = arith.extui %[[B]] : i8 to i32
// CHECK: %[[M:.*]] = arith.andi %[[W]], %c127_i32
// CHECK: %[[S:.*]] = arith.shli %[[M]], %c20_i32
// CHECK: %[[N:.*]] = arith.addi %[[S]], %c1006632960_i32
// CHECK: %[[NF:.*]] = arith.bitcast %[[N]] : i32 to f32
// CHECK: %[[SUB:.*]] = arith.uitofp %{{.*}} : i32 to f32
// CHECK: %[[SF:.*]] = arith.mulf %[[SUB]], %cst{{.*}} : f32
// CHECK: %[[SMALL:.*]] = arith.cmpi ult, %[[M]], %c8_i32
// CHECK: arith.select %[[SMALL]], %[[SF]], %[[NF]] : f32
// CHECK: %[[LOW:.*]] = arith.andi %[[B]], %c127_i8
// CHECK: %[[NAN:.*]] = arith.cmpi eq, %[[LOW]], %c127_i8
// CHECK: arith.select %[[NAN]], %cst{{.*}}, %{{.*}} : f32
func.func @scalar(%x: f8E4M3FN) -> f32 {
  %y = arith.extf %x : f8E4M3FN to f32
  return %y : f32
}

// Vectors element-wise; other targets through f32.
// CHECK-LABEL: func @vector
// CHECK: arith.bitcast %{{.*}} : vector<16xf8E4M3FN> to vector<16xi8>
// CHECK: arith.bitcast %{{.*}} : vector<16xi32> to vector<16xf32>
// CHECK: %[[F:.*]] = arith.select %{{.*}}, %cst{{.*}}, %{{.*}} : vector<16xi1>, vector<16xf32>
// CHECK: arith.extf %[[F]] : vector<16xf32> to vector<16xf64>
func.func @vector(%x: vector<16xf8E4M3FN>) -> vector<16xf64> {
  %y = arith.extf %x : vector<16xf8E4M3FN> to vector<16xf64>
  return %y : vector<16xf64>
}

// CHECK-LABEL: func @to_bf16
// CHECK: %[[F:.*]] = arith.select %{{.*}}, %cst{{.*}}, %{{.*}} : f32
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
