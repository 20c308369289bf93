//===- SanitizerOptions.h - ASan/UBSan defaults of the tools ----*- C++ -*-===//
//
// Included once by the main file of each tool. In a MOE_SANITIZE build,
// sanitizer reports end in a signal, so that `not` in lit tests cannot
// mistake one for an expected error exit.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_SANITIZEROPTIONS_H
#define MOE_TOOLS_SANITIZEROPTIONS_H

#ifdef MOE_SANITIZE
extern "C" const char *__asan_default_options() {
  // allow_user_poisoning=0: LLVM's BumpPtrAllocator poisons its slabs in
  // instrumented code (ours) but not in the uninstrumented libMLIR.so that
  // shares them, which would read as use-after-poison.
  return "abort_on_error=1:detect_leaks=1:allow_user_poisoning=0";
}
// The MPI library of an expert-parallel module (OpenMPI and the libraries
// it loads) keeps allocations past MPI_Finalize by design; leaks with one of
// its frames in the stack are its own.
extern "C" const char *__lsan_default_suppressions() {
  return "leak:libmpi.so\n"
         "leak:libopen-pal.so\n"
         "leak:libopen-rte.so\n"
         "leak:libpmix.so\n"
         "leak:libhwloc.so\n"
         "leak:libevent\n"
         "leak:libucs.so\n"
         "leak:libucp.so\n"
         "leak:libfabric.so\n"
         "leak:/openmpi/\n"
         "leak:/pmix/\n";
}
extern "C" const char *__ubsan_default_options() {
  return "abort_on_error=1:halt_on_error=1:print_stacktrace=1";
}
#endif

#endif // MOE_TOOLS_SANITIZEROPTIONS_H
