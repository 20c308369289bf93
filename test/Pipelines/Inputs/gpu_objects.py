"""Writes the GPU objects of a lowered module (gpu.binary ops) to files.

usage: gpu_objects.py MODULE.mlir OUTDIR [--ptxas PTXAS --arch sm_NN]

Each #gpu.object's payload (PTX text with format=isa, a cubin with
format=bin, a fatbinary with format=fatbin) is written to
OUTDIR/<binary name>.<ext>. With --ptxas, every PTX object is assembled
for --arch; the script prints one line per object and fails on the first
object ptxas rejects.
"""

import argparse
import os
import re
import subprocess
import sys

OBJECT = re.compile(
    r'gpu\.binary @(\w+)\s*\[#gpu\.object<#nvvm\.target<[^>]*>'
    r'(?:, properties = \{[^}]*\})?, (?:assembly = )?"((?:[^"\\]|\\.)*)">')


def unescape(text: str) -> bytes:
    """MLIR's string escapes (\\XX hex, \\\\) to bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] != "\\":
            out += text[i].encode("latin-1")
            i += 1
        elif text[i + 1] == "\\":
            out.append(0x5C)
            i += 2
        else:
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
    return bytes(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("outdir")
    parser.add_argument("--ptxas")
    parser.add_argument("--arch", default="sm_90")
    args = parser.parse_args()
    with open(args.module, encoding="utf-8") as f:
        text = f.read()
    objects = OBJECT.findall(text)
    if not objects:
        print("no gpu.binary object", file=sys.stderr)
        return 1
    os.makedirs(args.outdir, exist_ok=True)
    for name, payload in objects:
        data = unescape(payload)
        is_ptx = data.lstrip().startswith(b"//") or b".version" in data[:512]
        path = os.path.join(args.outdir, name + (".ptx" if is_ptx else ".bin"))
        with open(path, "wb") as f:
            f.write(data)
        if not args.ptxas or not is_ptx:
            print(f"{name}: {'ptx' if is_ptx else 'binary'}, {len(data)} bytes")
            continue
        result = subprocess.run(
            [args.ptxas, f"-arch={args.arch}", path, "-o", os.devnull],
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(f"{name}: ptxas failed:\n{result.stderr}", file=sys.stderr)
            return 1
        print(f"{name}: ptx accepted by ptxas -arch={args.arch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
