"""Reads `llvm-objdump -d` from stdin and checks which functions hold BF16
instructions (vdpbf16ps, vcvtneps2bf16, vcvtne2ps2bf16, AMX tile ops):
every one must be named with SUFFIX (the kernel variant that requires the
unit). Prints how many functions use them, or exits 1 naming the first
that should not."""

import re
import sys

BF16 = re.compile(r"\s(vdpbf16ps|vcvtneps2bf16|vcvtne2ps2bf16|tdpbf16ps|"
                  r"tileloadd|tileloaddt1|tilestored|ldtilecfg)\s")
FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")


def main() -> int:
    suffix = sys.argv[1]
    current, users = None, set()
    for line in sys.stdin:
        header = FUNCTION.match(line.strip())
        if header:
            current = header.group(1)
        elif current and BF16.search(line):
            users.add(current)
    stray = sorted(name for name in users if not name.endswith(suffix)
                   and suffix + "." not in name)
    if stray:
        print(f"{stray[0]} holds BF16 instructions but is not of the "
              f"'{suffix}' variant")
        return 1
    print(f"{len(users)} functions hold BF16 instructions, all of {suffix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
