"""Checks that OUT is a '<f4' C-order .npy holding the values of IN as float32.

usage: compare_npy.py IN OUT
"""

import sys

import numpy as np


def main() -> None:
    expected = np.load(sys.argv[1]).astype(np.float32)
    with open(sys.argv[2], "rb") as f:
        version = f.read(8)[6:]
    got = np.load(sys.argv[2])
    if got.dtype != np.dtype("<f4") or got.shape != expected.shape:
        sys.exit(f"{sys.argv[2]}: {got.dtype} {got.shape}, expected float32 "
                 f"{expected.shape}")
    if not np.array_equal(got, expected, equal_nan=True):
        sys.exit(f"{sys.argv[2]}: values differ from {sys.argv[1]}")
    print(f"{sys.argv[2]}: version {version[0]}.{version[1]}, "
          f"{got.size} values match")


if __name__ == "__main__":
    main()
