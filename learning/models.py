"""Network builders: layered circuits on top of :mod:`circuits`.

All models have an input layer ``x`` (clamped, V), hidden layers ``h1, h2, …``
and an output layer ``o`` (free nodes with ``C`` and leak ``g``).  With
``C = g = 1`` time is in units of the leak time constant.  ρ is the transfer
function (``act``).  Equations (⊙ elementwise, biases ``b``):

``layered`` (tied=True) — the Hopfield energy network of Scellier & Bengio,
conservative (EP's model); couplings are :class:`~circuits.Coupling` blocks::

    E = Σ v²/2 − Σ_k ρ(v_k+1)ᵀ W_k ρ(v_k) − Σ b ρ(v)
    C ⊙ dh/dt = −h + ρ'(h) ⊙ (W1 ρ(x) + W2ᵀ ρ(o) + b_h)
    C ⊙ do/dt = −o + ρ'(o) ⊙ (W2 ρ(h) + b_o)

``layered`` (tied=False) — the same dynamics with forward ``W2`` and backward
``B2`` learned separately (:class:`~circuits.HalfCoupling` blocks), so the
system is non-conservative as soon as ``B2 ≠ W2ᵀ``; ``init="symmetric"``
starts from ``B2 = W2ᵀ`` (the model on which the paper compares VF and AEP
with EP)::

    C ⊙ dh/dt = −h + ρ'(h) ⊙ (W1 ρ(x) + B2 ρ(o) + b_h)

``rate`` — the Hopfield-circuit rate network ``C ẋ = −g x + W ρ(x) + b + U u``
with transconductances (:class:`~circuits.VCCS`), forward and backward::

    C ⊙ dh/dt = −h + W1 ρ(x) + B2 ρ(o) + b_h,   C ⊙ do/dt = −o + W2 ρ(h) + b_o

``feedforward`` — forward transconductances only; the stationary state is the
MLP forward pass ``h = W1 ρ(x) + b_h``, ``o = W2 ρ(h) + b_o``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from circuits import VCCS, Bias, Circuit, Coupling, Dense, HalfCoupling, InputLayer, Layer, Output, Sparse

__all__ = ["MODELS", "build_model", "feedforward", "layered", "rate"]


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = list(sizes)
    if len(sizes) < 2 or any((not isinstance(s, (int, np.integer))) or s < 1 for s in sizes):
        raise ValueError(f"sizes must be at least (n_in, n_out) positive integers, got {sizes}")
    return [int(s) for s in sizes]


def _glorot(rng, rows: int, cols: int, gain: float) -> np.ndarray:
    limit = gain * np.sqrt(6.0 / (rows + cols))
    return rng.uniform(-limit, limit, size=(rows, cols))


def _network(sizes, forward, backward, act, bias_act, init, seed, gain, C, g, name) -> Circuit:
    """Input layer, free layers, ``forward`` blocks (and ``backward`` ones between free layers), biases."""
    sizes = _check_sizes(sizes)
    if init not in ("symmetric", "random"):
        raise ValueError(f"init must be 'symmetric' or 'random', got {init!r}")
    rng = np.random.default_rng(seed)
    x = InputLayer("x", sizes[0])
    names = [f"h{i}" for i in range(1, len(sizes) - 1)] + ["o"]
    free = [Layer(n, size, C=C, g=g) for n, size in zip(names, sizes[1:])]
    items: list = [x, *free]
    prev = x
    for k, layer in enumerate(free, start=1):
        W = _glorot(rng, layer.size, prev.size, gain)
        items.append(Dense(f"W{k}", forward, layer, prev, w=W, act=act))
        if backward is not None and prev is not x:
            B = W.T.copy() if init == "symmetric" else _glorot(rng, prev.size, layer.size, gain)
            items.append(Dense(f"B{k}", backward, prev, layer, w=B, act=act))
        prev = layer
    items += [Sparse(f"b_{layer.name}", Bias, [layer.nodes], I=0.0, act=bias_act) for layer in free]
    items.append(Output("o"))
    return Circuit(items, name=f"{name}-{'-'.join(map(str, sizes))}")


def layered(
    sizes: Sequence[int] = (784, 500, 10),
    act: str = "tanh",
    tied: bool = True,
    init: str = "symmetric",
    seed: int = 0,
    gain: float = 1.0,
    C: float = 1.0,
    g: float = 1.0,
) -> Circuit:
    """The layered Hopfield energy network, tied (conservative) or untied.

    Parameters
    ----------
    sizes
        Layer sizes, input first, output last.
    act
        Transfer function ρ.
    tied
        ``True``: one energy coupling per pair (EP's model).  ``False``:
        forward and backward half-couplings learned separately.
    init
        ``"symmetric"`` (backward = forwardᵀ) or ``"random"`` (independent);
        only used when ``tied=False``.
    seed, gain
        Glorot-uniform initialisation with this gain.
    C, g
        Node capacitance (F) and leak (S).
    """
    if tied:
        return _network(sizes, Coupling, None, act, act, init, seed, gain, C, g, "layered-tied")
    return _network(sizes, HalfCoupling, HalfCoupling, act, act, init, seed, gain, C, g, "layered-untied")


def rate(
    sizes: Sequence[int] = (784, 500, 10),
    act: str = "tanh",
    init: str = "symmetric",
    seed: int = 0,
    gain: float = 1.0,
    C: float = 1.0,
    g: float = 1.0,
) -> Circuit:
    """The Hopfield-circuit rate network ``C ẋ = −g x + W ρ(x) + b + U u`` (layered, non-conservative)."""
    return _network(sizes, VCCS, VCCS, act, "linear", init, seed, gain, C, g, "rate")


def feedforward(
    sizes: Sequence[int] = (784, 500, 10),
    act: str = "tanh",
    seed: int = 0,
    gain: float = 1.0,
    C: float = 1.0,
    g: float = 1.0,
) -> Circuit:
    """Forward transconductances only: the stationary state is an MLP forward pass."""
    return _network(sizes, VCCS, None, act, "linear", "symmetric", seed, gain, C, g, "feedforward")


MODELS = {
    "layered": lambda sizes, act, seed, **kw: layered(sizes, act, tied=False, seed=seed, **kw),
    "layered-tied": lambda sizes, act, seed, **kw: layered(sizes, act, tied=True, seed=seed, **kw),
    "rate": lambda sizes, act, seed, **kw: rate(sizes, act, seed=seed, **kw),
    "feedforward": lambda sizes, act, seed, **kw: feedforward(sizes, act, seed=seed, **kw),
}


def build_model(name: str, sizes: Sequence[int], act: str = "tanh", seed: int = 0, **kwargs) -> Circuit:
    """Build a model by name: ``layered`` (untied), ``layered-tied``, ``rate`` or ``feedforward``."""
    try:
        return MODELS[name](sizes, act, seed, **kwargs)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}") from None
