/*===- peak_probe.c - This machine's compute and memory limits -----------===*
 *
 * Measures, on 1 and on all threads, what the MoE kernels are judged
 * against (bench/README.md):
 *   - f32 FMA peak: independent AVX-512 (else AVX2) FMA chains;
 *   - bf16 dot peak: AVX512_BF16 vdpbf16ps chains, where the CPU has it;
 *   - AMX bf16 peak: tdpbf16ps on three tiles, where the CPU has AMX (the
 *     kernel's permission is asked for first);
 *   - DRAM read bandwidth: every thread sums its part of a 1 GiB buffer.
 * Prints one JSON object. Each figure is the best of several repetitions.
 * Built by bench/cpu.py with clang -O2 -march=native -pthread.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef double (*Kernel)(long iterations, int thread, int threads);

/* FLOPs (or bytes) a kernel reports; runs it on `threads` threads. */
struct Job {
  Kernel kernel;
  long iterations;
  int thread, threads;
  double work;
};

static void *runJob(void *arg) {
  struct Job *job = arg;
  job->work = job->kernel(job->iterations, job->thread, job->threads);
  return NULL;
}

/* The best rate (work per second) of `repeats` runs on `threads` threads. */
static double measure(Kernel kernel, long iterations, int threads,
                      int repeats) {
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    pthread_t ids[64];
    struct Job jobs[64];
    double start = now();
    for (int t = 0; t < threads; ++t) {
      jobs[t] = (struct Job){kernel, iterations, t, threads, 0};
      pthread_create(&ids[t], NULL, runJob, &jobs[t]);
    }
    double work = 0;
    for (int t = 0; t < threads; ++t) {
      pthread_join(ids[t], NULL);
      work += jobs[t].work;
    }
    double rate = work / (now() - start);
    if (rate > best)
      best = rate;
  }
  return best;
}

static volatile float sink;

#if defined(__AVX512F__)
#define CHAINS 16
static double fmaF32(long iterations, int thread, int threads) {
  (void)thread, (void)threads;
  __m512 acc[CHAINS];
  __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
  for (int i = 0; i < CHAINS; ++i)
    acc[i] = _mm512_set1_ps((float)i);
  for (long n = 0; n < iterations; ++n)
    for (int i = 0; i < CHAINS; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < CHAINS; ++i)
    sum = _mm512_add_ps(sum, acc[i]);
  sink = _mm512_reduce_add_ps(sum);
  return 2.0 * 16 * CHAINS * (double)iterations;
}
#elif defined(__AVX2__) && defined(__FMA__)
#define CHAINS 12
static double fmaF32(long iterations, int thread, int threads) {
  (void)thread, (void)threads;
  __m256 acc[CHAINS];
  __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
  for (int i = 0; i < CHAINS; ++i)
    acc[i] = _mm256_set1_ps((float)i);
  for (long n = 0; n < iterations; ++n)
    for (int i = 0; i < CHAINS; ++i)
      acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float out[8];
  __m256 sum = acc[0];
  for (int i = 1; i < CHAINS; ++i)
    sum = _mm256_add_ps(sum, acc[i]);
  _mm256_storeu_ps(out, sum);
  sink = out[0];
  return 2.0 * 8 * CHAINS * (double)iterations;
}
#else
#error "the peak probe needs AVX2 and FMA at least"
#endif

#if defined(__AVX512BF16__)
static double dotBF16(long iterations, int thread, int threads) {
  (void)thread, (void)threads;
  __m512 acc[CHAINS];
  __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80);
  __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f7f);
  for (int i = 0; i < CHAINS; ++i)
    acc[i] = _mm512_setzero_ps();
  for (long n = 0; n < iterations; ++n)
    for (int i = 0; i < CHAINS; ++i)
      acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < CHAINS; ++i)
    sum = _mm512_add_ps(sum, acc[i]);
  sink = _mm512_reduce_add_ps(sum);
  /* 16 lanes x 2 products, each a multiply and an add. */
  return 2.0 * 32 * CHAINS * (double)iterations;
}
#endif

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
struct TileConfig {
  uint8_t palette, startRow, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static double amxBF16(long iterations, int thread, int threads) {
  (void)thread, (void)threads;
  struct TileConfig config;
  memset(&config, 0, sizeof(config));
  config.palette = 1;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = 16;
    config.colsb[t] = 64;
  }
  _tile_loadconfig(&config);
  static uint16_t data[16 * 32] __attribute__((aligned(64)));
  _tile_loadd(4, data, 64);
  _tile_loadd(5, data, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (long n = 0; n < iterations; ++n) {
    _tile_dpbf16ps(0, 4, 5);
    _tile_dpbf16ps(1, 4, 5);
    _tile_dpbf16ps(2, 4, 5);
    _tile_dpbf16ps(3, 4, 5);
  }
  static float out[16 * 16] __attribute__((aligned(64)));
  _tile_stored(0, out, 64);
  _tile_release();
  sink = out[0];
  /* 16 x 16 outputs, 32 products each, 4 tiles per iteration. */
  return 2.0 * 16 * 16 * 32 * 4 * (double)iterations;
}
#endif

static float *buffer;
static size_t bufferFloats;

static double readBandwidth(long iterations, int thread, int threads) {
  size_t part = bufferFloats / (size_t)threads;
  const float *p = buffer + part * (size_t)thread;
  double bytes = 0;
#if defined(__AVX512F__)
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (long n = 0; n < iterations; ++n) {
    for (size_t i = 0; i + 64 <= part; i += 64) {
      s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
      s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
      s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
      s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
    }
    bytes += (double)(part / 64 * 64) * sizeof(float);
  }
  sink = _mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#else
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (long n = 0; n < iterations; ++n) {
    for (size_t i = 0; i + 32 <= part; i += 32) {
      s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
      s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
      s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
      s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
    }
    bytes += (double)(part / 32 * 32) * sizeof(float);
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1),
                                      _mm256_add_ps(s2, s3)));
  sink = out[0];
#endif
  return bytes;
}

int main(void) {
  int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads < 1)
    threads = 1;
  if (threads > 64)
    threads = 64;
  printf("{\"threads\": %d", threads);
  printf(", \"isa\": \"%s\"",
#if defined(__AVX512F__)
         "avx512"
#else
         "avx2"
#endif
  );
  for (int t = 1; t <= threads; t = t == threads ? threads + 1 : threads) {
    printf(", \"f32_fma_gflops_%dt\": %.1f", t,
           measure(fmaF32, 20000000, t, 5) / 1e9);
#if defined(__AVX512BF16__)
    printf(", \"bf16_dot_gflops_%dt\": %.1f", t,
           measure(dotBF16, 20000000, t, 5) / 1e9);
#endif
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) ==
        0)
      printf(", \"amx_bf16_gflops_%dt\": %.1f", t,
             measure(amxBF16, 2000000, t, 5) / 1e9);
#endif
  }
  bufferFloats = (size_t)1 << 28; /* 1 GiB */
  if (posix_memalign((void **)&buffer, 64, bufferFloats * sizeof(float)) ==
      0) {
    for (size_t i = 0; i < bufferFloats; ++i)
      buffer[i] = 1.0f;
    printf(", \"dram_read_gbps_%dt\": %.1f", threads,
           measure(readBandwidth, 3, threads, 3) / 1e9);
    free(buffer);
  }
  printf("}\n");
  return 0;
}
