// RUN: moe-opt %s --pass-pipeline='builtin.module(gpu.module(moe-pin-entry-registers))' | FileCheck %s

// A kernel whose warpgroups move registers gets nvvm.minctasm = 1 (ptxas
// then knows its count at entry); one that already has a bound keeps it;
// kernels without setmaxnreg and device functions are left alone.
// CHECK-LABEL: gpu.module @kernels
// CHECK: llvm.func @moves() attributes {nvvm.kernel, nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 1 : i32}
// CHECK: llvm.func @bounded() attributes {nvvm.kernel, nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 2 : i32}
// CHECK: llvm.func @plain() attributes {nvvm.kernel, nvvm.maxntid = array<i32: 128, 1, 1>}
// CHECK: llvm.func @helper() {
gpu.module @kernels {
  llvm.func @moves() attributes {nvvm.kernel, nvvm.maxntid = array<i32: 384, 1, 1>} {
    nvvm.setmaxregister decrease 40
    llvm.return
  }
  llvm.func @bounded() attributes {nvvm.kernel, nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 2 : i32} {
    nvvm.setmaxregister increase 232
    llvm.return
  }
  llvm.func @plain() attributes {nvvm.kernel, nvvm.maxntid = array<i32: 128, 1, 1>} {
    llvm.return
  }
  llvm.func @helper() {
    nvvm.setmaxregister decrease 40
    llvm.return
  }
}

