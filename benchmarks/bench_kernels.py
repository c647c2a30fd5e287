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

A second yardstick, for the layered model, is the same computation written
by hand in plain numpy for this one network (isru, two layers; checked
against the kernels in the run): the ratio ``kernel / numpy`` is what the
generic compiler costs over code a person would write, while ``kernel / bare``
also counts the elementwise work that any implementation must do.

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


def _isru(v):
    """ρ, ρ', ρ'' of isru ``v/√(1+v²)``."""
    s = 1 + v * v
    q = np.sqrt(s)
    d = 1 / (s * q)
    return v / q, d, -3 * v * d / s


def numpy_layered(P: dict, u: np.ndarray, x: np.ndarray, n_h: int) -> dict:
    """The untied layered isru network's kernels written by hand in plain numpy.

    ``C ḣ = −g_h h + ρ'(h)(W1 ρ(u) + B2 ρ(o) + b_h)``, ``C ȯ = −g_o o + ρ'(o)(W2 ρ(h) + b_o)``.
    Returns one-shot and in-phase closures named like the benchmark rows.
    """
    W1, W2, B2 = P["W1.w"], P["W2.w"], P["B2.w"]
    b_h, b_o, g_h, g_o = P["b_h1.I"], P["b_o.I"], P["h1.g"], P["o.g"]
    h, o = x[:, :n_h], x[:, n_h:]

    def drive():
        rx = _isru(u)[0]
        return rx, rx @ W1.T

    def lin(ext):
        rh, dh, ddh = _isru(h)
        ro, do, ddo = _isru(o)
        D_h, D_o = ext + ro @ B2.T + b_h, rh @ W2.T + b_o
        return rh, dh, ro, do, ddh * D_h - g_h, ddo * D_o - g_o, D_h, D_o

    def f(ext):
        rh, dh, ro, do, _, _, D_h, D_o = lin(ext)
        return np.concatenate([dh * D_h - g_h * h, do * D_o - g_o * o], axis=1)

    def jvp(L, v):
        _, dh, _, do, diag_h, diag_o, _, _ = L
        v_h, v_o = v[:, :n_h], v[:, n_h:]
        return np.concatenate(
            [diag_h * v_h + dh * ((do * v_o) @ B2.T), diag_o * v_o + do * ((dh * v_h) @ W2.T)], axis=1
        )

    def vjp(L, w):
        _, dh, _, do, diag_h, diag_o, _, _ = L
        w_h, w_o = w[:, :n_h], w[:, n_h:]
        return np.concatenate([diag_h * w_h + dh * ((do * w_o) @ W2), diag_o * w_o + do * ((dh * w_h) @ B2)], axis=1)

    def param_vjp(L, w, rx):
        rh, dh, ro, do, _, _, _, _ = L
        a_h, a_o = dh * w[:, :n_h], do * w[:, n_h:]
        return {
            "W1.w": a_h.T @ rx,
            "B2.w": a_h.T @ ro,
            "W2.w": a_o.T @ rh,
            "b_h1.I": a_h.sum(axis=0),
            "b_o.I": a_o.sum(axis=0),
            "h1.g": -(h * w[:, :n_h]).sum(axis=0),
            "o.g": -(o * w[:, n_h:]).sum(axis=0),
        }

    def param_vjp_one_shot(w):
        rx, ext = drive()
        return param_vjp(lin(ext), w, rx)

    rx, ext = drive()
    L = lin(ext)
    return {
        "f          one-shot": lambda v: f(drive()[1]),
        "jvp        one-shot": lambda v: jvp(lin(drive()[1]), v),
        "vjp        one-shot": lambda v: vjp(lin(drive()[1]), v),
        "param_vjp  one-shot": param_vjp_one_shot,
        "f          in a phase": lambda v: f(ext),
        "jvp        in a phase": lambda v: jvp(L, v),
        "vjp        in a phase": lambda v: vjp(L, v),
        "param_vjp  in a phase": lambda v: param_vjp(L, v, rx),
    }


def run(model: str, batch: int, dtype) -> list[tuple[str, float, float, float | None]]:
    """Rows ``(name, kernel s, bare matmul s, hand-written numpy s or None)``."""
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
    kernels = {
        "f          one-shot": (lambda: system.f(x, inputs=u), t_drive + t_f),
        "jvp        one-shot": (lambda: system.jvp(x, v, inputs=u), t_drive + t_f + t_jvp),
        "vjp        one-shot": (lambda: system.vjp(x, v, inputs=u), t_drive + t_f + t_vjp),
        "param_vjp  one-shot": (lambda: system.param_vjp(x, v, inputs=u), t_drive + t_f + t_par),
        "f          in a phase": (lambda: bound.f(x), t_f),
        "jvp        in a phase": (lambda: lin.jvp(v), t_jvp),
        "vjp        in a phase": (lambda: lin.vjp(v), t_vjp),
        "param_vjp  in a phase": (lambda: lin.param_vjp(v), t_par),
    }
    by_hand = numpy_layered(P, u, x, 500) if model == "layered" else {}
    rows = []
    for name, (kernel, bare) in kernels.items():
        hand = by_hand.get(name)
        if hand is not None:
            _check(name, kernel(), hand(v), dtype)
        rows.append((name, best(kernel), bare, None if hand is None else best(lambda h=hand: h(v))))
    return rows


def _check(name: str, kernel_out, hand_out, dtype) -> None:
    """The hand-written reference must compute what the kernel computes."""
    tol = 1e-9 if dtype == np.float64 else 1e-3
    if isinstance(kernel_out, dict):
        pairs = [(kernel_out[k], hand_out.get(k, np.zeros_like(kernel_out[k]))) for k in kernel_out]
    else:
        pairs = [(kernel_out, hand_out)]
    for a, b in pairs:
        scale = max(1.0, float(np.abs(a).max()))
        if not np.allclose(a, b, rtol=0, atol=tol * scale):
            raise AssertionError(f"hand-written numpy {name.split()[0]} disagrees with the kernel")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("layered", "rate"), default="layered")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"784-500-10 {args.model} (non-reciprocal), batch {args.batch}; times are the best of 7 repeats")
    for dtype in (np.float64, np.float32):
        print(
            f"\n{np.dtype(dtype).name}:  {'kernel':<22}{'kernel (ms)':>12}{'bare matmuls (ms)':>19}"
            f"{'numpy (ms)':>12}{'kernel/bare':>13}{'kernel/numpy':>14}"
        )
        for name, t, bare, hand in run(args.model, args.batch, dtype):
            h_ms = f"{1e3 * hand:>12.3f}" if hand else f"{'—':>12}"
            h_ratio = f"{t / hand:>14.2f}" if hand else f"{'—':>14}"
            print(f"{'':10}{name:<22}{1e3 * t:>12.3f}{1e3 * bare:>19.3f}{h_ms}{t / bare:>13.2f}{h_ratio}")


if __name__ == "__main__":
    main()
