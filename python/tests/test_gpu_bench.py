"""bench/gpu.py's PyTorch baselines compute the layer the compiled one does.

The GPU benchmark times PyTorch formulations of each model's MoE block
next to the compiled layer; here, on the CPU in float32, the eager block
(a loop over hit experts) equals the float64 reference of the same
weights for Mixtral-style (softmax, renormalized top-k) and DeepSeek-V3
style (sigmoid, selection bias, group-limited top-k, scale, a shared
expert) routing. `torch._grouped_mm` (PyTorch 2.8 and later, CUDA) is
not available here.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from moe_mlir.families import layer_spec
from moe_mlir.layer import layer as layer_reference

torch = pytest.importorskip("torch")

BENCH = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir,
                     "bench", "gpu.py")

CONFIGS = {
    "mixtral": {"model_type": "mixtral", "hidden_size": 64,
                "intermediate_size": 96, "num_local_experts": 8,
                "num_experts_per_tok": 2, "num_hidden_layers": 1},
    "deepseek_v3": {"model_type": "deepseek_v3", "hidden_size": 64,
                    "moe_intermediate_size": 32, "n_routed_experts": 16,
                    "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2,
                    "n_shared_experts": 1, "routed_scaling_factor": 2.5,
                    "first_k_dense_replace": 0, "norm_topk_prob": True,
                    "num_hidden_layers": 1},
}


def load_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", sorted(CONFIGS))
@pytest.mark.parametrize("tokens", [1, 37])
def test_eager_block_matches_reference(family, tokens):
    bench = load_bench()
    spec = layer_spec(CONFIGS[family], 0, dtype="bf16")
    block = bench.TorchMoE(torch, spec, seed=1, device="cpu")
    # float32 on the CPU: the stored bf16 values, widened.
    for name in ("router", "gate", "up", "down"):
        setattr(block, name, getattr(block, name).float())
    if block.bias is not None:
        block.bias = block.bias.float()
    if block.shared:
        block.shared = [t.float() for t in block.shared]
    x = torch.randn(tokens, spec.hidden,
                    generator=torch.Generator().manual_seed(tokens))
    got = block.eager(x).numpy()
    operands = {"router": block.router.numpy(),
                "expert_gate": block.gate.numpy(),
                "expert_up": block.up.numpy(),
                "expert_down": block.down.numpy()}
    if block.bias is not None:
        operands["score_bias"] = block.bias.numpy()
    if block.shared:
        (operands["shared_gate"], operands["shared_up"],
         operands["shared_down"]) = [t.numpy() for t in block.shared]
    want, _ = layer_reference(x.numpy().astype(np.float64), operands,
                              spec.routing)
    np.testing.assert_allclose(got, want, rtol=1e-4,
                               atol=1e-5 * np.abs(want).max())
    # The work it reports: K experts of 3 H I multiply-adds per token.
    flops, touched = block.work(x)
    k, h, i = spec.routing.top_k, spec.hidden, spec.intermediate
    shared = 2 * tokens * 3 * h * spec.shared_intermediate
    assert flops == 2 * tokens * k * 3 * h * i + shared
    assert touched >= 3 * h * i * 2


def test_models_import():
    """The benchmark's three models have specs at their real sizes."""
    bench = load_bench()
    sizes = {name: (spec.hidden, spec.intermediate, spec.num_experts,
                    spec.routing.top_k)
             for name, spec in ((n, bench.layer_spec(n))
                                for n in bench.MODELS)}
    assert sizes == {"mixtral-8x7b": (4096, 14336, 8, 2),
                     "qwen3-30b-a3b": (2048, 768, 128, 8),
                     "deepseek-v3": (7168, 2048, 256, 8)}


def test_results_file_is_replaced_whole(tmp_path):
    """Each rewrite of the results replaces the file at once: a run stopped
    from outside leaves the last complete JSON, never a partial one."""
    import json
    bench = load_bench()
    path = tmp_path / "gpu.json"
    for rows in ([], [{"T": 1}], [{"T": 1}, {"T": 8, "skipped": "budget"}]):
        bench._write_json(str(path), {"rows": rows}, quiet=True)
        assert json.loads(path.read_text()) == {"rows": rows}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu.json"]


def test_router_tiles_count_as_routing():
    """The router's prefill tiles, before the routing block, count with
    routing; the experts' tiles and the rounding of their rows after the
    routing block count as tiles; with no routing kernel every tile
    does."""
    bench = load_bench()
    call = [("forward_tiles_0", 2.0), ("forward_routing_4", 4.0),
            ("forward_rows_5", 8.0), ("forward_tiles_6", 16.0),
            ("forward_loop_12", 32.0)]
    assert bench.split_kernel_times(call) == {"tiles_ms": 24.0,
                                              "other_ms": 38.0}
    assert bench.split_kernel_times(
        [("forward_tiles_0", 1.0), ("forward_loop_1", 2.0)]) == {
            "tiles_ms": 1.0, "other_ms": 2.0}


def _progress(tmp_path, **options):
    import argparse
    args = argparse.Namespace(out=str(tmp_path / "gpu.json"), budget_s=0,
                              hang_s=0, resume=True)
    vars(args).update(options)
    return args


