"""Checks moe-run's output of a fake module entry against numpy.

usage: check_module_output.py ENTRY X.npy Y.npy [THREADS]

ENTRY is an entry of make_module.py's "good" manifest run on X.npy with the
"module-ckpt" weights of make_inputs.py; THREADS is the --threads value
(it only matters for chunk_parallel). Y.npy must be a float32 array of the
expected shape whose values match to float32 rounding, NaN where expected.
"""

import sys

import numpy as np

import make_inputs


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def chunk_sizes(tokens: int, threads: int) -> np.ndarray:
    """The tokens seen by each call when `tokens` are split over threads."""
    n = max(1, min(threads, tokens))
    sizes = np.zeros(tokens, np.float32)
    for s in range(n):
        begin, end = tokens * s // n, tokens * (s + 1) // n
        sizes[begin:end] = end - begin
    return sizes


def expected(entry: str, x: np.ndarray, threads: int) -> np.ndarray:
    w, expert_bits = make_inputs.module_weights()
    x64 = x.astype(np.float64)
    if entry in ("forward", "forward_serial", "strided"):
        return x64 @ w.astype(np.float64).T
    if entry == "stacked":
        experts = bf16_to_f32(expert_bits).astype(np.float64)
        return sum((e + 1) * (x64 @ experts[e].T)
                   for e in range(len(experts)))
    if entry == "alias":
        return x64
    if entry == "chunk":
        return x64 + len(x)
    if entry == "chunk_parallel":
        return x64 + chunk_sizes(len(x), threads)[:, None]
    if entry == "global":
        return np.full_like(x64, 1.5)
    sys.exit("no reference for entry " + entry)


def main() -> None:
    entry, x_path, y_path = sys.argv[1:4]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    x = np.load(x_path)
    y = np.load(y_path)
    want = expected(entry, x, threads)
    if y.dtype != np.dtype("<f4") or y.shape != want.shape:
        sys.exit(f"{y_path}: {y.dtype} {y.shape}, expected float32 "
                 f"{want.shape}")
    if not np.array_equal(np.isnan(y), np.isnan(want)):
        sys.exit(f"{y_path}: NaNs at {np.argwhere(np.isnan(y)).tolist()}, "
                 f"expected at {np.argwhere(np.isnan(want)).tolist()}")
    if not np.allclose(y, want, rtol=1e-5, atol=1e-5, equal_nan=True):
        worst = np.nanmax(np.abs(y - want))
        sys.exit(f"{y_path}: values differ from numpy (max error {worst})")
    print(f"{entry}: {y.shape[0]}x{y.shape[1]} values match")


if __name__ == "__main__":
    main()
