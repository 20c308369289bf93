"""compare.py DIR T...: DIR/gpuT.npy against DIR/cpuT.npy for each T, within
2e-2 x max|cpu| (bf16's rounding of the tiles' inputs); one line each."""
import sys

import numpy as np

out = sys.argv[1]
for tokens in map(int, sys.argv[2:]):
    cpu = np.load(f"{out}/cpu{tokens}.npy")
    gpu = np.load(f"{out}/gpu{tokens}.npy")
    ok = gpu.shape == cpu.shape == (tokens, cpu.shape[1])
    if ok and tokens:
        ok = np.abs(gpu - cpu).max() <= 2e-2 * np.abs(cpu).max()
    print(tokens, "ok" if ok else "FAILED")
