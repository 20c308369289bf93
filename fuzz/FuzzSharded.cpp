//===- FuzzSharded.cpp - Fuzzing sharded checkpoints ----------------------===//
//
// The input holds an index and two shards (FuzzedDataProvider strings),
// written as model.safetensors.index.json, model-00001-of-00002.safetensors
// and model-00002-of-00002.safetensors in a private directory. Invariants:
// an error is one printable line; on success every tensor comes from a
// shard, lies inside that shard's file, and the shards are files of the
// directory.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "moe/Runtime/Safetensors.h"

#include <fuzzer/FuzzedDataProvider.h>

using namespace moe::runtime;
using namespace moe::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider provider(data, size);
  std::string index = provider.ConsumeRandomLengthString(size);
  std::string first = provider.ConsumeRandomLengthString(size);
  std::string second = provider.ConsumeRemainingBytesAsString();
  ScratchDirectory dir;
  std::string indexPath = dir.write("model.safetensors.index.json", index);
  dir.write("model-00001-of-00002.safetensors", first);
  dir.write("model-00002-of-00002.safetensors", second);

  Result<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  if (!checkpoint) {
    checkOneLine(checkpoint.error());
    return 0;
  }
  std::vector<std::string> sources = checkpoint->sourcePaths();
  FUZZ_CHECK(!sources.empty() && sources[0] == indexPath, "index path");
  for (const SafetensorsFile &file : checkpoint->files())
    FUZZ_CHECK(file.path().rfind(dir.path() + "/", 0) == 0 &&
                   file.path().find("/..") == std::string::npos,
               "shard outside the directory: " + printable(file.path()));
  for (const TensorView &tensor : checkpoint->tensors()) {
    bool inside = false;
    for (const SafetensorsFile &file : checkpoint->files()) {
      auto *begin = static_cast<const uint8_t *>(tensor.data);
      if (file.path() == tensor.file &&
          (tensor.numBytes == 0 ||
           (begin >= file.fileData() &&
            begin + tensor.numBytes <= file.fileData() + file.fileSize())))
        inside = true;
    }
    FUZZ_CHECK(inside, "tensor outside its shard: " + printable(tensor.name));
    FUZZ_CHECK(checkpoint->find(tensor.name) == &tensor ||
                   checkpoint->find(tensor.name)->name == tensor.name,
               "lookup failed");
  }
  return 0;
}
