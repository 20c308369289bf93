//===- moe-checkpoint-inspect.cpp - Inspect checkpoints and .npy files ----===//
//
// Drives the runtime's I/O layer from the command line:
//
//   moe-checkpoint-inspect CHECKPOINT                 list the tensors
//   moe-checkpoint-inspect CHECKPOINT --metadata      print __metadata__
//   moe-checkpoint-inspect CHECKPOINT --dump NAME     print a tensor as f32
//   moe-checkpoint-inspect --npy-dump IN.npy          print an array
//   moe-checkpoint-inspect --npy-roundtrip IN.npy OUT.npy
//
// Every failure prints one line "error: <file>: <problem>" and exits with 1.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Npy.h"
#include "moe/Runtime/OutputFile.h"
#include "moe/Version.h"
#include "moe/Runtime/Safetensors.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace moe::runtime;

#include "../SanitizerOptions.h"

namespace {

const char *const kUsage =
    "usage: moe-checkpoint-inspect CHECKPOINT [--metadata] [--dump NAME]...\n"
    "       moe-checkpoint-inspect --npy-dump IN.npy\n"
    "       moe-checkpoint-inspect --npy-roundtrip IN.npy OUT.npy\n"
    "       moe-checkpoint-inspect --version\n"
    "CHECKPOINT is a .safetensors file, a model.safetensors.index.json file,\n"
    "or a directory holding either.\n";

int reportError(const std::string &message) {
  std::fprintf(stderr, "error: %s\n", printable(message).c_str());
  return 1;
}

void printValues(const std::vector<float> &values) {
  for (float v : values)
    std::printf("%.9g\n", static_cast<double>(v));
}

std::string formatNpyShape(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

int npyDump(const std::string &path) {
  Result<NpyArray> array = readNpy(path);
  if (!array)
    return reportError(array.error());
  std::printf("%s float32 %s\n", printable(path).c_str(),
              formatNpyShape(array->shape).c_str());
  printValues(array->data);
  return 0;
}

int npyRoundtrip(const std::string &in, const std::string &out) {
  if (isSameFile(in, out))
    return reportError(printable(out) + ": the output is the input");
  Result<PendingOutput> file = PendingOutput::create(out);
  if (!file)
    return reportError(file.error());
  Result<NpyArray> array = readNpy(in);
  if (!array)
    return reportError(array.error());
  Status written = writeNpy(file->tempPath(), *array);
  if (!written)
    return reportError(printable(out) + ": " + written.error());
  written = file->commit();
  if (!written)
    return reportError(written.error());
  std::printf("%s float32 %s -> %s\n", printable(in).c_str(),
              formatNpyShape(array->shape).c_str(), printable(out).c_str());
  return 0;
}

int inspect(const std::string &path, bool metadata,
            const std::vector<std::string> &dumps) {
  Result<Checkpoint> checkpoint = Checkpoint::open(path);
  if (!checkpoint)
    return reportError(checkpoint.error());
  if (metadata) {
    for (const SafetensorsFile &file : checkpoint->files())
      for (const auto &item : file.metadata())
        std::printf("%s: %s = %s\n", printable(file.path()).c_str(),
                    printable(item.first).c_str(),
                    printable(item.second).c_str());
  }
  if (dumps.empty() && !metadata) {
    std::printf("%s: %zu tensors in %zu files\n", printable(path).c_str(),
                checkpoint->tensors().size(), checkpoint->files().size());
    for (const TensorView &tensor : checkpoint->tensors())
      std::printf("%s %s %s\n", printable(tensor.name).c_str(),
                  dtypeName(tensor.dtype),
                  formatShape(tensor.shape).c_str());
  }
  for (const std::string &name : dumps) {
    Result<const TensorView *> tensor = checkpoint->lookup(name);
    if (!tensor)
      return reportError(tensor.error());
    Result<std::vector<float>> values = readAsF32(**tensor);
    if (!values)
      return reportError(values.error());
    std::printf("%s %s %s\n", printable(name).c_str(),
                dtypeName((*tensor)->dtype),
                formatShape((*tensor)->shape).c_str());
    printValues(*values);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty())
    return reportError("no input; see --help");
  if (args[0] == "-h" || args[0] == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args[0] == "--version") {
    std::printf("moe-checkpoint-inspect (MoE-MLIR) %s\n", MOE_VERSION_STRING);
    return 0;
  }
  if (args[0] == "--npy-dump") {
    if (args.size() != 2)
      return reportError("--npy-dump takes one file; see --help");
    return npyDump(args[1]);
  }
  if (args[0] == "--npy-roundtrip") {
    if (args.size() != 3)
      return reportError("--npy-roundtrip takes two files; see --help");
    return npyRoundtrip(args[1], args[2]);
  }

  std::string checkpoint;
  bool metadata = false;
  std::vector<std::string> dumps;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--metadata") {
      metadata = true;
    } else if (args[i] == "--dump") {
      if (i + 1 == args.size())
        return reportError("--dump needs a tensor name");
      dumps.push_back(args[++i]);
    } else if (args[i].size() > 1 && args[i][0] == '-') {
      return reportError("unknown option '" + printable(args[i]) +
                         "'; see --help");
    } else if (checkpoint.empty()) {
      checkpoint = args[i];
    } else {
      return reportError("more than one checkpoint given ('" +
                         printable(checkpoint) + "' and '" +
                         printable(args[i]) + "')");
    }
  }
  if (checkpoint.empty())
    return reportError("no checkpoint given; see --help");
  return inspect(checkpoint, metadata, dumps);
}
