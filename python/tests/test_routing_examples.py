"""examples/routing holds what examples/routing/generate.py writes.

The examples are checked in so that moe-opt and moe-run take them directly;
this keeps them in step with the generator (and so with the emitter). The
lit test Integration/CPU/routing-examples.test runs each of them.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from moe_mlir.emit import LayerSpec

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                    os.pardir, "examples", "routing")


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_examples", os.path.join(ROOT, "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


@pytest.mark.parametrize("name", sorted(GENERATOR.EXAMPLES))
def test_example_is_generated(name) -> None:
    json_text, mlir_text = GENERATOR.render(name)
    for suffix, text in ((".json", json_text), (".mlir", mlir_text)):
        with open(os.path.join(ROOT, name + suffix), encoding="utf-8") as f:
            assert f.read() == text, (
                f"examples/routing/{name}{suffix} is stale: run "
                "examples/routing/generate.py")


def test_every_file_is_an_example() -> None:
    names = {os.path.splitext(f)[0] for f in os.listdir(ROOT)
             if f.endswith((".json", ".mlir"))}
    assert names == set(GENERATOR.EXAMPLES)


def test_examples_round_trip() -> None:
    for name in GENERATOR.EXAMPLES:
        spec = GENERATOR.spec(name)
        assert LayerSpec.from_dict(spec.to_dict()) == spec
