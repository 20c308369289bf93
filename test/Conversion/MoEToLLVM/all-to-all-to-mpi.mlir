// RUN: moe-opt %s -split-input-file --convert-to-llvm | FileCheck %s
// moe.all_to_all on buffers: MPI_Alltoallv with a contiguous datatype of
// one row, counts and displacements unrolled over the ranks, for OpenMPI
// (addresses of its predefined objects) and MPICH (integer handles).

// CHECK-LABEL: module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "OpenMPI">}
// CHECK: llvm.mlir.global external @ompi_mpi_byte()
// CHECK-LABEL: llvm.func @exchange
// CHECK: %[[ROWTYPE:.*]] = llvm.alloca %{{.*}} x !llvm.ptr
// CHECK-COUNT-4: llvm.store %{{.*}} : i32, !llvm.ptr
// Counts or offsets past MPI's int end the job with one line.
// CHECK: llvm.cond_br %{{.*}}, ^[[ABORT:.*]], ^[[EXCHANGE:.*]]
// CHECK: ^[[ABORT]]:
// CHECK: llvm.call @write
// CHECK: llvm.call @MPI_Abort
// CHECK: llvm.unreachable
// CHECK: ^[[EXCHANGE]]:
// CHECK: %[[BYTES:.*]] = llvm.mlir.constant(32 : i32) : i32
// CHECK: %[[BYTE:.*]] = llvm.mlir.addressof @ompi_mpi_byte : !llvm.ptr
// CHECK: llvm.call @MPI_Type_contiguous(%[[BYTES]], %[[BYTE]], %[[ROWTYPE]])
// CHECK: llvm.call @MPI_Type_commit(%[[ROWTYPE]])
// CHECK: %[[ROW:.*]] = llvm.load %[[ROWTYPE]] : !llvm.ptr -> !llvm.ptr
// CHECK: llvm.call @MPI_Alltoallv(%{{.*}}, %{{.*}}, %{{.*}}, %[[ROW]], %{{.*}}, %{{.*}}, %{{.*}}, %[[ROW]], %{{.*}}) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr) -> i32
// CHECK: llvm.call @MPI_Type_free(%[[ROWTYPE]])
module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "OpenMPI">} {
  func.func @exchange(%rows: memref<?x8xf32>, %send: memref<2xi64>,
                      %recv: memref<2xi64>, %init: memref<?x8xf32>) {
    %comm = mpi.comm_world : !mpi.comm
    moe.all_to_all %rows counts(%send, %recv) comm(%comm)
        : memref<?x8xf32>, memref<2xi64> outs(%init : memref<?x8xf32>)
    return
  }
}

// -----

// CHECK-LABEL: llvm.func @exchange_mpich
// CHECK: llvm.unreachable
// CHECK: %[[BYTES:.*]] = llvm.mlir.constant(6 : i32) : i32
// CHECK: %[[BYTE:.*]] = llvm.mlir.constant(1275068685 : i32) : i32
// CHECK: llvm.call @MPI_Type_contiguous(%[[BYTES]], %[[BYTE]], %{{.*}})
// CHECK: llvm.call @MPI_Alltoallv({{.*}}) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, i32, !llvm.ptr, !llvm.ptr, !llvm.ptr, i32, i32) -> i32
module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  func.func @exchange_mpich(%rows: memref<?x3xbf16>, %send: memref<3xi64>,
                            %recv: memref<3xi64>, %init: memref<?x3xbf16>) {
    %comm = mpi.comm_world : !mpi.comm
    moe.all_to_all %rows counts(%send, %recv) comm(%comm)
        : memref<?x3xbf16>, memref<3xi64> outs(%init : memref<?x3xbf16>)
    return
  }
}

