"""A small gpt-oss checkpoint whose experts are MXFP4, as the hub's are.

usage: gpt_oss_mxfp4.py DIR

Writes DIR/ckpt (config.json with an mxfp4 quantization_config,
model.safetensors: bf16 router, attention and biases, U8 expert
``*_blocks`` / ``*_scales``) and DIR/x{T}.npy for T = 0, 1, 37, 300.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                *[os.pardir] * 4, "python"))

from moe_mlir import safetensors_io  # noqa: E402
from moe_mlir.testdata import round_to_bf16  # noqa: E402

H, I, E, K, LAYERS = 64, 32, 4, 2, 2


def main() -> None:
    out = sys.argv[1]
    ckpt = os.path.join(out, "ckpt")
    os.makedirs(ckpt, exist_ok=True)
    config = {"model_type": "gpt_oss", "architectures": ["GptOssForCausalLM"],
              "hidden_size": H, "intermediate_size": I,
              "num_local_experts": E, "num_experts_per_tok": K,
              "num_hidden_layers": LAYERS, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 16, "swiglu_limit": 7.0,
              "torch_dtype": "bfloat16",
              "quantization_config": {"quant_method": "mxfp4"}}
    with open(os.path.join(ckpt, "config.json"), "w") as file:
        json.dump(config, file)
    rng = np.random.default_rng(0)
    tensors, dtypes = {}, {}
    for n in range(LAYERS):
        mlp = f"model.layers.{n}.mlp"
        tensors[f"{mlp}.router.weight"] = rng.standard_normal((E, H)) / 4
        tensors[f"{mlp}.router.bias"] = rng.standard_normal(E)
        tensors[f"{mlp}.experts.gate_up_proj_bias"] = \
            rng.standard_normal((E, 2 * I))
        tensors[f"{mlp}.experts.down_proj_bias"] = rng.standard_normal((E, H))
        tensors[f"model.layers.{n}.self_attn.q_proj.weight"] = \
            rng.standard_normal((H, H))
        for name, rows, cols in (("gate_up_proj", 2 * I, H),
                                 ("down_proj", H, I)):
            base = f"{mlp}.experts.{name}"
            tensors[base + "_blocks"] = rng.integers(
                0, 256, (E, rows, cols // 32, 16), dtype=np.uint8)
            # Scales around 2^-3, once 0 (values 2^-127 and below: bf16
            # subnormals) and once 2^3.
            scales = rng.integers(123, 126, (E, rows, cols // 32),
                                  dtype=np.uint8)
            scales[0, 0, 0], scales[-1, -1, -1] = 0, 130
            tensors[base + "_scales"] = scales
    for name, value in tensors.items():
        if value.dtype == np.uint8:
            dtypes[name] = "U8"
        else:
            tensors[name] = round_to_bf16(value.astype(np.float32))
            dtypes[name] = "BF16"
    safetensors_io.save_file(os.path.join(ckpt, "model.safetensors"),
                             tensors, dtypes)
    for tokens in (0, 1, 37, 300):
        np.save(os.path.join(out, f"x{tokens}.npy"),
                rng.standard_normal((tokens, H)).astype(np.float32))


if __name__ == "__main__":
    main()
