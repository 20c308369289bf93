/* Entry points of fake compiled modules for the runtime tests.
 *
 * They follow the calling convention of docs/CompiledModules.md (memref
 * descriptors, a malloc'd result) the way moe-compile's output does, so the
 * runtime can be tested without the compiler. make_module.py writes the
 * manifest that goes with them; check_module_output.py holds the reference
 * of each. The hidden size is H = 8 throughout.
 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
} MemRef2;

typedef struct {
  uint16_t *allocated;
  uint16_t *aligned;
  int64_t offset;
  int64_t sizes[3];
  int64_t strides[3];
} MemRef3BF16;

static float at2(const MemRef2 *m, int64_t i, int64_t j) {
  return m->aligned[m->offset + i * m->strides[0] + j * m->strides[1]];
}

static float bf16ToFloat(uint16_t bits16) {
  uint32_t bits = (uint32_t)bits16 << 16;
  float value;
  memcpy(&value, &bits, sizeof(value));
  return value;
}

static float bf16At(const MemRef3BF16 *m, int64_t e, int64_t i, int64_t j) {
  return bf16ToFloat(m->aligned[m->offset + e * m->strides[0] +
                                i * m->strides[1] + j * m->strides[2]]);
}

/* A fresh contiguous [rows, cols] result. */
static void newResult(MemRef2 *result, int64_t rows, int64_t cols) {
  size_t bytes = (size_t)(rows * cols) * sizeof(float);
  result->allocated = malloc(bytes ? bytes : 1);
  result->aligned = result->allocated;
  result->offset = 0;
  result->sizes[0] = rows;
  result->sizes[1] = cols;
  result->strides[0] = cols;
  result->strides[1] = 1;
}

static void setResult(MemRef2 *result, int64_t t, int64_t h, float value) {
  result->aligned[result->offset + t * result->strides[0] +
                  h * result->strides[1]] = value;
}

/* y = x @ w^T with w [H, H] f32. */
void _mlir_ciface_forward(MemRef2 *result, MemRef2 *x, MemRef2 *w) {
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  newResult(result, tokens, hidden);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < hidden; ++i) {
      float sum = 0.0f;
      for (int64_t j = 0; j < hidden; ++j)
        sum += at2(x, t, j) * at2(w, i, j);
      setResult(result, t, i, sum);
    }
}

/* y = sum_e (e + 1) * x @ w[e]^T for E experts whose weight w[e][i, j] is
 * weightAt(w, e, i, j): the factor makes the result depend on the order of
 * the stack. */
static void stackedSum(MemRef2 *result, MemRef2 *x, int64_t experts,
                       const void *w,
                       float (*weightAt)(const void *, int64_t, int64_t,
                                         int64_t)) {
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  newResult(result, tokens, hidden);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < hidden; ++i) {
      float sum = 0.0f;
      for (int64_t e = 0; e < experts; ++e) {
        float dot = 0.0f;
        for (int64_t j = 0; j < hidden; ++j)
          dot += at2(x, t, j) * weightAt(w, e, i, j);
        sum += (float)(e + 1) * dot;
      }
      setResult(result, t, i, sum);
    }
}

static float stackAt(const void *w, int64_t e, int64_t i, int64_t j) {
  return bf16At((const MemRef3BF16 *)w, e, i, j);
}

/* stackedSum with w [E, H, H] bf16. */
void _mlir_ciface_stacked(MemRef2 *result, MemRef2 *x, MemRef3BF16 *w) {
  stackedSum(result, x, w->sizes[0], w, stackAt);
}

typedef struct {
  uint16_t *allocated;
  uint16_t *aligned;
  int64_t offset;
  int64_t sizes[4];
  int64_t strides[4];
} MemRef4BF16;

/* The packing function of the "packed" manifest: the [E, H, H] bf16 stack
 * in panels of H columns, packed[e, 0, k, j] = w[e, j, k] (the layout of
 * moe-pack-expert-weights with P = H), written into the caller's buffer. */
void _mlir_ciface_pack_experts(MemRef3BF16 *w, MemRef4BF16 *packed) {
  for (int64_t e = 0; e < w->sizes[0]; ++e)
    for (int64_t j = 0; j < w->sizes[1]; ++j)
      for (int64_t k = 0; k < w->sizes[2]; ++k)
        packed->aligned[packed->offset + e * packed->strides[0] +
                        k * packed->strides[2] + j * packed->strides[3]] =
            w->aligned[w->offset + e * w->strides[0] + j * w->strides[1] +
                       k * w->strides[2]];
}

static float packedAt(const void *weights, int64_t e, int64_t i, int64_t j) {
  const MemRef4BF16 *w = (const MemRef4BF16 *)weights;
  return bf16ToFloat(w->aligned[w->offset + e * w->strides[0] +
                                j * w->strides[2] + i * w->strides[3]]);
}

