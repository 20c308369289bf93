"""Writes the GPU objects of a lowered module (gpu.binary ops) to files.

usage: gpu_objects.py MODULE.mlir OUTDIR [--ptxas PTXAS --arch sm_NN]
                      [--resources]

Each #gpu.object's payload (PTX text with format=isa, a cubin with
format=bin, a fatbinary with format=fatbin) is written to
OUTDIR/<binary name>.<ext>. With --ptxas, every PTX object is assembled
for --arch; the script prints one line per object and fails on the first
object ptxas rejects. With --resources it also prints, per kernel, what
the CPU machine can check of its structure: its wgmma and TMA
instructions and mbarrier waits in the PTX, and ptxas -v's registers,
spills and shared memory, and any ptxas warning (e.g. wgmma serialized).
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
    parser.add_argument("--resources", action="store_true")
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
        command = [args.ptxas, f"-arch={args.arch}", path, "-o", os.devnull]
        if args.resources:
            command.insert(1, "-v")
        result = subprocess.run(command, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            print(f"{name}: ptxas failed:\n{result.stderr}", file=sys.stderr)
            return 1
        print(f"{name}: ptx accepted by ptxas -arch={args.arch}")
        if args.resources:
            print(f"{name}: {resources(data.decode('utf-8', 'replace'), result.stderr)}")
    return 0


def resources(ptx: str, report: str) -> str:
    """One line: the PTX's wgmma/TMA/mbarrier/cp.async instructions and ptxas -v's
    numbers, then ptxas's warnings."""
    counts = {
        "wgmma": len(re.findall(r"\bwgmma\.mma_async\b", ptx)),
        "tma": len(re.findall(r"\bcp\.async\.bulk\.tensor\b", ptx)),
        "mbarrier_waits": len(re.findall(r"\bmbarrier\.try_wait\b", ptx)),
        "mma_sync": len(re.findall(r"\bmma\.sync\b", ptx)),
        "cp_async": len(re.findall(r"\bcp\.async\.c[ag]\.shared\.global\b",
                                   ptx)),
        "setmaxnreg": len(re.findall(r"\bsetmaxnreg\.", ptx)),
    }
    def number(pattern: str) -> int:
        found = re.search(pattern, report)
        return int(found.group(1)) if found else 0
    counts["registers"] = number(r"Used (\d+) registers")
    counts["spill_stores"] = number(r"(\d+) bytes spill stores")
    counts["spill_loads"] = number(r"(\d+) bytes spill loads")
    counts["stack"] = number(r"(\d+) bytes stack frame")
    counts["static_smem"] = number(r"(\d+) bytes smem")
    line = ", ".join(f"{key} {value}" for key, value in counts.items())
    # Warnings, and the notes ptxas prints as info with a code, e.g.
    # "(C7520) Potential Performance Loss: wgmma.mma_async instructions are
    # serialized".
    warnings = [w.strip() for w in report.splitlines()
                if "warning" in w.lower() or re.search(r"\(C\d+\)", w)]
    return line + "".join(f"\n  ptxas: {w}" for w in warnings)


if __name__ == "__main__":
    sys.exit(main())
