// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-allocate-through-runtime | FileCheck %s

// The generic allocation functions get internal bodies that call through
// the exported table moe_module_allocator when the runtime has set it, and
// malloc / free otherwise.
// CHECK: llvm.mlir.global external @moe_module_allocator() {{.*}} : !llvm.struct<(ptr, ptr)>
// CHECK:   llvm.mlir.zero : !llvm.struct<(ptr, ptr)>
// CHECK-LABEL: llvm.func internal @_mlir_memref_to_llvm_alloc(%{{.*}}: i64) -> !llvm.ptr
// CHECK:   %[[T:.*]] = llvm.mlir.addressof @moe_module_allocator
// CHECK:   %[[SLOT:.*]] = llvm.getelementptr %[[T]][0, 0]
// CHECK:   %[[FN:.*]] = llvm.load %[[SLOT]] : !llvm.ptr -> !llvm.ptr
// CHECK:   llvm.icmp "eq" %[[FN]]
// CHECK:   llvm.cond_br
// CHECK:   llvm.call @malloc(
// CHECK:   llvm.call %[[FN]](
// CHECK-LABEL: llvm.func internal @_mlir_memref_to_llvm_free(%{{.*}}: !llvm.ptr)
// CHECK:   llvm.getelementptr %{{.*}}[0, 1]
// CHECK:   llvm.call @free(
// CHECK-LABEL: llvm.func @user
llvm.func @_mlir_memref_to_llvm_alloc(i64) -> !llvm.ptr
llvm.func @_mlir_memref_to_llvm_free(!llvm.ptr)
llvm.func @user(%n: i64) {
  %p = llvm.call @_mlir_memref_to_llvm_alloc(%n) : (i64) -> !llvm.ptr
  llvm.call @_mlir_memref_to_llvm_free(%p) : (!llvm.ptr) -> ()
  llvm.return
}

// -----

// No allocation: nothing to route, no table.
// CHECK-NOT: moe_module_allocator
// CHECK-LABEL: llvm.func @no_alloc
llvm.func @no_alloc() {
  llvm.return
}

// -----

// expected-error @+1 {{moe-allocate-through-runtime: the module already has a symbol 'moe_module_allocator'}}
module {
  llvm.mlir.global external @moe_module_allocator() : i64
  llvm.func @_mlir_memref_to_llvm_alloc(i64) -> !llvm.ptr
}
