// RUN: moe-opt %s --moe-move-half-floats-as-integers | FileCheck %s

// A bf16 copy, a select of f16 and a vector of bf16 move i16 bits; the
// loads keep their alignment and volatility. The bitcasts the rewrite
// leaves between a load and a store fold away.
// CHECK-LABEL: llvm.func @moves
// CHECK-SAME: (%[[P:.*]]: !llvm.ptr, %[[Q:.*]]: !llvm.ptr, %[[C:.*]]: i1, %[[A:.*]]: f16, %[[B:.*]]: f16)
// CHECK: %[[BITS:.*]] = llvm.load volatile %[[P]] {alignment = 2 : i64} : !llvm.ptr -> i16
// CHECK-NEXT: llvm.store %[[BITS]], %[[Q]] : i16, !llvm.ptr
// CHECK: %[[AI:.*]] = llvm.bitcast %[[A]] : f16 to i16
// CHECK: %[[BI:.*]] = llvm.bitcast %[[B]] : f16 to i16
// CHECK: %[[S:.*]] = llvm.select %[[C]], %[[AI]], %[[BI]] : i1, i16
// CHECK: %[[SF:.*]] = llvm.bitcast %[[S]] : i16 to f16
// CHECK: %[[VBITS:.*]] = llvm.load %[[P]] : !llvm.ptr -> vector<16xi16>
// CHECK-NEXT: llvm.store %[[VBITS]], %[[Q]] : vector<16xi16>, !llvm.ptr
// CHECK-NOT: bf16
// CHECK: llvm.return %[[SF]] : f16
llvm.func @moves(%p: !llvm.ptr, %q: !llvm.ptr, %c: i1, %a: f16, %b: f16) -> f16 {
  %x = llvm.load volatile %p {alignment = 2 : i64} : !llvm.ptr -> bf16
  llvm.store %x, %q : bf16, !llvm.ptr
  %s = llvm.select %c, %a, %b : i1, f16
  %v = llvm.load %p : !llvm.ptr -> vector<16xbf16>
  llvm.store %v, %q : vector<16xbf16>, !llvm.ptr
  llvm.return %s : f16
}

// Masked loads and stores of bf16 vectors (a tile's rows past its last
// column; AVX2 has no bf16 registers) move i16 bits too, the pass-through
// value included, and a chain of bitcasts through bf16 (rounded bits
// reinterpreted as pairs) becomes one bitcast.
// CHECK-LABEL: llvm.func @masked
// CHECK-SAME: (%[[P:.*]]: !llvm.ptr, %[[M:.*]]: vector<8xi1>, %[[R:.*]]: vector<8xi16>, %[[PASS:.*]]: vector<8xbf16>)
// CHECK: %[[PI:.*]] = llvm.bitcast %[[PASS]] : vector<8xbf16> to vector<8xi16>
// CHECK: %[[L:.*]] = llvm.intr.masked.load %[[P]], %[[M]], %[[PI]] {alignment = 2 : i32} : (!llvm.ptr, vector<8xi1>, vector<8xi16>) -> vector<8xi16>
// CHECK: llvm.intr.masked.store %[[R]], %[[P]], %[[M]] {alignment = 2 : i32} : vector<8xi16>, vector<8xi1> into !llvm.ptr
// CHECK: %[[PAIRS:.*]] = llvm.bitcast %[[L]] : vector<8xi16> to vector<4xi32>
// CHECK-NOT: bf16
// CHECK: llvm.return %[[PAIRS]] : vector<4xi32>
llvm.func @masked(%p: !llvm.ptr, %m: vector<8xi1>, %rounded: vector<8xi16>,
                  %pass: vector<8xbf16>) -> vector<4xi32> {
  %l = llvm.intr.masked.load %p, %m, %pass {alignment = 2 : i32} : (!llvm.ptr, vector<8xi1>, vector<8xbf16>) -> vector<8xbf16>
  %r = llvm.bitcast %rounded : vector<8xi16> to vector<8xbf16>
  llvm.intr.masked.store %r, %p, %m {alignment = 2 : i32} : vector<8xbf16>, vector<8xi1> into !llvm.ptr
  %pairs = llvm.bitcast %l : vector<8xbf16> to vector<4xi32>
  llvm.return %pairs : vector<4xi32>
}

// Other types move as they are.
// CHECK-LABEL: llvm.func @others
// CHECK-NOT: llvm.bitcast
// CHECK: llvm.load %{{.*}} : !llvm.ptr -> f32
// CHECK: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK: llvm.select %{{.*}}, %{{.*}}, %{{.*}} : i1, i16
// CHECK: llvm.load %{{.*}} : !llvm.ptr -> vector<8xf32>
// CHECK-NOT: llvm.bitcast
llvm.func @others(%p: !llvm.ptr, %c: i1, %i: i16, %j: i16) -> vector<8xf32> {
  %x = llvm.load %p : !llvm.ptr -> f32
  llvm.store %x, %p : f32, !llvm.ptr
  %s = llvm.select %c, %i, %j : i1, i16
  llvm.store %s, %p : i16, !llvm.ptr
  %v = llvm.load %p : !llvm.ptr -> vector<8xf32>
  llvm.return %v : vector<8xf32>
}
