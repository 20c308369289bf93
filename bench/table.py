#!/usr/bin/env python3
"""Prints bench/results/cpu.json (from bench/cpu.py) as a Markdown table.

    /usr/bin/python3 bench/table.py [bench/results/cpu.json]

One row per shape, dtype and T: the compiled layer's median ms, the two
PyTorch formulations', the speedup over the faster one, useful GFLOP/s and
the fraction of the peak of the unit the kernel runs on (f32 FMA; the bf16
dot product for bf16 weights where the CPU has it), touched-weight GB/s and
the fraction of
DRAM bandwidth, and the share of routing + dispatch + combine.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "results", "cpu.json")
    with open(path, encoding="utf-8") as file:
        result = json.load(file)
    print("| shape | weights | T | moe-mlir ms | PyTorch loop ms | PyTorch "
          "bmm ms | speedup | GFLOP/s (of the unit's peak) | weight GB/s "
          "(of DRAM) "
          "| routing share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in result["rows"]:
        peak = row.get("fraction_of_unit_peak",
                       row.get("fraction_of_f32_peak"))
        unit = row.get("peak_unit", "f32 FMA")
        dram = row.get("fraction_of_dram")
        share = row.get("routing_share")
        print(f"| {row['shape']} | {row['dtype']} | {row['tokens']} | "
              f"{row['ms']:.2f} | {row['torch_loop_ms']:.2f} | "
              f"{row['torch_bmm_ms']:.2f} | "
              f"{row['speedup_vs_best_torch']:.2f}x | "
              f"{row['gflops']:.1f}"
              + (f" ({100 * peak:.0f}% {unit})" if peak is not None
                 else "")
              + f" | {row['weight_gbps']:.1f}"
              + (f" ({100 * dram:.0f}%)" if dram is not None else "")
              + " | "
              + (f"{100 * share:.1f}%" if share is not None else "-")
              + " |")
    compile_s = sorted({round(row["compile_s"], 2) for row in result["rows"]})
    if compile_s:
        print(f"\nmoe-compile: {compile_s[0]:.2f}-{compile_s[-1]:.2f} s per "
              "layer.")


if __name__ == "__main__":
    main()
