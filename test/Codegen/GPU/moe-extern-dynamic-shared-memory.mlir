// RUN: moe-opt %s --pass-pipeline='builtin.module(gpu.module(moe-extern-dynamic-shared-memory))' | FileCheck %s

// Upstream's dynamic shared memory symbol becomes external, so that NVPTX
// keeps it a module-level `.extern .shared` array placed after the static
// shared memory; other shared and global variables keep their linkage.
// CHECK-LABEL: gpu.module @kernels
// CHECK: llvm.mlir.global external @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
// CHECK: llvm.mlir.global internal @__mbarrier() {addr_space = 3 : i32, alignment = 8 : i64} : !llvm.array<2 x i64>
// CHECK: llvm.mlir.global internal @__dynamic_shmem__private() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<4 x i8>
// CHECK: llvm.mlir.global internal @__dynamic_shmem__global() {addr_space = 0 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
gpu.module @kernels {
  llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
  llvm.mlir.global internal @__mbarrier() {addr_space = 3 : i32, alignment = 8 : i64} : !llvm.array<2 x i64>
  llvm.mlir.global internal @__dynamic_shmem__private() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<4 x i8>
  llvm.mlir.global internal @__dynamic_shmem__global() {alignment = 16 : i64} : !llvm.array<0 x i8>
}
