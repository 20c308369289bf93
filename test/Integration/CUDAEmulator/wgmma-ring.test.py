"""Compares the wgmma forms of wgmma-ring.test with mma.sync's output."""
import sys

import numpy as np

out = sys.argv[1]
for form in ("narrow", "wide", "persistent", "specialized",
             "specialized-persistent", "specialized-64", "pingpong",
             "pingpong-wide"):
    for tokens in (1, 7, 300):
        sync = np.load(f"{out}/y-sync-{tokens}.npy")
        y = np.load(f"{out}/y-{form}-{tokens}.npy")
        error = float(np.abs(y - sync).max())
        bound = 1e-4 * float(np.abs(sync).max())
        verdict = "ok" if y.shape == sync.shape and error <= bound else "FAILED"
        print(f"{form} T={tokens} {verdict}: max|y - sync| = {error:.3e}, "
              f"bound {bound:.3e}")
# Token rows rounded before the tiles: the same bits as the tiles' own
# rounding.
for form, unrounded in (("sync-rounded", "sync"), ("rounded", "narrow"),
                        ("specialized-rounded", "specialized")):
    for tokens in (1, 7, 300):
        y = np.load(f"{out}/y-{form}-{tokens}.npy")
        same = np.array_equal(y, np.load(f"{out}/y-{unrounded}-{tokens}.npy"))
        print(f"{form} T={tokens} {'ok' if same else 'FAILED'}: "
              f"bitwise equal to {unrounded}")
# Consumers in turns: the one-warpgroup tiles' wgmma groups, in the same
# order, on the same grid.
for form, same_grid in (("pingpong", "persistent"),
                        ("pingpong-wide", "persistent-wide")):
    for tokens in (1, 7, 300):
        y = np.load(f"{out}/y-{form}-{tokens}.npy")
        same = np.array_equal(y, np.load(f"{out}/y-{same_grid}-{tokens}.npy"))
        print(f"{form} T={tokens} {'ok' if same else 'FAILED'}: "
              f"bitwise equal to {same_grid}")
