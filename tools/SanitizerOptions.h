//===- SanitizerOptions.h - ASan/UBSan defaults of the tools ----*- C++ -*-===//
//
// Included once by each runtime tool's main file. In a MOE_SANITIZE build,
// sanitizer reports end in a signal, so that `not` in lit tests cannot
// mistake one for an expected error exit.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_SANITIZEROPTIONS_H
#define MOE_TOOLS_SANITIZEROPTIONS_H

#ifdef MOE_SANITIZE
extern "C" const char *__asan_default_options() {
  return "abort_on_error=1:detect_leaks=1";
}
extern "C" const char *__ubsan_default_options() {
  return "abort_on_error=1:halt_on_error=1:print_stacktrace=1";
}
#endif

#endif // MOE_TOOLS_SANITIZEROPTIONS_H
