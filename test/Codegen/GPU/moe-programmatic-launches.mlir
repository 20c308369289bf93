// RUN: moe-opt %s --split-input-file --moe-programmatic-launches --verify-diagnostics | FileCheck %s
// Running it twice changes nothing more.
// RUN: moe-opt %s --split-input-file --moe-programmatic-launches --moe-programmatic-launches --verify-diagnostics | FileCheck %s

// Every kernel waits for the grids before it, then lets the next start,
// before anything else; a device function (not a kernel) is left alone.
// The host function that launches gets the runtime's call first; one that
// launches nothing does not.
// CHECK-LABEL: func.func @forward
// CHECK-NEXT: call @mgpuAllowProgrammaticLaunches() : () -> ()
// CHECK-NEXT: arith.constant 1 : index
// CHECK: gpu.launch_func @kernels::@tiles
// CHECK-LABEL: func.func @host_only
// CHECK-NOT: call @mgpuAllowProgrammaticLaunches
// CHECK: return
// CHECK-LABEL: gpu.func @tiles
// CHECK-NEXT: nvvm.griddepcontrol {{ *}}wait
// CHECK-NEXT: nvvm.griddepcontrol {{ *}}launch_dependents
// CHECK-NEXT: arith.constant 0 : index
// CHECK-LABEL: gpu.func @helper
// CHECK-NOT: nvvm.griddepcontrol
// CHECK: gpu.return
// CHECK: func.func private @mgpuAllowProgrammaticLaunches()
module attributes {gpu.container_module} {
  func.func @forward(%out: memref<4xf32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@tiles blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%out : memref<4xf32>)
    return
  }
  func.func @host_only(%x: f32) -> f32 {
    return %x : f32
  }
  gpu.module @kernels {
    gpu.func @tiles(%out: memref<4xf32>) kernel {
      %c0 = arith.constant 0 : index
      %one = arith.constant 1.0 : f32
      memref.store %one, %out[%c0] : memref<4xf32>
      gpu.return
    }
    gpu.func @helper(%x: f32) -> f32 {
      gpu.return %x : f32
    }
  }
}

// -----

// An existing declaration of the runtime's function is reused; each
// launching function calls it once.
// CHECK-LABEL: func.func @first
// CHECK-NEXT: call @mgpuAllowProgrammaticLaunches()
// CHECK-NOT: call @mgpuAllowProgrammaticLaunches
// CHECK-LABEL: func.func @second
// CHECK-NEXT: call @mgpuAllowProgrammaticLaunches()
// CHECK-NOT: call @mgpuAllowProgrammaticLaunches
// CHECK: gpu.launch_func
// CHECK-LABEL: gpu.func @k
// CHECK-NOT: func.func private @mgpuAllowProgrammaticLaunches
// CHECK: // -----
module attributes {gpu.container_module} {
  func.func private @mgpuAllowProgrammaticLaunches()
  func.func @first() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  func.func @second(%c: i1) {
    scf.if %c {
      %c1 = arith.constant 1 : index
      gpu.launch_func @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    }
    return
  }
  gpu.module @kernels {
    gpu.func @k() kernel {
      gpu.return
    }
  }
}

// -----

// A symbol of the runtime's name but another type is an error.
module attributes {gpu.container_module} {
  // expected-error @below {{'mgpuAllowProgrammaticLaunches' is the runtime's, a func.func of type () -> ()}}
  func.func private @mgpuAllowProgrammaticLaunches(i32)
  func.func @launch() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @kernels {
    gpu.func @k() kernel {
      gpu.return
    }
  }
}

// -----

// So is a symbol of that name that is not a function.
module attributes {gpu.container_module} {
  // expected-error @below {{'mgpuAllowProgrammaticLaunches' is the runtime's, a func.func of type () -> ()}}
  llvm.mlir.global internal @mgpuAllowProgrammaticLaunches(0 : i32) : i32
  func.func @launch() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @kernels {
    gpu.func @k() kernel {
      gpu.return
    }
  }
}
