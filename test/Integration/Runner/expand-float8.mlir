// moe-expand-float8, executed: e4m3fn bytes decoded to f32 (zeros of both
// signs, the smallest and largest subnormals, the smallest normal, 1, 1.5,
// 2, the largest finite 448 of both signs, NaN), on vectors and on a scalar,
// and to f16 through f32.
// REQUIRES: mlir-runner
// RUN: moe-opt %s --moe-expand-float8 --convert-vector-to-scf \
// RUN:   --convert-scf-to-cf --convert-vector-to-llvm --convert-to-llvm \
// RUN:   --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | FileCheck %s

// CHECK: ( 0, -0, 0.00195312, 0.0136719, 0.015625, 1, 1.5, 2, 448, -448, -1, nan )
// CHECK: -0.0136719
// CHECK: ( 1, 448, 0.00195312 )
// The conversions take their bytes as arguments: nothing folds them at
// compile time.
func.func @to_f32(%bytes: vector<12xi8>) -> vector<12xf32> {
  %f8 = arith.bitcast %bytes : vector<12xi8> to vector<12xf8E4M3FN>
  %f32 = arith.extf %f8 : vector<12xf8E4M3FN> to vector<12xf32>
  return %f32 : vector<12xf32>
}

func.func @scalar_to_f32(%byte: i8) -> f32 {
  %f8 = arith.bitcast %byte : i8 to f8E4M3FN
  %f32 = arith.extf %f8 : f8E4M3FN to f32
  return %f32 : f32
}

func.func @to_f16(%bytes: vector<3xi8>) -> vector<3xf16> {
  %f8 = arith.bitcast %bytes : vector<3xi8> to vector<3xf8E4M3FN>
  %f16 = arith.extf %f8 : vector<3xf8E4M3FN> to vector<3xf16>
  return %f16 : vector<3xf16>
}

func.func @main() {
  %bytes = arith.constant dense<[0, -128, 1, 7, 8, 56, 60, 64, 126, -2, -72, 127]> : vector<12xi8>
  %f32 = func.call @to_f32(%bytes) : (vector<12xi8>) -> vector<12xf32>
  vector.print %f32 : vector<12xf32>
  %byte = arith.constant -121 : i8
  %s32 = func.call @scalar_to_f32(%byte) : (i8) -> f32
  vector.print %s32 : f32
  %few = arith.constant dense<[56, 126, 1]> : vector<3xi8>
  %f16 = func.call @to_f16(%few) : (vector<3xi8>) -> vector<3xf16>
  %back = arith.extf %f16 : vector<3xf16> to vector<3xf32>
  vector.print %back : vector<3xf32>
  return
}
