// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-pass-tensor-maps-by-value | FileCheck %s

// A descriptor the host encodes for a kernel that only hands it to TMA
// copies: the host encodes it into a 64-byte aligned slot of its entry
// block and passes the slot's 128 bytes; the kernel's parameter becomes a
// grid-constant byval pointer. The device-copy call and its declaration go.
// A descriptor used by two launches is encoded once.

// CHECK-LABEL: llvm.func @host
// CHECK: %[[ONE:.*]] = llvm.mlir.constant(1 : i64) : i64
// CHECK-NEXT: %[[SLOT:.*]] = llvm.alloca %[[ONE]] x !llvm.array<16 x i64> {alignment = 64 : i64}
// CHECK: llvm.cond_br
// CHECK: llvm.call @mgpuTensorMapEncodeTiledMemrefInto(%{{.*}}, %{{.*}}, %[[SLOT]]) : (i64, !llvm.ptr, i64, i64, i64, i64, i64, !llvm.ptr, !llvm.ptr) -> ()
// CHECK-NEXT: %[[BYTES:.*]] = llvm.load %[[SLOT]] {alignment = 64 : i64} : !llvm.ptr -> !llvm.array<16 x i64>
// CHECK-NOT: @mgpuTensorMapEncodeTiledMemref(
// CHECK: gpu.launch_func @kernels::@tiles {{.*}} args(%{{.*}} : !llvm.ptr, %[[BYTES]] : !llvm.array<16 x i64>)
// CHECK: gpu.launch_func @kernels::@tiles {{.*}} args(%{{.*}} : !llvm.ptr, %[[BYTES]] : !llvm.array<16 x i64>)
// CHECK: llvm.func @tiles(%{{.*}}: !llvm.ptr, %[[MAP:.*]]: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<16 x i64>, nvvm.grid_constant})
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %[[MAP]]
// CHECK-NOT: llvm.func @mgpuTensorMapEncodeTiledMemref(
// CHECK: llvm.func @mgpuTensorMapEncodeTiledMemrefInto(i64, !llvm.ptr, i64, i64, i64, i64, i64, !llvm.ptr, !llvm.ptr)
// CHECK-NOT: llvm.func @mgpuTensorMapEncodeTiledMemref(
module attributes {gpu.container_module} {
  llvm.func @host(%memref: !llvm.ptr, %box: !llvm.ptr, %out: !llvm.ptr, %go: i1) {
    %c1 = llvm.mlir.constant(1 : index) : i64
    %c3 = llvm.mlir.constant(3 : i64) : i64
    %c9 = llvm.mlir.constant(9 : i64) : i64
    %c0 = llvm.mlir.constant(0 : i64) : i64
    llvm.cond_br %go, ^launch, ^done
  ^launch:
    %map = llvm.call @mgpuTensorMapEncodeTiledMemref(%c3, %memref, %c9, %c0, %c3, %c3, %c0, %box) : (i64, !llvm.ptr, i64, i64, i64, i64, i64, !llvm.ptr) -> !llvm.ptr
    gpu.launch_func @kernels::@tiles blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%out : !llvm.ptr, %map : !llvm.ptr)
    gpu.launch_func @kernels::@tiles blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%out : !llvm.ptr, %map : !llvm.ptr)
    llvm.br ^done
  ^done:
    llvm.return
  }
  llvm.func @mgpuTensorMapEncodeTiledMemref(i64, !llvm.ptr, i64, i64, i64, i64, i64, !llvm.ptr) -> !llvm.ptr
  gpu.module @kernels {
    llvm.func @tiles(%dst: !llvm.ptr, %map: !llvm.ptr) attributes {gpu.kernel, nvvm.kernel} {
      %c0 = llvm.mlir.constant(0 : i32) : i32
      %shared = llvm.mlir.zero : !llvm.ptr<3>
      %box = llvm.mlir.zero : !llvm.ptr<7>
      nvvm.cp.async.bulk.tensor.shared.cluster.global %box, %map, %shared, box[%c0, %c0, %c0] : !llvm.ptr<7>, !llvm.ptr
      llvm.return
    }
  }
}

// -----

// Left alone: a kernel that writes through the pointer (by value, it would
// write its own parameter), and a kernel one of whose launches passes a
// pointer that is not an encoded descriptor. The device-copy declaration
// stays while something calls it.

// CHECK-LABEL: llvm.func @host
// CHECK-NOT: Into
// CHECK: gpu.launch_func @kernels::@writes {{.*}} args(%{{.*}} : !llvm.ptr)
// CHECK: gpu.launch_func @kernels::@reads {{.*}} args(%{{.*}} : !llvm.ptr)
// CHECK: gpu.launch_func @kernels::@reads {{.*}} args(%{{.*}} : !llvm.ptr)
// CHECK: llvm.func @mgpuTensorMapEncodeTiledMemref(
// CHECK: llvm.func @writes(%{{.*}}: !llvm.ptr)
// CHECK: llvm.func @reads(%{{.*}}: !llvm.ptr)
module attributes {gpu.container_module} {
  llvm.func @host(%memref: !llvm.ptr, %box: !llvm.ptr, %other: !llvm.ptr) {
    %c1 = llvm.mlir.constant(1 : index) : i64
    %c3 = llvm.mlir.constant(3 : i64) : i64
    %c9 = llvm.mlir.constant(9 : i64) : i64
    %c0 = llvm.mlir.constant(0 : i64) : i64
    %map = llvm.call @mgpuTensorMapEncodeTiledMemref(%c3, %memref, %c9, %c0, %c3, %c3, %c0, %box) : (i64, !llvm.ptr, i64, i64, i64, i64, i64, !llvm.ptr) -> !llvm.ptr
    gpu.launch_func @kernels::@writes blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%map : !llvm.ptr)
    gpu.launch_func @kernels::@reads blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%map : !llvm.ptr)
    gpu.launch_func @kernels::@reads blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%other : !llvm.ptr)
    llvm.return
  }
  llvm.func @mgpuTensorMapEncodeTiledMemref(i64, !llvm.ptr, i64, i64, i64, i64, i64, !llvm.ptr) -> !llvm.ptr
  gpu.module @kernels {
    llvm.func @writes(%map: !llvm.ptr) attributes {gpu.kernel, nvvm.kernel} {
      %c0 = llvm.mlir.constant(0 : i64) : i64
      llvm.store %c0, %map : i64, !llvm.ptr
      llvm.return
    }
    llvm.func @reads(%map: !llvm.ptr) attributes {gpu.kernel, nvvm.kernel} {
      %word = llvm.load %map : !llvm.ptr -> i64
      llvm.return
    }
  }
}

// -----

// Kernels not yet in the LLVM dialect: a launch's operands (memrefs) are
// not the kernel's parameters one for one.

// expected-error @+1 {{moe-pass-tensor-maps-by-value: expects kernels in the LLVM dialect (run after convert-gpu-to-nvvm and gpu-to-llvm)}}
module attributes {gpu.container_module} {
  func.func @host(%buffer: memref<4xf32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@tiles blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%buffer : memref<4xf32>)
    return
  }
  gpu.module @kernels {
    gpu.func @tiles(%buffer: memref<4xf32>) kernel {
      gpu.return
    }
  }
}
