// RUN: moe-opt %s --convert-to-llvm -verify-diagnostics
// Rows must be packed: a strided buffer is refused.
module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "OpenMPI">} {
  func.func @strided(%rows: memref<?x8xf32, strided<[16, 1]>>, %send: memref<2xi64>,
                     %recv: memref<2xi64>, %init: memref<?x8xf32>) {
    %comm = mpi.comm_world : !mpi.comm
    // expected-error @+1 {{needs buffers of packed rows}}
    moe.all_to_all %rows counts(%send, %recv) comm(%comm)
        : memref<?x8xf32, strided<[16, 1]>>, memref<2xi64> outs(%init : memref<?x8xf32>)
    return
  }
}
