"""Runs a command that must end within a time limit.

usage: bounded.py SECONDS COMMAND...

Prints the command's output (stderr, then stdout), then `exit status N
after S s` when it ended within SECONDS, or `still running after SECONDS s`
(its process group killed) when it did not; exits 0 either way, for
FileCheck to judge. The expert-parallel failure tests use it to show that
a failed rank ends the job, never hangs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def main() -> int:
    limit = float(sys.argv[1])
    start = time.monotonic()
    process = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        sys.stdout.write(err + out)
        print(f"still running after {limit:g} s")
        return 0
    sys.stdout.write(err + out)
    print(f"exit status {process.returncode} after "
          f"{time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
