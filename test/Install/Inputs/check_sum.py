"""Checks run-layer's line against the fake module's forward (y = x @ w^T)
on T tokens of ones: the sum of y is T times the sum of w."""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "Runtime", "Inputs"))
import make_inputs  # noqa: E402

line = open(sys.argv[1]).read().strip()
tokens = int(sys.argv[2])
match = re.fullmatch(r"MoE-MLIR (\S+): \[(\d+), (\d+)\] sum (\S+)", line)
assert match, line
w, _ = make_inputs.module_weights()
expected = tokens * float(w.astype("float64").sum())
assert int(match.group(2)) == tokens, line
assert abs(float(match.group(4)) - expected) < 1e-3 * max(1, abs(expected)), \
    (line, expected)
print("ok", match.group(1))
