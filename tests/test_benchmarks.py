"""The benchmarks' yardsticks compute what the kernels compute (timings are never asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_kernels import _check, numpy_layered  # noqa: E402

from learning.models import build_model  # noqa: E402
from simulator import compile_circuit  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hand_written_numpy_matches_the_kernels(dtype):
    system = compile_circuit(build_model("layered", (20, 7, 3), act="isru", seed=1), dtype=dtype)
    rng = np.random.default_rng(2)
    system.set_params({"b_h1.I": rng.standard_normal(7), "b_o.I": rng.standard_normal(3)})
    u = rng.random((5, 20)).astype(dtype)
    x = rng.standard_normal((5, system.n)).astype(dtype)
    v = rng.standard_normal((5, system.n)).astype(dtype)
    hand = numpy_layered(system.params, u, x, 7)
    bound = system.bind(u)
    lin = bound.linearize(x)
    kernels = {
        "f          one-shot": system.f(x, inputs=u),
        "jvp        one-shot": system.jvp(x, v, inputs=u),
        "vjp        one-shot": system.vjp(x, v, inputs=u),
        "param_vjp  one-shot": system.param_vjp(x, v, inputs=u),
        "f          in a phase": bound.f(x),
        "jvp        in a phase": lin.jvp(v),
        "vjp        in a phase": lin.vjp(v),
        "param_vjp  in a phase": lin.param_vjp(v),
    }
    assert set(kernels) == set(hand)
    for name, out in kernels.items():
        _check(name, out, hand[name](v), dtype)


def test_check_catches_a_wrong_reference():
    with pytest.raises(AssertionError, match="disagrees"):
        _check("f one-shot", np.ones((2, 3)), np.ones((2, 3)) * 1.01, np.float64)
