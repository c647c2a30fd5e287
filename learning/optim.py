"""Parameter updates applied element by element: SGD with momentum.

Each parameter array belongs to one element group; the update of a group
uses only that group's gradient estimate (computed from its own terminals,
see :mod:`learning.local`) and broadcast scalars (learning rate, momentum).
After an update, parameters are kept inside their physical domain (e.g. a
conductance stays ≥ 0) — a device cannot go beyond it either.
"""

from __future__ import annotations

import numpy as np

from simulator import CompiledSystem

__all__ = ["SGD", "parse_learning_rates"]


class SGD:
    """SGD with (heavy-ball) momentum and per-layer learning rates.

    ``v ← μ v − η_k g``, ``θ ← θ + v``, then ``θ`` is clipped to its domain.

    Parameters
    ----------
    system
        The compiled system whose parameters are trained (updated in place).
    lr
        A learning rate for every parameter, or a dict mapping element names
        (``"W1"``), parameter names (``"W1.w"``) or ``"default"`` to rates.
    momentum
        μ in [0, 1).
    params
        Names of the parameters to train (default: the trainable ones).
    """

    def __init__(self, system: CompiledSystem, lr: float | dict = 0.01, momentum: float = 0.0, params=None):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.system = system
        self.params = [k for k in system.params if system.trainable[k]] if params is None else list(params)
        for k in self.params:
            if k not in system.params:
                raise KeyError(f"no parameter {k!r} to train")
        self.momentum = float(momentum)
        if isinstance(lr, dict):
            valid = {"default", *self.params, *(k.rsplit(".", 1)[0] for k in self.params)}
            unknown = sorted(set(lr) - valid)
            if unknown:
                raise KeyError(
                    f"learning rates given for {unknown}, which name no trained element or parameter; "
                    f"valid: {', '.join(sorted(valid))}"
                )
        self.lr = {k: self._rate(lr, k) for k in self.params}
        self.velocity = {k: np.zeros_like(system.params[k]) for k in self.params}
        self._domain = {}
        for k in self.params:
            group = system.param_group[k]
            decl = {p.name: p for p in group.law.element_type.parameters}[k.rsplit(".", 1)[1]]
            self._domain[k] = decl.domain

    @staticmethod
    def _rate(lr, key: str) -> float:
        if not isinstance(lr, dict):
            rate = lr
        else:
            element = key.rsplit(".", 1)[0]
            rate = lr.get(key, lr.get(element, lr.get("default")))
            if rate is None:
                raise KeyError(f"no learning rate for {key!r}: give lr[{element!r}] or lr['default']")
        rate = float(rate)
        if not (np.isfinite(rate) and rate >= 0):
            raise ValueError(f"learning rate for {key!r} must be ≥ 0, got {rate!r}")
        return rate

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """Apply one update from gradient estimates (missing names are left alone)."""
        for k in self.params:
            g = grads.get(k)
            if g is None:
                continue
            v = self.velocity[k]
            v *= self.momentum
            v -= self.lr[k] * g
            p = self.system.params[k]
            p += v
            if self._domain[k] == "nonnegative":
                np.maximum(p, 0, out=p)
            elif self._domain[k] == "positive":
                np.maximum(p, np.finfo(p.dtype).tiny, out=p)
        self.system.touch()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Momentum buffers, for checkpoints."""
        return {k: v.copy() for k, v in self.velocity.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for k, v in state.items():
            if k not in self.velocity or self.velocity[k].shape != np.shape(v):
                raise ValueError(f"optimizer state for {k!r} does not match this system")
            self.velocity[k][...] = v


def parse_learning_rates(tokens: list[str]) -> dict[str, float]:
    """Learning rates from command-line words: a rate for all, and/or ``ELEMENT=RATE``.

    ``["0.05"]`` → ``{"default": 0.05}``; ``["W1=0.3", "default=0.1"]`` →
    ``{"W1": 0.3, "default": 0.1}`` (see :class:`SGD` for how names match).
    """
    rates = {}
    for token in tokens:
        name, _, value = token.rpartition("=")
        try:
            rates[name or "default"] = float(value)
        except ValueError:
            raise ValueError(
                f"learning rate {token!r} is neither a rate nor ELEMENT=RATE (e.g. 0.05 or W1=0.1)"
            ) from None
    return rates
