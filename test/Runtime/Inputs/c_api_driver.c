/* Drives the C API (moe_runtime.h) in c-api.test.
 *
 * usage: c_api_driver MODULE.so CHECKPOINT
 *
 * MODULE.so is the fake module of make_module.py "good" and CHECKPOINT the
 * "module-ckpt" weights. Prints one line per step; a failed expectation
 * prints "FAILED: ..." and exits with 1.
 */

#include "moe/Runtime/moe_runtime.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T 5
#define H 8

static int failures = 0;

static void expect(int ok, const char *what) {
  if (!ok) {
    printf("FAILED: %s\n", what);
    ++failures;
  }
}

static float x[T * H];
static float reference[T * H];

typedef struct {
  const moe_entry *entry;
  float y[T * H];
  int status;
  int same;
  char error[256];
} Job;

/* Runs `entry` on x with 2 threads from a thread of its own, then makes a
 * failing call whose error must stay on this thread. */
static void *runJob(void *arg) {
  Job *job = (Job *)arg;
  for (int i = 0; i < 50; ++i) {
    job->status |= moe_entry_run_f32(job->entry, x, T, H, job->y, 2);
    job->same = memcmp(job->y, reference, sizeof(reference)) == 0;
  }
  moe_entry_run_f32(job->entry, x, T, 3, job->y, 1);
  snprintf(job->error, sizeof(job->error), "%s", moe_last_error());
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: c_api_driver MODULE.so CHECKPOINT\n");
    return 2;
  }
  for (int i = 0; i < T * H; ++i)
    x[i] = (float)(i % 7) * 0.25f - 0.5f;

  printf("initial error: '%s'\n", moe_last_error());
  expect(moe_module_load("/nonexistent/layer.so") == NULL, "load fails");
  printf("load error: %s\n", moe_last_error());
  expect(moe_module_load(NULL) == NULL, "load(NULL) fails");
  printf("load(NULL) error: %s\n", moe_last_error());
  expect(moe_checkpoint_open("/nonexistent.safetensors") == NULL,
         "open fails");
  printf("open error: %s\n", moe_last_error());

  moe_module *module = moe_module_load(argv[1]);
  moe_checkpoint *checkpoint = moe_checkpoint_open(argv[2]);
  expect(module && checkpoint, "load and open succeed");
  if (!module || !checkpoint) {
    printf("error: %s\n", moe_last_error());
    return 1;
  }
  int64_t numEntries = moe_module_num_entries(module);
  printf("entries: %lld\n", (long long)numEntries);
  for (int64_t i = 0; i < numEntries; ++i)
    printf("entry %lld: %s\n", (long long)i, moe_module_entry_name(module, i));
  expect(moe_module_entry_name(module, numEntries) == NULL,
         "name out of range");
  printf("name error: %s\n", moe_last_error());

  expect(moe_entry_bind(module, "nope", checkpoint) == NULL, "bind fails");
  printf("bind error: %s\n", moe_last_error());

  moe_entry *forward = moe_entry_bind(module, "forward", checkpoint);
  moe_entry *serial = moe_entry_bind(module, "forward_serial", checkpoint);
  moe_entry *alias = moe_entry_bind(module, "alias", checkpoint);
  moe_entry *two = moe_entry_bind(module, "two_inputs", checkpoint);
  moe_entry *stats = moe_entry_bind(module, "with_stats", checkpoint);
  expect(forward && serial && alias && two && stats, "bind succeeds");
  if (!forward || !serial || !alias || !two) {
    printf("error: %s\n", moe_last_error());
    return 1;
  }
  /* The entries keep the module and the checkpoint alive. */
  moe_module_free(module);
  moe_checkpoint_free(checkpoint);
  moe_module_free(NULL);
  moe_checkpoint_free(NULL);
  moe_entry_free(NULL);

  printf("forward: hidden %lld, output %lld, token parallel %d\n",
         (long long)moe_entry_hidden_size(forward),
         (long long)moe_entry_output_size(forward),
         moe_entry_token_parallel(forward));
  printf("forward_serial: token parallel %d\n",
         moe_entry_token_parallel(serial));

  float y[T * H];
  expect(moe_entry_run_f32(alias, x, T, H, y, 1) == 0, "alias runs");
  expect(memcmp(x, y, sizeof(y)) == 0, "alias returns x");

  expect(moe_entry_run_f32(forward, x, T, H, reference, 1) == 0,
         "forward runs");
  for (int threads = 0; threads <= 8; ++threads) {
    memset(y, 0, sizeof(y));
    expect(moe_entry_run_f32(forward, x, T, H, y, threads) == 0,
           "forward runs threaded");
    expect(memcmp(y, reference, sizeof(y)) == 0, "threads do not matter");
  }
  expect(moe_entry_run_f32(serial, x, T, H, y, 4) == 0, "serial runs");
  expect(memcmp(y, reference, sizeof(y)) == 0, "serial matches");
  int finite = 1;
  for (int i = 0; i < T * H; ++i)
    finite &= isfinite(reference[i]) != 0;
  expect(finite, "finite results");

  /* Zero tokens: no buffers needed. */
  expect(moe_entry_run_f32(forward, NULL, 0, H, NULL, 4) == 0, "T = 0 runs");

  expect(moe_entry_run_f32(forward, x, T, 5, y, 1) == -1, "wrong hidden");
  printf("hidden error: %s\n", moe_last_error());
  expect(moe_entry_run_f32(forward, x, -1, H, y, 1) == -1, "negative tokens");
  printf("tokens error: %s\n", moe_last_error());
  expect(moe_entry_run_f32(forward, NULL, T, H, y, 1) == -1, "null input");
  printf("null error: %s\n", moe_last_error());
  expect(moe_entry_run_f32(two, x, T, H, y, 1) == -1, "two inputs");
  printf("arity error: %s\n", moe_last_error());
  expect(moe_entry_run_f32(NULL, x, T, H, y, 1) == -1, "null entry");
  printf("entry error: %s\n", moe_last_error());
  expect(moe_entry_hidden_size(NULL) == -1, "null entry size");

  /* Several inputs and results. */
  printf("two_inputs: %lld inputs of %lld and %lld, %lld result\n",
         (long long)moe_entry_num_inputs(two),
         (long long)moe_entry_input_size(two, 0),
         (long long)moe_entry_input_size(two, 1),
         (long long)moe_entry_num_results(two));
  for (int64_t r = 0; r < moe_entry_num_results(stats); ++r) {
    printf("with_stats result %lld: %s [", (long long)r,
           moe_entry_result_dtype(stats, r));
    for (int64_t d = 0; d < moe_entry_result_rank(stats, r); ++d)
      printf("%s%lld", d ? ", " : "", (long long)moe_entry_result_dim(stats, r, d));
    printf("]\n");
  }
  const float *pair[2] = {x, x};
  void *twoOut[1] = {y};
  expect(moe_entry_run(two, pair, 2, T, twoOut, 1, 2) == 0, "two inputs run");
  int sums = 1;
  for (int i = 0; i < T * H; ++i)
    sums &= y[i] == x[i] + reference[i];
  expect(sums, "two_inputs = x + forward(x)");
  float doubled[T * H];
  int64_t counts[4];
  float total = 0.0f;
  void *statsOut[3] = {doubled, counts, &total};
  expect(moe_entry_run(stats, pair, 1, T, statsOut, 3, 4) == 0,
         "with_stats runs");
  float expectedTotal = 0.0f;
  int same = 1;
  for (int i = 0; i < T * H; ++i) {
    same &= doubled[i] == 2.0f * x[i];
    expectedTotal += x[i];
  }
  expect(same && total == expectedTotal, "with_stats results");
  printf("with_stats counts: %lld %lld %lld %lld\n", (long long)counts[0],
         (long long)counts[1], (long long)counts[2], (long long)counts[3]);
  expect(moe_entry_run(stats, pair, 1, 0, statsOut, 3, 1) == 0,
         "with_stats runs on 0 tokens");
  printf("with_stats counts at T = 0: %lld %lld %lld %lld, sum %g\n",
         (long long)counts[0], (long long)counts[1], (long long)counts[2],
         (long long)counts[3], (double)total);
  expect(moe_entry_run(two, pair, 1, T, twoOut, 1, 1) == -1, "one input");
  printf("inputs error: %s\n", moe_last_error());
  expect(moe_entry_run(stats, pair, 1, T, statsOut, 1, 1) == -1,
         "one output");
  printf("outputs error: %s\n", moe_last_error());
  expect(moe_entry_run(stats, NULL, 1, T, statsOut, 3, 1) == -1,
         "no input array");
  printf("array error: %s\n", moe_last_error());
  expect(moe_entry_result_dim(stats, 3, 0) == -2, "result out of range");
  printf("result index error: %s\n", moe_last_error());
  expect(moe_entry_result_dim(stats, 1, 1) == -2, "dim out of range");
  printf("dim index error: %s\n", moe_last_error());
  expect(moe_entry_input_size(two, 2) == -1, "input out of range");
  printf("input index error: %s\n", moe_last_error());
  expect(moe_entry_result_dtype(NULL, 0) == NULL, "null entry dtype");
  printf("dtype error: %s\n", moe_last_error());

  /* One entry run from two threads at once; errors are per thread. */
  Job jobs[2];
  pthread_t threads[2];
  for (int i = 0; i < 2; ++i) {
    memset(&jobs[i], 0, sizeof(jobs[i]));
    jobs[i].entry = forward;
    expect(pthread_create(&threads[i], NULL, runJob, &jobs[i]) == 0,
           "thread starts");
  }
  for (int i = 0; i < 2; ++i) {
    pthread_join(threads[i], NULL);
    expect(jobs[i].status == 0 && jobs[i].same, "concurrent runs match");
    printf("thread %d error: %s\n", i, jobs[i].error);
  }
  printf("main thread error: %s\n", moe_last_error());

  moe_entry_free(forward);
  moe_entry_free(serial);
  moe_entry_free(alias);
  moe_entry_free(two);
  moe_entry_free(stats);
  printf("%s\n", failures ? "FAILED" : "done");
  return failures != 0;
}