def test_hung_measurement_ends_the_run_with_its_row(tmp_path):
    """A measurement with no result within --hang-s is recorded as hung
    and the process ends with HUNG_STATUS (the main thread may be stuck in
    the driver); one that ends in time leaves no row and the run goes on."""
    import json
    import subprocess
    import sys
    out = tmp_path / "gpu.json"
    script = f"""
import argparse, importlib.util, time
spec = importlib.util.spec_from_file_location("gpu_bench", {BENCH!r})
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
args = argparse.Namespace(out={str(out)!r}, budget_s=0, hang_s=0.5,
                          resume=False)
progress = bench.Progress(args, {{"started": time.time()}}, [])
with progress.watch({{"model": "m", "T": 1}}, "compiled fast"):
    pass
progress.record({{"model": "m", "T": 1, "impl": "compiled fast", "ms": 1}})
with progress.watch({{"model": "m", "T": 8}}, "compiled slow"):
    time.sleep(30)
print("not reached")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60)
    bench = load_bench()
    assert done.returncode == bench.HUNG_STATUS, done.stderr
    assert "not reached" not in done.stdout
    assert "compiled slow on m at T = 8 hung" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["impl"] for r in rows] == ["compiled fast", "compiled slow"]
    assert rows[1]["hung"] and "no result after 0.5 s" in rows[1]["error"]


def test_resume_keeps_rows_and_skips_hung_forms(tmp_path):
    """--resume goes on from the file: its ceilings and measured rows stand,
    rows skipped for time are tried again, a form that hung is not run
    again on that model, and the budget counts from the first start."""
    import json
    bench = load_bench()
    started = 1000.0
    (tmp_path / "gpu.json").write_text(json.dumps({
        "machine": {"started": started, "copy_GBps": 4000.0},
        "rows": [{"model": "m", "T": 1, "impl": "torch eager", "ms": 1.0},
                 {"model": "m", "T": 8, "impl": "compiled a", "hung": True,
                  "error": "no result"},
                 {"model": "m", "T": 64, "skipped": "time budget"}]}))
    args = _progress(tmp_path, budget_s=60)
    progress = bench.Progress.start(args, torch=None)
    assert progress.info["copy_GBps"] == 4000.0
    assert progress.info["resumed"] == 1
    assert [r.get("T") for r in progress.rows] == [1, 8]
    assert progress.done("m", 1, "torch eager")
    assert not progress.done("m", 8, "torch eager")
    assert progress.hung("m", "compiled a")
    assert not progress.hung("m", "compiled b")
    assert not progress.hung("other", "compiled a")
    assert progress.out_of_time()  # 60 s after a start in 1970
    progress.info["started"] = __import__("time").time()
    assert not progress.out_of_time()
    # A hung form left rows unmeasured: the run is not complete.
    progress.finish()
    assert json.loads((tmp_path / "gpu.json").read_text())[
        "machine"]["complete"] is False
    # A results file from before the start time was recorded resumes too.
    del progress.info["started"]
    assert not progress.out_of_time()


def test_check_case_that_does_not_end_is_stopped(capsys):
    """utils/gpu-check.sh's execution tests give each case
    --case-timeout-s: a case still running then fails, stopped with the
    processes it started (a moe-run whose kernel never ends)."""
    import time
    spec = importlib.util.spec_from_file_location(
        "cuda_check", os.path.join(os.path.dirname(BENCH), os.pardir, "test",
                                   "Integration", "CUDA", "Inputs",
                                   "cuda_check.py"))
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    check.CASE_TIMEOUT_S = 1
    start = time.monotonic()
    assert not check.run(["bash", "-c", "echo started; sleep 60 & wait"],
                         "slow case")
    assert time.monotonic() - start < 30
    out = capsys.readouterr().out
    assert "started" in out
    assert "slow case: FAILED: no result after 1 s (stopped)" in out
    assert check.run(["bash", "-c", "echo quick"], "quick case")
    assert not check.run(["bash", "-c", "echo bad >&2; exit 2"], "bad case")
    assert "bad case: FAILED: bad" in capsys.readouterr().out


def test_each_form_runs_over_every_model_before_the_next(monkeypatch):
    """gpu.py run measures PyTorch's rows of every model first, then each
    compiled form (in --modes order) over every model: a time budget spent
    before the last forms leaves the first ones measured at every shape."""
    import argparse
    import time
    bench = load_bench()
    from moe_mlir import runtime
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(runtime, "library", lambda path: None)
    monkeypatch.setattr(bench.Progress, "start", classmethod(
        lambda cls, args, torch: cls(args, {"started": time.time()}, [])))
    calls = []
    monkeypatch.setattr(
        bench, "_torch_rows",
        lambda args, torch, np, progress, model, tokens, scratch:
        calls.append(("torch", model)) or model)
    monkeypatch.setattr(
        bench, "_compiled_rows",
        lambda args, torch, runtime, progress, layer, mode:
        calls.append((mode, layer)))
    args = argparse.Namespace(dir="unused", out=None, models="a,b",
                              tokens="1,8", modes="wgmma,sync", runs=1,
                              budget_s=0, hang_s=0, resume=False,
                              scratch=None)
    bench.run(args)
    assert calls == [("torch", "a"), ("torch", "b"), ("wgmma", "a"),
                     ("wgmma", "b"), ("sync", "a"), ("sync", "b")]


def test_decode_forms_run_at_decode_only():
    """The forms that compare a decode feature against the default (64-row
    stages, one wgmma group in flight) run at T <= 64 only, and each turns
    off its feature through the pipeline option that governs it."""
    bench = load_bench()
    for mode, option in (("wgmma-64-row-stages", "eight-row-stages=0"),
                         ("wgmma-one-group", "max-groups-in-flight=1")):
        assert option in bench.MMA_MODES[mode].split()
        assert bench.mode_applies(mode, experts=8, tokens=64)
        assert not bench.mode_applies(mode, experts=8, tokens=512)
        assert bench.mode_applies(mode, experts=128)
