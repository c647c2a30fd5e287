"""Gradient estimates: the exact reference, finite differences, EP, VF, AEP, Dyadic EP.

All estimates are of ``dℓ̄/dθ`` where ``ℓ̄`` is the batch-mean cost at the
free stationary state ``x₀``, returned as one array per parameter
(``"element.param"``), shaped like it.  See ALGORITHMS.md §2–3 for the
mathematics; the phases are in :mod:`learning.phases`, the element-by-element
update rules in :mod:`learning.local`.

Every algorithm function takes the compiled system, the inputs (V) and the
targets, and optionally a free state already settled (``free=``), the
system already bound to its inputs (``bound=``, instead of ``inputs``) and
``settle_options`` (keyword arguments of :func:`simulator.settle`) used for
every phase.  With ``drop_unsettled=True`` a sample whose free or learning
phase did not settle is left out of the estimate (a device would not learn
from a measurement that never became stationary); ``diagnostics["dropped"]``
counts them, and the estimate averages over the samples kept.  Default
settling: Newton to 1e-12 A for circuits up to 256 nodes (after integrating
the free phase), else ``relax`` to 1e-8 A.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse.linalg

from simulator import Bound, CompiledSystem, SettleResult, settle

from .local import contrastive_update, linear_response_update
from .phases import AEPPhase, DyadicPhase, NudgedPhase

__all__ = [
    "ALGORITHMS",
    "Estimate",
    "NotApplicable",
    "aep",
    "compare",
    "dyadic",
    "ep",
    "estimate",
    "finite_difference_gradient",
    "free_phase",
    "reference_gradient",
    "vf",
]

NUDGING = ("symmetric", "one-sided")


class NotApplicable(ValueError):
    """The algorithm does not apply to this system (the message says why)."""


@dataclass
class Estimate:
    """A gradient estimate and how it was obtained.

    Attributes
    ----------
    algorithm : str
    grads : dict
        Parameter name → ``dℓ̄/dθ`` estimate, shaped like the parameter.
    beta : float or None
    nudging : str or None
    diagnostics : dict
        Per phase (``"free"`` when the free phase was settled here or passed
        as a :class:`~simulator.SettleResult`, then the learning phases):
        converged fraction, reasons, max residual, steps; ``A0_norm``
        (largest ``‖A₀‖₂`` over the batch); ``displacement`` (``‖x_β − x₀‖∞``).
    """

    algorithm: str
    grads: dict[str, np.ndarray]
    beta: float | None = None
    nudging: str | None = None
    diagnostics: dict = field(default_factory=dict)

    def vector(self, keys=None) -> np.ndarray:
        keys = sorted(self.grads) if keys is None else keys
        return np.concatenate([np.ravel(self.grads[k]) for k in keys])


def _settle_options(system: CompiledSystem, options: dict | None) -> dict:
    default = {"method": "newton", "tol": 1e-12} if system.n <= 256 else {"method": "relax", "tol": 1e-8}
    if options:
        default.update(options)
    return default


def _phase_summary(res: SettleResult) -> dict:
    return {
        "method": res.method,
        "converged": float(np.mean(res.converged)),
        "reasons": sorted(set(res.reason.tolist())),
        "max_residual": float(np.max(res.residual)),
        "steps": int(res.steps),
    }


def _targets(system: CompiledSystem, target, batch: int) -> np.ndarray:
    y = system._targets(np.zeros((batch, system.n)), target)
    return np.broadcast_to(y, (batch, len(system.outputs))).astype(system.dtype)


def free_phase(
    system: CompiledSystem, inputs=None, x_init=None, settle_options: dict | None = None, bound: Bound | None = None
) -> SettleResult:
    """Settle the free phase; raises if any sample does not settle.

    With the default options of a small circuit (Newton), the circuit is first
    integrated (``ode``, to 1e-8 A) so that Newton polishes the stationary
    state the dynamics actually reach, not whichever root is nearest to the
    start.

    Raises
    ------
    RuntimeError
        Naming the failure (e.g. ``oscillating``): gradients at a state that
        is not stationary mean nothing.
    """
    bound = _bound(system, inputs, bound)
    options = _settle_options(system, settle_options)
    if options["method"] == "newton" and not (settle_options and "method" in settle_options):
        warm = settle(bound, x_init, method="ode", tol=max(options["tol"], 1e-8))
        if not warm.all_converged:
            raise RuntimeError(f"the free phase did not settle: {warm.message}")
        x_init = warm.final
    res = settle(bound, x_init, **options)
    if not res.all_converged:
        raise RuntimeError(f"the free phase did not settle: {res.message}")
    return res


def _bound(system, inputs, bound):
    if bound is None:
        return system.bind(inputs)
    if inputs is not None:
        raise ValueError("give either inputs= or bound=, not both")
    if bound.system is not system:
        raise ValueError("bound= belongs to another system")
    return bound


def _prepare(system, inputs, target, free, settle_options, bound):
    """Bound system, free state ``x₀``, targets, which samples' free phase settled,
    and the diagnostics the estimate starts from (the free phase's, when it is known)."""
    bound = _bound(system, inputs, bound)
    if free is None:
        free = free_phase(system, settle_options=settle_options, bound=bound)
    if isinstance(free, SettleResult):
        x0, settled = free.final, free.converged.copy()
        diag = {"free": _phase_summary(free)}
    else:
        x0 = np.atleast_2d(free)
        settled = np.ones(len(x0), dtype=bool)
        diag = {}
    y = _targets(system, target, len(x0))
    return bound, x0, y, settled, diag


def _check_beta(beta: float, nudging: str):
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a positive number, got {beta!r}")
    if nudging not in NUDGING:
        raise ValueError(f"nudging must be one of {NUDGING}, got {nudging!r}")


def _nudged_states(make_phase, x0, beta, nudging, options, diag, name, settled):
    """Settle the learning phase(s); ``settled`` is and-ed with each phase's convergence."""
    betas = (beta, -beta) if nudging == "symmetric" else (beta,)
    states = {}
    for b in betas:
        res = settle(make_phase(b), x0, **options)
        diag[f"{name}(beta={b:+g})"] = _phase_summary(res)
        states[b] = res.final
        settled &= res.converged
    return states


def _keep(settled: np.ndarray, drop_unsettled: bool, diag: dict) -> tuple[np.ndarray, int]:
    """Samples that enter the update, and how many (at least 1, for the normalisation)."""
    keep = settled if drop_unsettled else np.ones_like(settled)
    diag["dropped"] = int(np.sum(~keep))
    return keep, max(int(np.sum(keep)), 1)


def _response(states, x0, beta, nudging):
    if nudging == "symmetric":
        return (states[beta] - states[-beta]) / (2 * beta)
    return (states[beta] - x0) / beta


def _a0_norm(lin0, n) -> float:
    if n > 256:
        return float("nan")
    J = lin0.dense()
    return float(max(np.linalg.norm((Jb - Jb.T) / 2, 2) for Jb in J))


def reference_gradient(
    system: CompiledSystem,
    inputs=None,
    target=None,
    free: SettleResult | np.ndarray | None = None,
    solver: str = "auto",
    settle_options: dict | None = None,
    bound: Bound | None = None,
) -> Estimate:
    """Exact gradient by implicit differentiation: ``Jᵀλ = −∇ℓ``, ``g = λᵀ ∂f/∂θ``.

    Parameters
    ----------
    solver
        ``"dense"`` (batched LU of ``Jᵀ``), ``"krylov"`` (GMRES on ``vjp``,
        matrix-free) or ``"auto"`` (dense up to 256 nodes).
    """
    if solver not in ("auto", "dense", "krylov"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'krylov', got {solver!r}")
    bound, x0, y, _, _ = _prepare(system, inputs, target, free, settle_options, bound)
    lin0 = bound.linearize(x0)
    rhs = -system.cost_grad(x0, y)
    B, n = x0.shape
    if solver == "dense" or (solver == "auto" and n <= 256):
        JT = np.swapaxes(lin0.dense(), 1, 2).astype(float)
        lam = np.linalg.solve(JT, rhs.astype(float)[..., None])[..., 0]
        info = 0
    else:
        op = scipy.sparse.linalg.LinearOperator(
            (B * n, B * n),
            dtype=float,
            matvec=lambda w: lin0.vjp(w.reshape(B, n).astype(system.dtype)).astype(float).ravel(),
        )
        lam, info = scipy.sparse.linalg.gmres(
            op, rhs.astype(float).ravel(), rtol=1e-12, restart=min(B * n, 200), maxiter=100
        )
        lam = lam.reshape(B, n)
    residual = float(np.max(np.abs(lin0.vjp(lam.astype(system.dtype)) - rhs)))
    # g = λᵀ ∂f/∂θ = −(−λ)ᵀ ∂f/∂θ: the linear-response rule with s = −λ.
    grads = linear_response_update(lin0, -lam.astype(system.dtype))
    return Estimate("reference", grads, diagnostics={"adjoint": lam, "adjoint_residual": residual, "gmres_info": info})


def finite_difference_gradient(
    system: CompiledSystem,
    inputs=None,
    target=None,
    params: list[str] | None = None,
    eps: float = 1e-5,
    max_entries: int | None = None,
    seed: int = 0,
    settle_options: dict | None = None,
) -> Estimate:
    """Central differences of the batch-mean cost of the re-settled state.

    Each parameter entry is moved by ``±eps`` (relative to ``max(1, |θ|)``),
    the circuit re-settled from ``x₀`` and ``ℓ̄`` re-evaluated.  Entries not
    checked (when ``max_entries`` limits a large array) are NaN.

    Parameters
    ----------
    params
        Parameter names (default: the trainable ones).
    max_entries
        At most this many randomly chosen entries per parameter.
    """
    options = {"method": "newton", "tol": 1e-14, **(settle_options or {})}
    # The state the dynamics reach (not the root nearest to zero), polished to tol.
    start = free_phase(system, inputs, settle_options=settle_options).final
    free = settle(system, start, inputs=inputs, **options)
    if not free.all_converged:
        raise RuntimeError(f"finite differences: polishing the free state failed: {free.message}")
    x0 = free.final
    y = _targets(system, target, len(x0))
    params = [k for k in system.params if system.trainable[k]] if params is None else params
    rng = np.random.default_rng(seed)
    grads = {}
    for key in params:
        if key not in system.params:
            raise KeyError(f"no parameter {key!r}")
        p = system.params[key]
        g = np.full(p.shape, np.nan)
        flat = np.arange(p.size)
        if max_entries is not None and p.size > max_entries:
            flat = rng.choice(p.size, max_entries, replace=False)
        for idx in flat:
            i = np.unravel_index(idx, p.shape)
            old = float(p[i])
            h = eps * max(1.0, abs(old))
            vals = []
            for sign in (1, -1):
                p[i] = old + sign * h
                system.touch()
                res = settle(system, x0, inputs=inputs, **options)
                if not res.all_converged:
                    p[i] = old
                    system.touch()
                    raise RuntimeError(
                        f"finite differences: re-settling with {key}{list(i)} moved failed: {res.message}"
                    )
                vals.append(float(np.mean(system.cost_value(res.final, y))))
            p[i] = old
            system.touch()
            g[i] = (vals[0] - vals[1]) / (2 * h)
        grads[key] = g
    return Estimate("finite_differences", grads, diagnostics={"eps": eps})


def ep(
    system,
    inputs=None,
    target=None,
    beta=1e-3,
    nudging="symmetric",
    free=None,
    settle_options=None,
    bound=None,
    drop_unsettled=False,
) -> Estimate:
    """Equilibrium Propagation (conservative systems only): the contrastive Hebbian rule.

    Raises
    ------
    NotApplicable
        If any element is non-reciprocal (named) or lacks an energy law.
    """
    _check_beta(beta, nudging)
    bad = system.circuit.nonreciprocal_elements
    if bad:
        raise NotApplicable(
            "EP needs a conservative system (f = −∇E), but these elements are non-reciprocal: "
            + ", ".join(bad[:10])
            + (" …" if len(bad) > 10 else "")
            + "; use AEP or Dyadic EP"
        )
    try:
        system.require_energy()
    except ValueError as err:
        raise NotApplicable(f"EP: {err}") from None
    options = _settle_options(system, settle_options)
    bound, x0, y, settled, diag = _prepare(system, inputs, target, free, options, bound)
    states = _nudged_states(lambda b: NudgedPhase(bound, y, b), x0, beta, nudging, options, diag, "nudged", settled)
    keep, count = _keep(settled, drop_unsettled, diag)
    x_a, x_b, b_b = (states[beta], states[-beta], -beta) if nudging == "symmetric" else (states[beta], x0, 0.0)
    # A dropped sample contributes nothing: both of its states are taken equal.
    x_a = np.where(keep[:, None], x_a, x_b)
    grads = contrastive_update(bound, x_a, x_b, beta, b_b, count=count)
    diag["displacement"] = float(max(np.max(np.abs(s - x0)) for s in states.values()))
    return Estimate("ep", grads, beta, nudging, diag)


def _linear_response(
    name, make_phase, system, inputs, target, beta, nudging, free, settle_options, bound, drop_unsettled
):
    """VF and AEP: settle the learning phase(s) from ``x₀``, then ``g = −sᵀ ∂f/∂θ(x₀)``."""
    _check_beta(beta, nudging)
    options = _settle_options(system, settle_options)
    bound, x0, y, settled, diag = _prepare(system, inputs, target, free, options, bound)
    lin0 = bound.linearize(x0)
    states = _nudged_states(
        lambda b: make_phase(bound, y, b, x0, lin0), x0, beta, nudging, options, diag, name, settled
    )
    keep, count = _keep(settled, drop_unsettled, diag)
    s = np.where(keep[:, None], _response(states, x0, beta, nudging), 0)
    grads = linear_response_update(lin0, s, count=count)
    diag["displacement"] = float(max(np.max(np.abs(x - x0)) for x in states.values()))
    diag["A0_norm"] = _a0_norm(lin0, system.n)
    return Estimate(name, grads, beta, nudging, diag)


def vf(
    system,
    inputs=None,
    target=None,
    beta=1e-3,
    nudging="symmetric",
    free=None,
    settle_options=None,
    bound=None,
    drop_unsettled=False,
) -> Estimate:
    """Vector-field EP: EP's nudged phase, update ``−sᵀ ∂f/∂θ(x₀)``; biased when ``A ≠ 0``."""
    return _linear_response(
        "vf",
        lambda bd, y, b, x0, lin0: NudgedPhase(bd, y, b),
        system,
        inputs,
        target,
        beta,
        nudging,
        free,
        settle_options,
        bound,
        drop_unsettled,
    )


def aep(
    system,
    inputs=None,
    target=None,
    beta=1e-3,
    nudging="symmetric",
    free=None,
    settle_options=None,
    bound=None,
    drop_unsettled=False,
) -> Estimate:
    """Asymmetric EP: the learning phase adds ``−2A₀(x − x₀)``; exact as β → 0."""
    return _linear_response(
        "aep",
        lambda bd, y, b, x0, lin0: AEPPhase(bd, y, b, x0, lin0),
        system,
        inputs,
        target,
        beta,
        nudging,
        free,
        settle_options,
        bound,
        drop_unsettled,
    )


def dyadic(
    system,
    inputs=None,
    target=None,
    beta=1e-3,
    nudging="one-sided",
    free=None,
    settle_options=None,
    bound=None,
    drop_unsettled=False,
) -> Estimate:
    """Dyadic EP: settle the doubled state ``(m, d)``; ``g = −(d*/β)ᵀ ∂f/∂θ(m*)``, exact for every β.

    ``nudging`` is accepted for a uniform interface; the estimate is linear
    in β, so one phase suffices and ``"symmetric"`` gives the same result.
    """
    _check_beta(beta, nudging)
    options = _settle_options(system, settle_options)
    bound, x0, y, settled, diag = _prepare(system, inputs, target, free, options, bound)
    phase = DyadicPhase(bound, y, beta)
    z0 = np.concatenate([x0, np.zeros_like(x0)], axis=1)
    res = settle(phase, z0, **options)
    m, d = phase.split(res.final)
    diag["dyadic"] = _phase_summary(res)
    diag["dyad_difference"] = float(np.max(np.abs(d)))
    diag["midpoint_drift"] = float(np.max(np.abs(m - x0)))
    keep, count = _keep(settled & res.converged, drop_unsettled, diag)
    grads = linear_response_update(bound.linearize(m), np.where(keep[:, None], d / beta, 0), count=count)
    return Estimate("dyadic", grads, beta, "one-sided", diag)


ALGORITHMS = {"ep": ep, "vf": vf, "aep": aep, "dyadic": dyadic}


def estimate(algorithm: str, system, inputs=None, target=None, **kwargs) -> Estimate:
    """Run ``algorithm`` (``ep``, ``vf``, ``aep``, ``dyadic``, ``reference``)."""
    if algorithm == "reference":
        return reference_gradient(system, inputs, target, **kwargs)
    try:
        fn = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown algorithm {algorithm!r}; valid: reference, {', '.join(ALGORITHMS)}") from None
    return fn(system, inputs, target, **kwargs)


def compare(est: Estimate, ref: Estimate) -> dict[str, float]:
    """Relative error ``‖g − g_ref‖/‖g_ref‖`` and cosine similarity over the parameters both have."""
    keys = sorted(set(ref.grads) & set(est.grads))
    a, b = est.vector(keys), ref.vector(keys)
    nb = np.linalg.norm(b)
    rel = float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a))
    na = np.linalg.norm(a)
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")
    return {"rel_error": rel, "cosine": cos}
