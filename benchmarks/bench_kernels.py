"""Cost of the compiled kernels relative to the bare matrix products they need.

For a 784-500-10 layered non-reciprocal network (the untied Hopfield model of
the MNIST experiment) at batch 100, in float64 and float32, this times one
evaluation of ``f``, ``jvp``, ``vjp`` and ``param_vjp`` and divides by the time
of the plain numpy matrix products that evaluation needs, timed in the same
run on arrays of the same shapes and dtype (best of several repeats each).

Two regimes are reported:

* *one-shot* — ``system.f(x, inputs=u)`` etc.: the inputs are bound for the
  call, so the input drive ``W1 ρ(u)`` (a 100×784×500 product) is part of the
  work, and of the bare products;
* *in a phase* — the inputs are bound once (``bound.f(x)``) and, for
  ``jvp``/``vjp``, the linearisation is reused (``lin.jvp(v)``), as during
  settling, AEP's learning phase and Krylov solves.  Only the small
  500×10 products remain, so elementwise work (ρ(v), ρ'(v), scatter) dominates.

Run:  python benchmarks/bench_kernels.py [--model layered|rate] [--batch 100]
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from learning.models import build_model
from simulator import compile_circuit


def best(fn, repeat: int = 7, number: int | None = None) -> float:
    """Best time of one call (s)."""
    if number is None:
        t = timeit.timeit(fn, number=1)
        number = max(1, int(0.05 / max(t, 1e-7)))
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number


def run(model: str, batch: int, dtype) -> list[tuple[str, float, float]]:
    sizes = (784, 500, 10)
    system = compile_circuit(
        build_model(model, sizes, act="isru" if model == "layered" else "tanh", seed=0), dtype=dtype
    )
    rng = np.random.default_rng(0)
    u = rng.random((batch, 784)).astype(dtype)
    x = (0.3 * rng.standard_normal((batch, system.n))).astype(dtype)
    v = rng.standard_normal((batch, system.n)).astype(dtype)
    P = {k: a for k, a in system.params.items()}
    W1, W2 = P["W1.w"], P["W2.w"]
    B2 = P["B2.w"]
    a_in = rng.random((batch, 784)).astype(dtype)
    a_h = rng.random((batch, 500)).astype(dtype)
    a_o = rng.random((batch, 10)).astype(dtype)

    # The bare products each kernel needs (same shapes and dtype).
    def mm_drive():  # bind: W1 ρ(u)
        return a_in @ W1.T

    def mm_f():  # W2 ρ(h), B2 ρ(o)
        return a_h @ W2.T, a_o @ B2.T

    def mm_lin_jvp():  # J v through both blocks
        return a_h @ W2.T, a_o @ B2.T

    def mm_lin_vjp():  # Jᵀ w through both blocks
        return a_o @ W2, a_h @ B2

    def mm_param():  # ∂f/∂θ contracted with w, summed over the batch
        return a_h.T @ a_in, a_o.T @ a_h, a_h.T @ a_o

    bound = system.bind(u)
    lin = bound.linearize(x)
    t_drive, t_f, t_jvp, t_vjp, t_par = (best(m) for m in (mm_drive, mm_f, mm_lin_jvp, mm_lin_vjp, mm_param))
    rows = [
        ("f          one-shot", best(lambda: system.f(x, inputs=u)), t_drive + t_f),
        ("jvp        one-shot", best(lambda: system.jvp(x, v, inputs=u)), t_drive + t_f + t_jvp),
        ("vjp        one-shot", best(lambda: system.vjp(x, v, inputs=u)), t_drive + t_f + t_vjp),
        ("param_vjp  one-shot", best(lambda: system.param_vjp(x, v, inputs=u)), t_drive + t_f + t_par),
        ("f          in a phase", best(lambda: bound.f(x)), t_f),
        ("jvp        in a phase", best(lambda: lin.jvp(v)), t_jvp),
        ("vjp        in a phase", best(lambda: lin.vjp(v)), t_vjp),
        ("param_vjp  in a phase", best(lambda: lin.param_vjp(v)), t_par),
    ]
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("layered", "rate"), default="layered")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"784-500-10 {args.model} (non-reciprocal), batch {args.batch}; times are the best of 7 repeats")
    for dtype in (np.float64, np.float32):
        print(f"\n{np.dtype(dtype).name}:  {'kernel':<22}{'kernel (ms)':>12}{'bare matmuls (ms)':>19}{'ratio':>8}")
        for name, t, bare in run(args.model, args.batch, dtype):
            print(f"{'':10}{name:<22}{1e3 * t:>12.3f}{1e3 * bare:>19.3f}{t / bare:>8.2f}")


if __name__ == "__main__":
    main()
