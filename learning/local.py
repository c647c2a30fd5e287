"""Local update rules: each element group computes its own update.

A group (one element, or an array of elements of one type) reads the values
at *its own terminals* only — the free state ``x₀``, nudged states, or the
dyad difference — plus broadcast scalars (β, the batch size).  Nothing here
forms a global gradient and scatters it: the update of a group is a function
of what a device at that group's terminals could measure.

* :func:`contrastive_update` (EP): ``Δθ_e ∝ [∂E_e/∂θ_e(x_a) − ∂E_e/∂θ_e(x_b)] / (β_a − β_b)``,
  the contrastive Hebbian rule (e.g. ``ρ(x_a)ρ(x_b)|β − ρρ|0`` for a coupling).
* :func:`linear_response_update` (VF, AEP, Dyadic EP):
  ``g_e = −sᵀ ∂i_e/∂θ_e(x₀)`` with ``s`` restricted to the group's terminals.

Both return the gradient estimate of the batch-mean cost, per parameter,
shaped like it; a learning rule then applies ``θ ← θ − η g`` element by
element.
"""

from __future__ import annotations

import numpy as np

from simulator.compiled import Bound, Linearization

__all__ = ["contrastive_update", "linear_response_update"]


def linear_response_update(lin0: Linearization, s: np.ndarray, count: int | None = None) -> dict[str, np.ndarray]:
    """``g_θ = −(1/B) Σ_batch sᵀ ∂f/∂θ(x₀)``, computed group by group.

    Parameters
    ----------
    lin0
        Linearisation at the free stationary state ``x₀``; each group's part
        holds only its own terminal values.
    s
        Response ``(x_β − x₀)/β`` (or the symmetric quotient, or ``d*/β``),
        shape ``(batch, n)`` (V per unit β).
    count
        Number of samples the mean is over (default: the batch size).
    """
    s = np.atleast_2d(s)
    batch = len(s) if count is None else count
    grads = {}
    for group, part in zip(lin0.groups, lin0.parts):
        # part.param_vjp reads s at this group's terminals only.
        grads.update(group.split({p: -g / batch for p, g in part.param_vjp(s).items()}))
    return grads


def contrastive_update(
    bound: Bound, x_a: np.ndarray, x_b: np.ndarray, beta_a: float, beta_b: float, count: int | None = None
) -> dict[str, np.ndarray]:
    """EP's rule ``g_θ = (1/B) [∂E/∂θ(x_a) − ∂E/∂θ(x_b)] / (β_a − β_b)``, group by group.

    Parameters
    ----------
    bound
        The bound system (every element must have an energy law).
    x_a, x_b
        Stationary states at nudging ``β_a`` and ``β_b`` (e.g. ``x_β`` and
        ``x₀``, or ``x_{+β}`` and ``x_{−β}``).
    count
        Number of samples the mean is over (default: the batch size).
    """
    bound.system.require_energy()
    x_a, x_b = np.atleast_2d(x_a), np.atleast_2d(x_b)
    batch = len(x_a) if count is None else count
    scale = 1.0 / ((beta_a - beta_b) * batch)
    grads = {}
    ctx_a, ctx_b = bound.context(x_a), bound.context(x_b)
    for group, part in zip(bound.system.groups, bound.parts):
        # Each group evaluates ∂E/∂θ from its own terminals at both states.
        ga, gb = part.energy_param_grad(ctx_a), part.energy_param_grad(ctx_b)
        grads.update(group.split({p: (ga[p] - gb[p]) * scale for p in ga}))
    return grads
