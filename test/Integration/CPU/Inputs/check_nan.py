"""Checks NaN propagation of a compiled layer run by moe-run.

  check_nan.py DIR   (DIR from run_family.py generate)

Token 3 of 7 gets a NaN feature: its output row must be all NaN and every
other row must still match the reference (tokens are independent).
"""

import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                *[os.pardir] * 4, "python"))
from moe_mlir import family_cases  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--module", required=True)
    args = parser.parse_args()
    x = np.load(os.path.join(args.out, "x_7.npy"))
    x[3, 5] = np.nan
    x_path = os.path.join(args.out, "x_nan.npy")
    y_path = os.path.join(args.out, "y_nan.npy")
    np.save(x_path, x)
    subprocess.run(["moe-run", args.module, "--weights",
                    os.path.join(args.out, "ckpt"), "--input", x_path,
                    "--output", y_path], check=True)
    y = np.load(y_path)
    if not np.isnan(y[3]).all():
        print(f"FAIL: row 3 is not all NaN: {y[3]}")
        return 1
    case = family_cases.load_case(os.path.join(args.out, "ckpt"), "f32", layer=1)
    clean = np.delete(np.arange(7), 3)
    ref = case.reference(x[clean])
    error, scale = family_cases.max_error(y[clean], ref)
    if not error <= family_cases.tolerance("f32") * scale:
        print(f"FAIL: other rows differ from the reference by {error}")
        return 1
    print(f"PASS: NaN row propagated, other rows within {error:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
