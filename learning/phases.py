"""The learning-phase dynamics of ALGORITHMS.md §3, as settle-able systems.

Every phase is a dynamics object :func:`simulator.settle` accepts: it has
``n``, ``capacitance``, ``dtype``, ``f(x)`` and ``linearize(x)``.

* :class:`NudgedPhase` (EP, VF):  ``C ẋ = f(x) − β ℓ'(x)``.
* :class:`AEPPhase`:  ``C ẋ = f(x) − β ℓ'(x) − 2A₀(x − x₀)``, with
  ``2A₀ = J₀ − J₀ᵀ`` frozen at the free state and applied matrix-free: each
  non-reciprocal element group adds its own ``−(J_e − J_eᵀ)(x − x₀)`` from its
  own terminals (:meth:`simulator.compiled.Linearization.antisym`).
* :class:`DyadicPhase`: the doubled state ``z = (m, d)`` following
  ``C ṁ = f(m)``, ``C ḋ = J(m)ᵀ d − β ℓ'(m)``.

``β`` (the nudging strength) has units of A per unit of ``∂ℓ/∂x``.
"""

from __future__ import annotations

import numpy as np

from simulator.compiled import Bound, Linearization

__all__ = ["AEPPhase", "DyadicPhase", "NudgedPhase"]


class _Linear:
    """A matrix-free linear operator with a dense fallback for small systems."""

    def __init__(self, jvp, n, batch, dtype):
        self.jvp, self.n, self.batch, self.dtype = jvp, n, batch, dtype

    def dense(self) -> np.ndarray:
        J = np.empty((self.batch, self.n, self.n), dtype=self.dtype)
        e = np.zeros((self.batch, self.n), dtype=self.dtype)
        for j in range(self.n):
            e[:, j] = 1
            J[:, :, j] = self.jvp(e)
            e[:, j] = 0
        return J


class NudgedPhase:
    """EP/VF nudged phase ``C ẋ = f(x) − β ℓ'(x)``.

    Parameters
    ----------
    bound
        The system with its inputs fixed.
    target
        Targets of the outputs, ``(batch, n_out)``.
    beta
        Nudging strength β (may be negative for symmetric nudging).
    """

    def __init__(self, bound: Bound, target, beta: float):
        self.bound, self.target, self.beta = bound, target, float(beta)
        self.system = bound.system
        self.n, self.capacitance, self.dtype, self.u = bound.n, bound.capacitance, bound.dtype, bound.u

    def f(self, x):
        return self.bound.f(x) - self.beta * self.system.cost_grad(x, self.target)

    def linearize(self, x):
        lin = self.bound.linearize(x)

        def jvp(v):
            return lin.jvp(v) - self.beta * self.system.cost_hvp(x, v, self.target)

        return _Linear(jvp, self.n, len(np.atleast_2d(x)), self.dtype)


class AEPPhase(NudgedPhase):
    """AEP learning phase ``C ẋ = f(x) − β ℓ'(x) − 2A₀(x − x₀)``.

    Parameters
    ----------
    bound, target, beta
        As for :class:`NudgedPhase`.
    x0
        The free stationary state.
    lin0
        ``bound.linearize(x0)``, if already computed (it is reused by every
        step: the correction is frozen at ``x₀``).

    Notes
    -----
    Its Jacobian at ``x₀`` is ``J₀ − 2A₀ − β ℓ'' = J₀ᵀ − β ℓ''``: at ``β = 0``
    it has the eigenvalues of the free phase, so the learning phase is stable
    exactly when the free state is.
    """

    def __init__(self, bound: Bound, target, beta: float, x0, lin0: Linearization | None = None):
        super().__init__(bound, target, beta)
        self.x0 = np.atleast_2d(np.asarray(x0, dtype=self.dtype))
        self.lin0 = lin0 if lin0 is not None else bound.linearize(self.x0)

    def correction(self, x) -> np.ndarray:
        """``−2A₀(x − x₀)``: the sum of every non-reciprocal element's own correction."""
        return -self.lin0.antisym(np.atleast_2d(x) - self.x0)

    def f(self, x):
        return super().f(x) + self.correction(x)

    def linearize(self, x):
        base = super().linearize(x)

        def jvp(v):
            return base.jvp(v) - self.lin0.antisym(v)

        return _Linear(jvp, self.n, len(np.atleast_2d(x)), self.dtype)


class DyadicPhase:
    """Dyadic EP: doubled state ``z = [m, d]`` of shape ``(batch, 2n)``.

    ``C ṁ = ∂L/∂d = f(m)`` and ``C ḋ = ∂L/∂m = J(m)ᵀ d − β ℓ'(m)`` for the
    Lagrangian ``L(m, d) = dᵀ f(m) − β ℓ(m)``.  The stationary point is
    ``m* = x₀``, ``J₀ᵀ d* = β ℓ'(x₀)``.  The copies of node ``i`` are
    ``m_i ± d_i/2``.
    """

    def __init__(self, bound: Bound, target, beta: float):
        self.bound, self.target, self.beta = bound, target, float(beta)
        self.system = bound.system
        self.n = 2 * bound.n
        self.half = bound.n
        self.capacitance = np.concatenate([bound.capacitance, bound.capacitance])
        self.dtype, self.u = bound.dtype, bound.u

    def split(self, z):
        z = np.atleast_2d(z)
        return z[:, : self.half], z[:, self.half :]

    def f(self, z):
        m, d = self.split(z)
        lin = self.bound.linearize(m)
        dm = lin.bound.f(m)
        dd = lin.vjp(d) - self.beta * self.system.cost_grad(m, self.target)
        return np.concatenate([dm, dd], axis=1)

    def linearize(self, z):
        m, d = self.split(z)
        lin = self.bound.linearize(m)
        scale = 1e-6 * (1 + np.max(np.abs(m)))

        def jvp(v):
            vm, vd = self.split(v)
            top = lin.jvp(vm)
            # ∂(J(m)ᵀd)/∂m · vm by central differences of vjp (second derivatives of f).
            plus = self.bound.linearize(m + scale * vm).vjp(d)
            minus = self.bound.linearize(m - scale * vm).vjp(d)
            bottom = (plus - minus) / (2 * scale) + lin.vjp(vd) - self.beta * self.system.cost_hvp(m, vm, self.target)
            return np.concatenate([top, bottom], axis=1)

        return _Linear(jvp, self.n, len(m), self.dtype)
