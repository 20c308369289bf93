#!/usr/bin/env python3
"""Writes every ```mlir block of the given Markdown files to one MLIR file,
separated by `// -----` so that `moe-opt -split-input-file` parses each one
on its own. Used by test/Dialect/MoE/doc-examples.test to check that the
examples in the ODS descriptions (and hand-written docs) stay valid."""

import argparse
import re
import sys

BLOCK = re.compile(r"^```mlir\n(.*?)^```", re.MULTILINE | re.DOTALL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("markdown", nargs="+", help="Markdown files to scan")
    parser.add_argument("--min-blocks", type=int, default=1,
                        help="fail when fewer blocks are found")
    args = parser.parse_args()
    blocks = []
    for path in args.markdown:
        with open(path, encoding="utf-8") as f:
            blocks += [m.group(1) for m in BLOCK.finditer(f.read())]
    if len(blocks) < args.min_blocks:
        print(f"error: found {len(blocks)} mlir blocks, expected at least "
              f"{args.min_blocks}", file=sys.stderr)
        return 1
    sys.stdout.write("\n// -----\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
