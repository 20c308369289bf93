// RUN: moe-opt %s --moe-lower-to-cpu | FileCheck %s --check-prefixes=CHECK,FAST
// RUN: moe-opt %s --moe-lower-to-cpu=reference=1 | FileCheck %s
// RUN: moe-opt %s --moe-lower-to-cpu=reference=1 | FileCheck %s --check-prefix=REF
// RUN: moe-opt %s --moe-lower-to-cpu="block-rows=8 tile-n=16 tile-k=0 vector-width=8" | FileCheck %s --check-prefixes=CHECK,FAST8
// RUN: moe-opt %s --moe-lower-to-cpu=c-interface=0 | FileCheck %s --check-prefix=NOEXPORT
// RUN: moe-opt %s --moe-lower-to-cpu=row-align=16 | FileCheck %s --check-prefix=ALIGN
// RUN: not moe-opt %s --moe-lower-to-cpu=row-align=0 2>&1 | FileCheck %s --check-prefix=BADALIGN
// RUN: moe-opt %s --moe-lower-to-cpu=openmp=0 | FileCheck %s --check-prefix=SEQ

// The whole pipeline: moe ops on tensors to the LLVM dialect, with the entry
// point's C interface and manifest, calling nothing but libc and libm.
// CHECK-NOT: moe.layer
// CHECK-DAG: llvm.func @malloc
// CHECK-DAG: llvm.func @free
// CHECK-DAG: llvm.func @forward(
// CHECK-DAG: llvm.func @_mlir_ciface_forward(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// CHECK-DAG: llvm.mlir.global external constant @moe_module_manifest
// The fast path's grouped matmuls run 16-lane (8 with vector-width=8) f32
// fused multiply-adds; the reference lowering has no vector code.
// FAST-DAG: llvm.intr.fmuladd{{.*}}vector<16xf32>
// FAST8-DAG: llvm.intr.fmuladd{{.*}}vector<8xf32>
// REF-NOT: vector<

// The fast path's parallel loops run as OpenMP worksharing loops (tiles and
// element-wise ops); the reference lowering and openmp=0 are sequential.
// FAST-DAG: omp.parallel
// FAST-DAG: omp.wsloop
// FAST-DAG: omp.loop_nest
// REF-NOT: omp.
// SEQ-NOT: omp.
// CHECK-NOT: memrefCopy
// CHECK-NOT: func.func
// CHECK-NOT: memref.

// NOEXPORT-NOT: _mlir_ciface_forward
// NOEXPORT-NOT: moe_module_manifest
// NOEXPORT: llvm.func @forward(

// Expert row counts are rounded up to a multiple of 16.
// ALIGN: llvm.udiv %{{.*}}, %{{.*}} : i64
// ALIGN: llvm.mlir.constant(16 : index)

// BADALIGN: moe-decompose: row-align must be at least 1, got 0

func.func @forward(%x: tensor<?x16xf32>,
    %wg: tensor<4x16xf32> {moe.weight = "gate.weight"},
    %w1: tensor<4x8x16xbf16> {moe.weight = "experts.{e}.w1.weight"},
    %w3: tensor<4x8x16xbf16> {moe.weight = "experts.{e}.w3.weight"},
    %w2: tensor<4x16x8xbf16> {moe.weight = "experts.{e}.w2.weight"}) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%wg : tensor<4x16xf32>)
      experts(gate %w1 : tensor<4x8x16xbf16>, up %w3 : tensor<4x8x16xbf16>,
              down %w2 : tensor<4x16x8xbf16>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
