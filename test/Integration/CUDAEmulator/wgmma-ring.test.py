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
# rounding. Consumers in turns: the one-warpgroup tiles' wgmma groups, in
# the same order, on the same grid.
for form, same in (("sync-rounded", "sync"), ("rounded", "narrow"),
                   ("specialized-rounded", "specialized"),
                   ("pingpong", "persistent"),
                   ("pingpong-wide", "persistent-wide")):
    for tokens in (1, 7, 300):
        y = np.load(f"{out}/y-{form}-{tokens}.npy")
        equal = np.array_equal(y, np.load(f"{out}/y-{same}-{tokens}.npy"))
        print(f"{form} T={tokens} {'ok' if equal else 'FAILED'}: "
              f"bitwise equal to {same}")
