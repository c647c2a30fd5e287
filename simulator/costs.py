"""Output costs ℓ(x_out, y): value, gradient and Hessian-vector product.

Every cost is per sample (shape ``(batch,)``); algorithms average over the
batch.  ``x_out`` are the output node voltages (V), ``y`` the targets.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COSTS", "Cost", "CrossEntropy", "SquaredError", "get_cost"]


class Cost:
    """Base class: ``value``, ``grad`` (∂ℓ/∂x_out) and ``hvp`` (∂²ℓ/∂x_out² · v)."""

    name: str

    def value(self, x_out: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def grad(self, x_out: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def hvp(self, x_out: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x_out: np.ndarray) -> np.ndarray:
        """Predicted class: the output node with the highest voltage."""
        return np.argmax(x_out, axis=-1)

    def __repr__(self):
        return self.name


class SquaredError(Cost):
    """``ℓ = ½ Σ_o (x_o − y_o)²`` (V²)."""

    name = "squared_error"

    def value(self, x_out, y):
        return 0.5 * np.sum((x_out - y) ** 2, axis=-1)

    def grad(self, x_out, y):
        return x_out - y

    def hvp(self, x_out, y, v):
        return v


class CrossEntropy(Cost):
    """Softmax cross-entropy ``ℓ = −Σ_o y_o log softmax(x)_o``, output voltages as logits.

    ``y`` are class probabilities (one-hot targets).
    """

    name = "cross_entropy"

    @staticmethod
    def _softmax(x):
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def value(self, x_out, y):
        z = x_out - x_out.max(axis=-1, keepdims=True)
        logsum = np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return -np.sum(y * (z - logsum), axis=-1)

    def grad(self, x_out, y):
        return self._softmax(x_out) * np.sum(y, axis=-1, keepdims=True) - y

    def hvp(self, x_out, y, v):
        p = self._softmax(x_out)
        return (p * v - p * np.sum(p * v, axis=-1, keepdims=True)) * np.sum(y, axis=-1, keepdims=True)


COSTS: dict[str, type[Cost]] = {"squared_error": SquaredError, "cross_entropy": CrossEntropy}


def get_cost(cost: str | Cost) -> Cost:
    """A :class:`Cost` from its name (``squared_error`` or ``cross_entropy``) or instance."""
    if isinstance(cost, Cost):
        return cost
    try:
        return COSTS[cost]()
    except KeyError:
        raise ValueError(f"unknown cost {cost!r}; valid: {', '.join(COSTS)}") from None
