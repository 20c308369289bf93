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
