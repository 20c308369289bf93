"""Compares tensor-core-router.test's layers, their logits on the tensor
cores, with the same layers' logits on the CUDA cores."""
import sys

import numpy as np

out = sys.argv[1]
cases = [(family, form, tokens)
         for family in ("deepseek_v3", "qwen3_moe")
         for form, tokens in (("terms", 1), ("terms", 7), ("terms", 300),
                              ("default", 600))]
cases.append(("qwen3_moe", "sync", 300))
for family, form, tokens in cases:
    cores = np.load(f"{out}/y-{family}-cores-{tokens}.npy")
    y = np.load(f"{out}/y-{family}-{form}-{tokens}.npy")
    error = float(np.abs(y - cores).max())
    bound = 1e-5 * float(np.abs(cores).max())
    # mma.sync's tiles sum the experts' products in another order than
    # wgmma's (the CUDA-core layer's tiles are wgmma).
    if form == "sync":
        bound = 1e-4 * float(np.abs(cores).max())
    verdict = "ok" if y.shape == cores.shape and error <= bound else "FAILED"
    print(f"{family} {form} T={tokens} {verdict}: max|y - cores| = "
          f"{error:.3e}, bound {bound:.3e}")
