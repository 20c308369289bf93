// RUN: moe-opt %s --pass-pipeline='builtin.module(gpu.module(moe-pin-entry-registers))' --verify-diagnostics

// Without nvvm.maxntid there is no register count to start from.
gpu.module @unbounded {
  // expected-error @+1 {{moe-pin-entry-registers: a kernel that moves registers (nvvm.setmaxregister) needs nvvm.maxntid}}
  llvm.func @moves() attributes {nvvm.kernel} {
    nvvm.setmaxregister decrease 40
    llvm.return
  }
}
