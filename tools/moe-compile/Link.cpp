//===- Link.cpp - An object file to a shared object with lld --------------===//
//
// lld's ELF driver, linked into moe-compile as a library: `ld.lld -shared
// -o OUT OBJ libm.so.6`. The module calls only libc and libm (moe-compile
// checks that), so it needs no start files; libm.so.6 is given by path so
// that the shared object records it as needed, and libc comes with any
// process that loads the module.
//
//===----------------------------------------------------------------------===//

#include "Backend.h"

#include "lld/Common/Driver.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

LLD_HAS_DRIVER(elf)

using namespace llvm;

namespace {

/// libm.so.6 in the usual library directories, or "" when none has it.
std::string findLibm() {
  for (const char *dir :
       {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
        "/usr/lib64", "/lib", "/usr/lib"}) {
    std::string path = std::string(dir) + "/libm.so.6";
    if (sys::fs::exists(path))
      return path;
  }
  return "";
}

} // namespace

Error moe::compile::linkSharedObject(StringRef objectPath,
                                     StringRef outputPath) {
  std::string object = objectPath.str(), output = outputPath.str();
  std::string libm = findLibm();
  SmallVector<const char *> args = {"ld.lld",   "-shared", "--as-needed",
                                    "-O2",      "-o",      output.c_str(),
                                    object.c_str()};
  if (!libm.empty())
    args.push_back(libm.c_str());
  std::string diagnostics;
  raw_string_ostream messages(diagnostics);
  lld::Result result = lld::lldMain(args, messages, messages,
                                    {{lld::Gnu, &lld::elf::link}});
  if (result.retCode != 0) {
    // lld's messages are "ld.lld: error: ..." lines; keep the first.
    StringRef first = StringRef(diagnostics).split('\n').first;
    return createStringError(inconvertibleErrorCode(),
                             "linking '" + outputPath + "' failed" +
                                 (first.empty() ? "" : ": " + first.str()));
  }
  return Error::success();
}
