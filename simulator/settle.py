"""Settling to stationary states: one entry point, three methods, one result.

``settle(dynamics, x0, method=...)`` drives ``C ẋ = f(x)`` to a state where
the residual ``‖f(x)‖∞`` (A) is below ``tol``, for every sample of a batch:

``"ode"``
    :func:`scipy.integrate.solve_ivp` (RK45, LSODA, BDF, Radau; analytic
    Jacobian for small circuits), run until the residual falls below ``tol``:
    the faithful emulation of the hardware.
``"relax"``
    Fixed-step explicit integration: a clocked emulator, and the fast path
    for training.  ``scheme="euler"`` steps ``x ← x + dt C⁻¹ f(x)``;
    ``scheme="rk4"`` takes classical Runge–Kutta steps (four evaluations of
    ``f`` each), whose stability region reaches the imaginary axis: circuits
    with strongly non-reciprocal couplings relax through damped oscillations
    (eigenvalues ``λ = −a ± ib`` of ``C⁻¹J`` with ``b ≫ a``) that Euler only
    follows with ``dt < 2a/|λ|²``.
``"newton"``
    Damped Newton iteration (dense solves for small circuits, GMRES on
    ``jvp`` for large ones).  It finds stationary points whatever their
    stability, so it checks the eigenvalues of ``C⁻¹J`` and reports an
    unstable one as such.

Failure is never silent: each sample gets a ``reason`` — ``converged``,
``max_steps``/``max_time``/``max_iterations``, ``diverged`` (``‖x‖∞`` above
``divergence``), ``nonfinite``, ``oscillating`` (bounded but the residual
stops shrinking: a limit cycle, chaos, or an Euler step too large for the
circuit — then try a smaller ``dt``), ``unstable`` (a stationary point the
circuit would leave: ``C⁻¹J`` has an eigenvalue with positive real part) or
``solver_failed``.  The ``state`` of a sample that did not settle is NaN; the
last state reached is always in ``final``.

``dynamics`` is anything with ``n``, ``capacitance``, ``dtype`` and ``f(x)``;
``linearize(x)`` (returning an object with ``jvp`` and ``dense``) is used
when present.  A :class:`~simulator.compiled.CompiledSystem` is bound to
``inputs`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.integrate
import scipy.sparse
import scipy.sparse.linalg

from .compiled import CompiledSystem

__all__ = ["METHODS", "SCHEMES", "SettleResult", "Trajectory", "settle", "time_scale"]

METHODS = ("ode", "relax", "newton")
ODE_METHODS = ("RK45", "RK23", "DOP853", "LSODA", "BDF", "Radau")
SCHEMES = ("euler", "rk4")
DENSE_LIMIT = 64  # circuits up to this many nodes use dense Jacobians and eigenvalues


@dataclass
class Trajectory:
    """Recorded settling: times (s, or iteration number for Newton), states, residuals."""

    t: np.ndarray  # (T,)
    x: np.ndarray  # (T, batch, n)
    residual: np.ndarray  # (T, batch)


@dataclass
class SettleResult:
    """Outcome of :func:`settle`.

    Attributes
    ----------
    method : str
    state : ndarray (batch, n)
        Stationary states; rows that did not settle are NaN.
    final : ndarray (batch, n)
        The last state each sample reached (for diagnostics and warm starts).
    converged : ndarray of bool (batch,)
    reason : ndarray of str (batch,)
        Why each sample stopped (see the module docstring).
    residual : ndarray (batch,)
        ``‖f(final)‖∞`` (A).
    steps : int
        Euler steps, right-hand-side evaluations (ode) or Newton iterations.
    time : float or None
        Simulated time reached (s); ``None`` for Newton.
    max_real_eigenvalue : ndarray or None
        Newton only: largest real part of the eigenvalues of ``C⁻¹J`` (1/s).
    trajectory : Trajectory or None
        When ``record=True``.
    message : str
        One-line summary.
    """

    method: str
    state: np.ndarray
    final: np.ndarray
    converged: np.ndarray
    reason: np.ndarray
    residual: np.ndarray
    steps: int
    time: float | None
    tol: float
    max_real_eigenvalue: np.ndarray | None = None
    trajectory: Trajectory | None = None
    extra: dict = field(default_factory=dict)

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))

    @property
    def message(self) -> str:
        reasons, counts = np.unique(self.reason, return_counts=True)
        parts = ", ".join(f"{c} {r}" for r, c in zip(reasons, counts))
        return f"{self.method}: {parts} (max residual {np.max(self.residual):.3g} A, tol {self.tol:g})"

    def __repr__(self):
        return f"<SettleResult {self.message}>"


def _as_dynamics(dynamics, inputs):
    if isinstance(dynamics, CompiledSystem):
        return dynamics.bind(inputs)
    if inputs is not None:
        raise ValueError("inputs= is only accepted with a CompiledSystem; this dynamics is already bound")
    for attr in ("n", "capacitance", "f"):
        if not hasattr(dynamics, attr):
            raise TypeError(f"cannot settle {type(dynamics).__name__}: it has no {attr!r}")
    return dynamics


def _batch(dyn) -> int:
    u = getattr(dyn, "u", None)
    return len(u) if u is not None else 1


def _residual(F: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        r = np.max(np.abs(F), axis=1)
    return np.where(np.isfinite(r), r, np.inf)


def _linearize(dyn, x):
    if hasattr(dyn, "linearize"):
        return dyn.linearize(x)
    return _FiniteDifferenceLinearization(dyn, x)


class _FiniteDifferenceLinearization:
    """``J v`` by central differences, for dynamics without analytic ``jvp``."""

    def __init__(self, dyn, x):
        self.dyn, self.x = dyn, x

    def jvp(self, v):
        scale = np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
        eps = 1e-6 * (1 + np.linalg.norm(self.x, axis=1, keepdims=True)) / scale
        return (self.dyn.f(self.x + eps * v) - self.dyn.f(self.x - eps * v)) / (2 * eps)

    def dense(self):
        B, n = self.x.shape
        J = np.empty((B, n, n))
        e = np.zeros((B, n))
        for j in range(n):
            e[:, j] = 1
            J[:, :, j] = self.jvp(e)
            e[:, j] = 0
        return J


def _spectral_radius(dyn, x) -> float:
    """Largest |eigenvalue| of ``C⁻¹J`` at ``x`` (1/s), a fast time scale."""
    lin = _linearize(dyn, x)
    invC = 1.0 / np.asarray(dyn.capacitance, dtype=float)
    if dyn.n <= DENSE_LIMIT:
        J = lin.dense() * invC[None, :, None]
        with np.errstate(all="ignore"):
            ev = np.linalg.eigvals(J)
        r = np.max(np.abs(ev)) if np.all(np.isfinite(ev)) else np.nan
    else:
        rng = np.random.default_rng(0)
        v = rng.standard_normal(x.shape)
        r = np.nan
        for _ in range(30):
            w = lin.jvp(v) * invC
            nv = np.linalg.norm(w, axis=1)
            r = float(np.max(nv / np.maximum(np.linalg.norm(v, axis=1), 1e-300)))
            v = w / np.maximum(nv[:, None], 1e-300)
    return float(r) if np.isfinite(r) and r > 0 else 1.0


def _stable_dt(dyn, x, scheme: str = "euler") -> float:
    """A stable step at ``x``: half the largest stable Euler step, or ``1/ρ(C⁻¹J)``
    for RK4 (the disc ``|dt λ| ≤ 1`` in the left half-plane lies inside its region)."""
    if scheme == "rk4":
        return 1.0 / _spectral_radius(dyn, x)
    invC = 1.0 / np.asarray(dyn.capacitance, dtype=float)
    if dyn.n <= DENSE_LIMIT:
        with np.errstate(all="ignore"):
            J = _finite_samples(_linearize(dyn, x).dense() * invC[None, :, None])
            ev = np.linalg.eigvals(J).ravel()
        ev = ev[np.isfinite(ev) & (ev.real < 0)]
        if len(ev):
            # |1 + dt λ| < 1  ⇔  dt < 2|Re λ| / |λ|²
            return float(0.5 * np.min(2 * np.abs(ev.real) / np.abs(ev) ** 2))
    return 0.5 / _spectral_radius(dyn, x)


def _finite_samples(J: np.ndarray) -> np.ndarray:
    """The samples of a batch of Jacobians that are finite (NaN ones end as ``nonfinite``)."""
    return J[np.all(np.isfinite(J), axis=(1, 2))]


def _time_scales(dyn, x) -> tuple[float, float, float]:
    """``(τ_fast, τ_slow, G)``: fastest and slowest stable time constants (s) of
    ``C⁻¹J`` at ``x`` and the conductance scale ``G`` (S) of ``J`` (largest
    absolute row sum), which turns a state error into a residual."""
    invC = 1.0 / np.asarray(dyn.capacitance, dtype=float)
    if dyn.n <= DENSE_LIMIT:
        with np.errstate(all="ignore"):
            J = _finite_samples(_linearize(dyn, x).dense().astype(float))
            ev = np.linalg.eigvals(J * invC[None, :, None]).ravel()
        G = float(np.max(np.sum(np.abs(J), axis=2), initial=0.0))
        ev = ev[np.isfinite(ev)]
        if len(ev) and np.max(np.abs(ev)) > 0:
            fast = 1.0 / float(np.max(np.abs(ev)))
            stable = ev[ev.real < 0]
            slow = 1.0 / float(np.min(np.abs(stable.real))) if len(stable) else 100 * fast
            return fast, max(slow, fast), G if G > 0 else 1.0
        return 1.0, 1.0, G if G > 0 else 1.0
    rho = _spectral_radius(dyn, x)
    cmin = float(np.min(dyn.capacitance))
    return 1.0 / rho, 100.0 / rho, rho * cmin


def time_scale(dynamics, x0=None, inputs=None) -> float:
    """The fastest time constant ``1/ρ(C⁻¹J)`` (s) at ``x0`` (zeros by default)."""
    dyn = _as_dynamics(dynamics, inputs)
    x = np.zeros((_batch(dyn), dyn.n), dtype=dyn.dtype) if x0 is None else np.atleast_2d(x0)
    return 1.0 / _spectral_radius(dyn, x)


class _Monitor:
    """Flags samples that keep moving without settling (sustained oscillation).

    Called once per window with the residuals seen in it.  A sample is
    ``oscillating`` after ``windows`` consecutive windows in which its
    smallest residual is no better than ``1 − progress`` times the best seen
    before and stays above ``100 tol``: its state is bounded (divergence is
    caught separately) yet ``C ẋ = f`` does not go to zero — a limit cycle, a
    discrete flip of an Euler step too large for the circuit, or chaos.
    Convergence that makes any steady progress is never flagged.
    """

    def __init__(self, batch: int, progress=1e-3, windows=4):
        self.best = np.full(batch, np.inf)
        self.count = np.zeros(batch, dtype=int)
        self.progress, self.windows = progress, windows

    def update(self, res: np.ndarray, tol: float) -> np.ndarray:
        lo = res.min(axis=0)
        # Near tol the residual is numerical noise, not an oscillation.
        stuck = (lo >= (1 - self.progress) * self.best) & (lo > 100 * tol)
        self.count = np.where(stuck, self.count + 1, 0)
        self.best = np.minimum(self.best, lo)
        return self.count >= self.windows


def settle(
    dynamics,
    x0: np.ndarray | None = None,
    *,
    method: str = "ode",
    tol: float = 1e-8,
    inputs: np.ndarray | None = None,
    dt: float | None = None,
    scheme: str = "euler",
    max_steps: int = 100_000,
    t_max: float | None = None,
    ode_method: str = "RK45",
    max_iterations: int = 50,
    divergence: float = 1e6,
    record: bool = False,
    check_stability: bool = True,
) -> SettleResult:
    """Settle ``C ẋ = f(x)`` to a stationary state.

    Parameters
    ----------
    dynamics
        A :class:`~simulator.compiled.CompiledSystem` (bound to ``inputs``),
        a bound system, or any learning-phase dynamics.
    x0
        Start state ``(batch, n)`` or ``(n,)`` (V); zeros by default.  Pass a
        previous stationary state to warm-start.
    method
        ``"ode"``, ``"relax"`` or ``"newton"``.
    tol
        Residual tolerance on ``‖f‖∞`` (A).
    inputs
        Clamped inputs (V) when ``dynamics`` is a compiled system.
    dt
        Step (s) for ``relax``; default: for Euler half the largest stable
        step of the linearisation at ``x0``, for RK4 ``1/ρ(C⁻¹J)``.
    scheme
        ``relax`` integration scheme: ``"euler"`` or ``"rk4"``.
    max_steps
        Step limit for ``relax`` (an RK4 step evaluates ``f`` four times).
    t_max
        Time limit (s) for ``ode``; default ``1e4`` fastest time constants.
    ode_method
        ``solve_ivp`` method: RK45, RK23, DOP853, LSODA, BDF or Radau.
    max_iterations
        Iteration limit for ``newton``.
    divergence
        A sample with ``‖x‖∞`` above this (V) is reported ``diverged``.
    record
        Keep the trajectory (times, states, residuals).
    check_stability
        Report stationary points where ``C⁻¹J`` has an eigenvalue with
        positive real part as ``unstable`` (always for Newton; for ode and
        relax, which reach one only by starting on it, when the circuit has
        at most 256 nodes, where the check is cheap).

    Returns
    -------
    SettleResult
    """
    if method not in METHODS:
        raise ValueError(f"unknown settling method {method!r}; valid: {', '.join(METHODS)}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown relax scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number (A), got {tol!r}")
    dyn = _as_dynamics(dynamics, inputs)
    if x0 is None:
        x = np.zeros((_batch(dyn), dyn.n), dtype=dyn.dtype)
    else:
        x = np.array(x0, dtype=dyn.dtype, ndmin=2)
        if x.shape[-1] != dyn.n or x.ndim != 2:
            raise ValueError(f"x0 must have shape (batch, {dyn.n}) or ({dyn.n},), got {np.shape(x0)}")
        if _batch(dyn) not in (1, len(x)):
            raise ValueError(f"x0 has batch {len(x)} but the inputs have batch {_batch(dyn)}")
        if _batch(dyn) > len(x):
            x = np.repeat(x, _batch(dyn), axis=0)
    if method == "relax":
        result = _relax(dyn, x, tol, dt, scheme, max_steps, divergence, record)
    elif method == "ode":
        if ode_method not in ODE_METHODS:
            raise ValueError(f"unknown ode_method {ode_method!r}; valid: {', '.join(ODE_METHODS)}")
        result = _ode(dyn, x, tol, t_max, ode_method, divergence, record)
    else:
        result = _newton(dyn, x, tol, max_iterations, divergence, record)
    # Newton finds stationary points whatever their stability; ode and relax
    # can only sit on an unstable one if they start exactly there.
    if check_stability and (method == "newton" or dyn.n <= 4 * DENSE_LIMIT):
        _flag_unstable(dyn, result)
    result.state = np.where(result.converged[:, None], result.final, np.nan)
    return result


def _finish(method, x, F, tol, reason, steps, time, divergence, traj=None, **kw) -> SettleResult:
    res = _residual(F)
    reason = np.array(reason, dtype=object)
    finite = np.all(np.isfinite(x), axis=1) & np.isfinite(res)
    reason[~finite] = "nonfinite"
    big = finite & (np.max(np.abs(np.where(np.isfinite(x), x, 0)), axis=1) > divergence)
    reason[big & (reason != "nonfinite")] = "diverged"
    ok = finite & ~big & (res < tol) & (reason != "unstable") & (reason != "oscillating")
    reason[ok] = "converged"
    return SettleResult(
        method=method,
        state=x,
        final=x,
        converged=ok,
        reason=reason.astype(str),
        residual=res,
        steps=steps,
        time=time,
        tol=tol,
        trajectory=traj,
        **kw,
    )


def _relax(dyn, x, tol, dt, scheme, max_steps, divergence, record) -> SettleResult:
    if dt is None:
        dt = _stable_dt(dyn, x, scheme)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    scale = (dt / np.asarray(dyn.capacitance, dtype=float)).astype(dyn.dtype)
    x = x.copy()
    B = len(x)
    window = 200
    monitor = _Monitor(B)
    flagged = np.zeros(B, dtype=bool)  # stopped: non-finite, diverged or oscillating
    oscillating = np.zeros(B, dtype=bool)
    hist = np.empty((window, B))
    rec_t, rec_x, rec_r = [], [], []
    stride = max(1, max_steps // 2000)
    step = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            F = dyn.f(x)
            res = _residual(F)
            if record and step % stride == 0:
                rec_t.append(step * dt)
                rec_x.append(x.copy())
                rec_r.append(res)
            # A non-finite state gives a non-finite residual.
            bad = ~np.isfinite(res) | (np.max(np.abs(x), axis=1) > divergence)
            flagged |= bad
            done = (res < tol) | flagged
            if done.all() or step >= max_steps:
                break
            hist[step % window] = res
            step += 1
            if step % window == 0:
                osc = monitor.update(hist, tol) & ~flagged & (res >= tol)
                oscillating |= osc
                flagged |= osc
            if scheme == "rk4":
                k1 = F * scale
                k2 = dyn.f(x + 0.5 * k1) * scale
                k3 = dyn.f(x + 0.5 * k2) * scale
                k4 = dyn.f(x + k3) * scale
                F = (k1 + 2 * k2 + 2 * k3 + k4) / 6
            else:
                np.multiply(F, scale, out=F)
            if flagged.any():
                F[flagged] = 0
            x += F
    if record and rec_t[-1] != step * dt:
        rec_t.append(step * dt)
        rec_x.append(x.copy())
        rec_r.append(res)
    reason = np.where(oscillating, "oscillating", "max_steps")
    traj = Trajectory(np.array(rec_t), np.array(rec_x), np.array(rec_r)) if record else None
    out = _finish("relax", x, F, tol, reason, step, step * dt, divergence, traj)
    out.extra["dt"] = dt
    out.extra["scheme"] = scheme
    return out


def _ode(dyn, x, tol, t_max, ode_method, divergence, record) -> SettleResult:
    B, n = x.shape
    invC = 1.0 / np.asarray(dyn.capacitance, dtype=float)
    with np.errstate(all="ignore"):
        F0 = dyn.f(x)
    # Samples whose currents are not finite at the start cannot be integrated (one NaN
    # would stall the solver for the whole batch): they stay put and end as 'nonfinite'.
    dead = ~(np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(F0), axis=1))
    start = x
    if dead.any():
        x = np.where(dead[:, None], x[np.argmin(dead)] if not dead.all() else 0, x).astype(dyn.dtype)
    tau_fast, tau_slow, conductance = _time_scales(dyn, x)
    if t_max is None:
        t_max = 1e3 * tau_slow
    if not (np.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max must be a positive number of seconds, got {t_max!r}")
    # Integrate in chunks that grow geometrically: the oscillation monitor
    # looks at the residuals of each chunk.
    chunk = min(t_max, 20 * tau_fast)
    nfev = 0
    seen_t, seen_r = [], []

    def rhs(t, y):
        nonlocal nfev
        nfev += 1
        F = dyn.f(y.reshape(B, n).astype(dyn.dtype, copy=False))
        F[dead] = 0
        return (F * invC).ravel().astype(float)

    def converged_event(t, y):
        F = dyn.f(y.reshape(B, n).astype(dyn.dtype, copy=False))
        r = np.where(dead, 0.0, _residual(F))
        seen_t.append(t)
        seen_r.append(r)
        m = float(np.max(r))
        return m - tol / 2 if np.isfinite(m) else -1.0

    converged_event.terminal = True
    converged_event.direction = -1

    def diverged_event(t, y):
        m = np.max(np.abs(y))
        return divergence - m if np.isfinite(m) else -1.0

    diverged_event.terminal = True

    # Integration error must stay well below tol in residual terms:
    # |f| ≲ G |δx|, so ask for |δx| ≲ 0.1 tol / G.
    atol = float(np.clip(0.1 * tol / conductance, 1e-14, 1e-6))
    scale = max(1.0, float(np.max(np.abs(x))))
    options = {"rtol": float(np.clip(atol / scale, 1e-13, 1e-6)), "atol": atol}
    if n * B <= 4 * DENSE_LIMIT and hasattr(dyn, "linearize") and ode_method in ("BDF", "Radau", "LSODA"):

        def jac(t, y):
            J = dyn.linearize(y.reshape(B, n).astype(dyn.dtype)).dense() * invC[None, :, None]
            return scipy.sparse.block_diag(list(J)).toarray() if B > 1 else J[0]

        options["jac"] = jac

    y = x.ravel().astype(float)
    t = 0.0
    monitor = _Monitor(B)
    flagged = np.full(B, "", dtype=object)
    rec_t, rec_x = [0.0], [start.copy()]
    rec_r = [_residual(F0)]
    failure = None
    with np.errstate(over="ignore", invalid="ignore"):
        if dead.all() or np.max(_residual(F0)) < tol:
            t_max = 0.0
        while t < t_max:
            seen_t.clear()
            seen_r.clear()
            t_end = min(t + chunk, t_max)
            sol = scipy.integrate.solve_ivp(
                rhs, (t, t_end), y, method=ode_method, events=[converged_event, diverged_event], **options
            )
            if record:
                for k in range(1, sol.y.shape[1]):
                    xs = sol.y[:, k].reshape(B, n)
                    rec_t.append(sol.t[k])
                    rec_x.append(xs)
                    rec_r.append(_residual(dyn.f(xs.astype(dyn.dtype))))
            y = sol.y[:, -1]
            t = float(sol.t[-1])
            chunk = min(2 * chunk, max(t_max / 10, chunk))
            if sol.status == -1:
                failure = sol.message
                break
            if sol.status == 1:
                break
            if seen_r:
                osc = monitor.update(np.array(seen_r), tol)
                flagged[osc & (flagged == "")] = "oscillating"
                if np.all(flagged != ""):
                    break
    xf = np.where(dead[:, None], start, y.reshape(B, n)).astype(dyn.dtype)
    with np.errstate(all="ignore"):
        F = dyn.f(xf)
    reason = np.where(flagged == "oscillating", "oscillating", "max_time" if failure is None else "solver_failed")
    traj = Trajectory(np.array(rec_t), np.array(rec_x), np.array(rec_r)) if record else None
    out = _finish("ode", xf, F, tol, reason, nfev, t, divergence, traj)
    if failure:
        out.extra["solver_message"] = failure
    out.extra["ode_method"] = ode_method
    return out


def _solve_linear(dyn, lin, F, x):
    """Newton step ``δ`` with ``J δ = −F`` per sample."""
    B, n = x.shape
    if n <= DENSE_LIMIT * 4:
        J = lin.dense().astype(float)
        rhs = -F.astype(float)
        try:
            return np.linalg.solve(J, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            return np.stack([np.linalg.lstsq(J[b], rhs[b], rcond=None)[0] for b in range(B)])

    def mv(v):
        return lin.jvp(v.reshape(B, n).astype(dyn.dtype)).astype(float).ravel()

    op = scipy.sparse.linalg.LinearOperator((B * n, B * n), matvec=mv, dtype=float)
    delta, _ = scipy.sparse.linalg.gmres(op, -F.astype(float).ravel(), rtol=1e-10, restart=min(200, B * n), maxiter=20)
    return delta.reshape(B, n)


def _max_real_eigenvalue(dyn, x) -> np.ndarray:
    """Largest real part of the eigenvalues of ``C⁻¹J`` per sample (1/s)."""
    invC = 1.0 / np.asarray(dyn.capacitance, dtype=float)
    lin = _linearize(dyn, x)
    B, n = x.shape
    if n <= 4 * DENSE_LIMIT:
        J = lin.dense().astype(float) * invC[None, :, None]
        return np.array([np.max(np.linalg.eigvals(Jb).real) for Jb in J])
    out = []
    for b in range(B):

        def mv(v, b=b):
            t = np.zeros((B, n), dtype=dyn.dtype)
            t[b] = v
            return lin.jvp(t)[b].astype(float) * invC

        op = scipy.sparse.linalg.LinearOperator((n, n), matvec=mv, dtype=float)
        ev = scipy.sparse.linalg.eigs(op, k=1, which="LR", return_eigenvectors=False, tol=1e-6)
        out.append(float(np.max(ev.real)))
    return np.array(out)


def _newton(dyn, x, tol, max_iterations, divergence, record) -> SettleResult:
    x = x.astype(dyn.dtype).copy()
    B = len(x)
    with np.errstate(all="ignore"):
        F = dyn.f(x)
    res = _residual(F)
    rec_t, rec_x, rec_r = [0.0], [x.copy()], [res]
    it = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while it < max_iterations and np.any((res >= tol) & np.isfinite(res)):
            it += 1
            todo = (res >= tol) & np.isfinite(res)
            delta = _solve_linear(dyn, _linearize(dyn, x), F, x)
            delta[~todo] = 0
            alpha = np.ones(B)
            norm0 = np.linalg.norm(F, axis=1)
            for _ in range(30):
                trial = (x + alpha[:, None] * delta).astype(dyn.dtype)
                Ft = dyn.f(trial)
                ok = np.linalg.norm(Ft, axis=1) <= (1 - 1e-4 * alpha) * norm0
                ok |= ~todo
                if ok.all():
                    break
                alpha = np.where(ok, alpha, alpha / 2)
            x = trial
            F = dyn.f(x)
            res = _residual(F)
            if record:
                rec_t.append(float(it))
                rec_x.append(x.copy())
                rec_r.append(res)
    reason = np.full(B, "max_iterations", dtype=object)
    traj = Trajectory(np.array(rec_t), np.array(rec_x), np.array(rec_r)) if record else None
    return _finish("newton", x, F, tol, reason, it, None, divergence, traj)


def _flag_unstable(dyn, result: SettleResult) -> None:
    """Mark converged samples whose ``C⁻¹J`` has an eigenvalue with positive real part."""
    settled = result.converged
    eig = np.full(len(settled), np.nan)
    if settled.any():
        # Unsettled samples borrow a settled state: their own may not even be finite.
        x = np.where(settled[:, None], result.final, result.final[np.argmax(settled)])
        eig = np.where(settled, _max_real_eigenvalue(dyn, x), np.nan)
        unstable = settled & (eig > 1e-9 * _spectral_radius(dyn, x))
        result.reason = np.where(unstable, "unstable", result.reason)
        result.converged = settled & ~unstable
    result.max_real_eigenvalue = eig
