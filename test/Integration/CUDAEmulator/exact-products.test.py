"""exact-products.test's inputs and check.

prepare DIR: the weight (DIR/ckpt, `router.weight` [32, 64] bf16 with one
nonzero weight per row, w[n, n]) and the token rows DIR/x<T>.npy for
T = 1, 7, 70, holding values whose lowest bits lie in the second or third
bf16 term, signed zeros and f32's largest among finite values of full
24-bit significands. (An infinite or NaN row element would make every
logit of its row NaN, through its zero weights: no term is seen then.)
check DIR FORM...: the logits DIR/y-<FORM>-<T>.npy equal the f32 rounding of the
exact products (float64: every f32 x bf16 product is exact there), an
infinity where a product overflows, up to the sign of zero."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                *[os.pardir] * 3, "python"))
from moe_mlir.safetensors_io import save_file  # noqa: E402

TOKENS = (0, 1, 7, 70, 200)
HIDDEN, EXPERTS = 64, 32
EDGES = np.array([2.0**24 - 1, 1 + 2.0**-23, -(1 + 2.0**-8 + 2.0**-23),
                  1 + 2.0**-16, 3 * 2.0**-100 * (1 + 2.0**-23),
                  np.finfo(np.float32).max, -np.finfo(np.float32).max,
                  -0.0, 0.0,
                  2.0**100 * (1 - 2.0**-24)], dtype=np.float32)
# bf16 values: each weight's product keeps all 24 bits of its row value
# (or overflows, by 2 and -1.5 at f32's largest).
SCALES = np.array([1, -1, 2, 0.5, 1.5, -3, 0.375, 2.0**-10, 2.0**10, -1.25,
                   7, -0.75], dtype=np.float32)


def weight():
    w = np.zeros((EXPERTS, HIDDEN), dtype=np.float32)
    for n in range(EXPERTS):
        w[n, n] = SCALES[n % len(SCALES)]
    return w


def rows(tokens):
    rng = np.random.default_rng(tokens)
    # Full 24-bit significands over a wide range of exponents.
    x = (rng.standard_normal((tokens, HIDDEN)) *
         2.0 ** rng.integers(-20, 21, (tokens, HIDDEN))).astype(np.float32)
    for t in range(tokens):
        for k in range(EXPERTS):
            if (t + k) % 3 == 0:
                x[t, k] = EDGES[(t + k // 3) % len(EDGES)]
    return x


def prepare(out):
    os.makedirs(os.path.join(out, "ckpt"), exist_ok=True)
    save_file(os.path.join(out, "ckpt", "model.safetensors"),
              {"router.weight": weight()}, dtypes="BF16")
    for tokens in TOKENS:
        np.save(os.path.join(out, f"x{tokens}.npy"), rows(tokens))


def check(out, *forms):
    w = weight().astype(np.float64)
    for form in forms:
        for tokens in TOKENS:
            x = np.load(os.path.join(out, f"x{tokens}.npy")).astype(np.float64)
            with np.errstate(over="ignore"):
                ref = (x[:, None, :] * w[None, :, :]).sum(axis=2)
                ref = ref.astype(np.float32)
            y = np.load(os.path.join(out, f"y-{form}-{tokens}.npy"))
            same = y.shape == ref.shape and np.array_equal(y, ref,
                                                           equal_nan=True)
            wrong = 0 if same else int(np.sum(~((y == ref) | (
                np.isnan(y) & np.isnan(ref)))))
            print(f"{form} T={tokens} {'ok' if same else 'FAILED'}: "
                  f"{wrong} logits differ")


if __name__ == "__main__":
    {"prepare": prepare, "check": check}[sys.argv[1]](*sys.argv[2:])