/* As stacked, reading the packed weights. */
void _mlir_ciface_packed(MemRef2 *result, MemRef2 *x, MemRef4BF16 *w) {
  stackedSum(result, x, w->sizes[0], w, packedAt);
}

/* As forward, but the result is column-major behind a 3-element offset. */
void _mlir_ciface_strided(MemRef2 *result, MemRef2 *x, MemRef2 *w) {
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  result->allocated = malloc((size_t)(tokens * hidden + 3) * sizeof(float));
  result->aligned = result->allocated;
  result->offset = 3;
  result->sizes[0] = tokens;
  result->sizes[1] = hidden;
  result->strides[0] = 1;
  result->strides[1] = tokens;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < hidden; ++i) {
      float sum = 0.0f;
      for (int64_t j = 0; j < hidden; ++j)
        sum += at2(x, t, j) * at2(w, i, j);
      setResult(result, t, i, sum);
    }
}

/* y = x, returned as the argument's own buffer (which must not be freed). */
void _mlir_ciface_alias(MemRef2 *result, MemRef2 *x) { *result = *x; }

/* y = x + the number of tokens this call saw: shows how the tokens were
 * split over calls. */
void _mlir_ciface_chunk(MemRef2 *result, MemRef2 *x) {
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  newResult(result, tokens, hidden);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < hidden; ++h)
      setResult(result, t, h, at2(x, t, h) + (float)tokens);
}

/* A result of the wrong shape [T, H + 1]. */
void _mlir_ciface_bad_shape(MemRef2 *result, MemRef2 *x) {
  newResult(result, x->sizes[0], x->sizes[1] + 1);
  memset(result->allocated, 0,
         (size_t)(x->sizes[0] * (x->sizes[1] + 1)) * sizeof(float));
}

/* y = 1.5 everywhere, from a global buffer marked as MLIR marks globals
 * (allocated = 0xdeadbeef, not to be freed); at most 1024 elements. */
static float globalOnes[1024];
void _mlir_ciface_global(MemRef2 *result, MemRef2 *x) {
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  for (int64_t i = 0; i < 1024; ++i)
    globalOnes[i] = 1.5f;
  result->allocated = (float *)(uintptr_t)0xdeadbeef;
  result->aligned = globalOnes;
  result->offset = 0;
  result->sizes[0] = tokens;
  result->sizes[1] = hidden;
  result->strides[0] = hidden;
  result->strides[1] = 1;
}

/* y = x0 + x1 @ w^T: two inputs around a weight. */
void _mlir_ciface_two_inputs(MemRef2 *result, MemRef2 *x0, MemRef2 *w,
                             MemRef2 *x1) {
  int64_t tokens = x0->sizes[0], hidden = x0->sizes[1];
  newResult(result, tokens, hidden);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < hidden; ++i) {
      float sum = 0.0f;
      for (int64_t j = 0; j < hidden; ++j)
        sum += at2(x1, t, j) * at2(w, i, j);
      setResult(result, t, i, at2(x0, t, i) + sum);
    }
}

typedef struct {
  int64_t *allocated;
  int64_t *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
} MemRef1I64;

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
} MemRef0;

typedef struct {
  MemRef2 y;
  MemRef1I64 counts;
  MemRef0 sum;
} StatsResults;

/* y = 2 x; counts[e] = T + e for 4 experts, with stride 2 and offset 1 to
 * exercise the strided copy; sum = the sum of x. */
void _mlir_ciface_with_stats(StatsResults *results, MemRef2 *x) {
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  newResult(&results->y, tokens, hidden);
  float sum = 0.0f;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < hidden; ++i) {
      setResult(&results->y, t, i, 2.0f * at2(x, t, i));
      sum += at2(x, t, i);
    }
  int64_t *counts = malloc(9 * sizeof(int64_t));
  for (int64_t e = 0; e < 4; ++e)
    counts[1 + 2 * e] = tokens + e;
  results->counts.allocated = counts;
  results->counts.aligned = counts;
  results->counts.offset = 1;
  results->counts.sizes[0] = 4;
  results->counts.strides[0] = 2;
  float *total = malloc(sizeof(float));
  *total = sum;
  results->sum.allocated = total;
  results->sum.aligned = total;
  results->sum.offset = 0;
}

/* Two arguments bound to the same stacked tensors: y = x when the runtime
 * passed the same buffer twice (the stack was gathered once), NaN if not. */
void _mlir_ciface_shared_twice(MemRef2 *result, MemRef2 *x,
                               MemRef3BF16 *first, MemRef2 *w,
                               MemRef3BF16 *second) {
  (void)w;
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  newResult(result, tokens, hidden);
  int same = first->aligned == second->aligned &&
             bf16At(first, 3, 7, 7) == bf16At(second, 3, 7, 7);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < hidden; ++h)
      setResult(result, t, h, same ? at2(x, t, h) : (float)NAN);
}
