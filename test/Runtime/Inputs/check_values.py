"""Compares the values printed by moe-checkpoint-inspect with the expected ones.

usage: check_values.py tensor NAME < DUMP   (after --dump NAME on "good")
       check_values.py npy CASE < DUMP      (after --npy-dump on CASE)

The dump is a title line and one value per line; values must equal the
expected float32 values exactly (they are exactly representable), NaNs
matching NaNs and zeros matching in sign.
"""

import sys

import numpy as np

import make_inputs

NPY_EXPECTED = {
    "npy-f4": lambda: make_inputs.npy_input(),
    "npy-f2": lambda: np.array([1.0, 6.1e-5, 6e-8, np.inf],
                               dtype=np.float16).astype(np.float32),
    "npy-f8": lambda: np.array([[0.5], [1e-3]]).astype(np.float32),
    "npy-v2": lambda: make_inputs.npy_input()[:2, :2],
    "npy-0d": lambda: np.float32(7.25),
    "npy-empty": lambda: np.zeros((0, 5), np.float32),
}


def main() -> None:
    kind, name = sys.argv[1], sys.argv[2]
    if kind == "tensor":
        expected = make_inputs.good_tensors()[name][1]
    else:
        expected = NPY_EXPECTED[name]()
    expected = np.asarray(expected, dtype=np.float32).reshape(-1)
    lines = sys.stdin.read().splitlines()
    got = np.array([float(v) for v in lines[1:]], dtype=np.float32)
    if got.shape != expected.shape:
        sys.exit(f"{name}: {got.size} values, expected {expected.size}")
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    same &= (np.signbit(got) == np.signbit(expected)) | np.isnan(expected)
    if not same.all():
        bad = np.nonzero(~same)[0]
        sys.exit(f"{name}: values differ at {bad.tolist()}: got "
                 f"{got[bad].tolist()}, expected {expected[bad].tolist()}")
    print(f"{name}: {got.size} values match")


if __name__ == "__main__":
    main()
