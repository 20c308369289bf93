/* Runs entry `forward` of a compiled module on T tokens of ones and prints
 * the library version and the output's sum: the C API from an installed
 * MoE-MLIR. usage: run-layer MODULE.so CHECKPOINT T */
#include "moe/Runtime/moe_runtime.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: run-layer MODULE.so CHECKPOINT T\n");
    return 2;
  }
  moe_module *module = moe_module_load(argv[1]);
  moe_checkpoint *checkpoint = module ? moe_checkpoint_open(argv[2]) : NULL;
  moe_entry *entry =
      checkpoint ? moe_entry_bind(module, "forward", checkpoint) : NULL;
  if (!entry) {
    fprintf(stderr, "error: %s\n", moe_last_error());
    return 1;
  }
  int64_t tokens = atoll(argv[3]);
  int64_t hidden = moe_entry_hidden_size(entry);
  int64_t out = moe_entry_output_size(entry);
  float *x = malloc(sizeof(float) * (size_t)(tokens * hidden + 1));
  float *y = malloc(sizeof(float) * (size_t)(tokens * out + 1));
  for (int64_t i = 0; i < tokens * hidden; ++i)
    x[i] = 1.0f;
  if (moe_entry_run_f32(entry, x, tokens, hidden, y, 2) != 0) {
    fprintf(stderr, "error: %s\n", moe_last_error());
    return 1;
  }
  double sum = 0;
  for (int64_t i = 0; i < tokens * out; ++i)
    sum += y[i];
  printf("MoE-MLIR %s: [%lld, %lld] sum %.3f\n", moe_version(),
         (long long)tokens, (long long)out, sum);
  free(x);
  free(y);
  moe_entry_free(entry);
  moe_checkpoint_free(checkpoint);
  moe_module_free(module);
  return 0;
}
