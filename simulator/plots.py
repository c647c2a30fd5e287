"""Figures of settling: node voltages, residual, phase portraits.

Every function returns a :class:`matplotlib.figure.Figure` drawn on the
non-interactive Agg canvas (no pyplot, no global state), so it works headless,
in tests and in scripts alike; pass ``path`` to also save it (PNG, PDF, SVG…
chosen by the file extension).  Pass ``ax`` to draw into an axes of your own
figure instead; the figure returned is then that axes' figure.

Units and signs follow the rest of aeplab: node voltages in volts (V), time in
seconds (s; Newton iterations are plotted against the iteration number),
currents in amperes (A), positive *into* a node, and the dynamics
``C dv/dt = f(v)``.

The functions read :attr:`SettleResult.trajectory
<simulator.settle.SettleResult.trajectory>`, which exists only when the
circuit was settled with ``record=True``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .compiled import Bound, CompiledSystem
from .settle import SettleResult, Trajectory

__all__ = ["plot_phase_portrait", "plot_residual", "plot_settling", "plot_voltages"]

_MAX_LEGEND = 10  # more lines than this get no legend


# -- helpers ---------------------------------------------------------------------
def _new_axes(ax: Axes | None, nrows: int = 1, figsize=(6.4, 4.0)) -> tuple[Figure, list[Axes]]:
    if ax is not None:
        return ax.figure, [ax]
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _trajectory(result: SettleResult) -> Trajectory:
    if not isinstance(result, SettleResult):
        raise TypeError(f"expected a SettleResult (from simulator.settle), got {type(result).__name__}")
    if result.trajectory is None:
        raise ValueError(
            f"this {result.method!r} result has no trajectory; settle with record=True to plot the settling"
        )
    traj = result.trajectory
    if len(traj.t) == 0:
        raise ValueError("the recorded trajectory is empty")
    return traj


def _check_sample(traj: Trajectory, sample: int) -> int:
    batch = traj.x.shape[1]
    if not isinstance(sample, (int, np.integer)) or isinstance(sample, bool) or not 0 <= sample < batch:
        raise ValueError(f"sample must be an integer in [0, {batch}) (the batch size of the result), got {sample!r}")
    return int(sample)


def _node_names(names: Sequence[str] | None, n: int) -> list[str]:
    if names is None:
        return [f"x[{i}]" for i in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ValueError(
            f"names has {len(names)} entries but the result has {n} free nodes; "
            "pass the compiled system's free node names (system.nodes)"
        )
    return names


def _select(names: list[str], nodes: Sequence[str | int] | None) -> list[int]:
    if nodes is None:
        return list(range(len(names)))
    if isinstance(nodes, (str, int, np.integer)):
        nodes = [nodes]
    index = {name: i for i, name in enumerate(names)}
    out = []
    for node in nodes:
        if isinstance(node, (int, np.integer)) and not isinstance(node, bool):
            if not 0 <= node < len(names):
                raise ValueError(f"node index {node} out of range for {len(names)} free nodes")
            out.append(int(node))
        elif node in index:
            out.append(index[node])
        else:
            shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
            raise ValueError(f"unknown node {node!r}; free nodes are {shown}")
    return out


def _sub(symbol: str, node: str) -> str:
    """``symbol`` subscripted with a node name: mathtext when the name is plain, else text."""
    if re.fullmatch(r"[A-Za-z0-9\[\],.]+", node):
        return f"${symbol}_{{{node}}}$"
    return f"{symbol}({node})"


def _time_label(result: SettleResult) -> str:
    return "Newton iteration" if result.method == "newton" else "time (s)"


def _positive(values: np.ndarray) -> np.ndarray:
    """``values`` with non-positive and non-finite entries masked (for log axes)."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _draw_voltages(ax: Axes, result: SettleResult, traj: Trajectory, names: list[str], idx: list[int], sample: int):
    for i in idx:
        ax.plot(traj.t, traj.x[:, sample, i], label=names[i])
    ax.set_ylabel("node voltage (V)")
    ax.set_xlabel(_time_label(result))
    if 0 < len(idx) <= _MAX_LEGEND:
        ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)


def _draw_residual(ax: Axes, result: SettleResult, traj: Trajectory, sample: int):
    res = _positive(traj.residual[:, sample])
    marker = "o" if result.method == "newton" else None
    ax.plot(traj.t, res, marker=marker, color="C0", label=r"$\|f\|_\infty$")
    ax.axhline(result.tol, color="k", linestyle="--", linewidth=1, label=f"tol = {result.tol:g} A")
    ax.set_yscale("log")
    ax.set_ylabel(r"residual $\|f\|_\infty$ (A)")
    ax.set_xlabel(_time_label(result))
    ax.set_title(f"{result.method}: {result.reason[sample]}", fontsize="medium")
    ax.legend(loc="best", fontsize="small")
    ax.grid(True, which="both", alpha=0.3)


# -- public ----------------------------------------------------------------------
def plot_voltages(
    result: SettleResult,
    names: Sequence[str] | None = None,
    *,
    nodes: Sequence[str | int] | None = None,
    sample: int = 0,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Node voltages against time while settling.

    Parameters
    ----------
    result
        A :class:`~simulator.settle.SettleResult` from ``settle(..., record=True)``.
    names
        Free node names in state order, usually ``system.nodes`` of the
        compiled system; default ``x[0], x[1], …``.
    nodes
        Which nodes to draw, by name (or state index); default all.  A legend
        is drawn for up to 10 nodes.
    sample
        Which sample of the batch to draw.
    ax
        Draw into this axes instead of a new figure.
    path
        Save the figure here (format from the extension, 120 dpi).

    Returns
    -------
    matplotlib.figure.Figure
        Voltages (V) against time (s), or against the iteration number for
        Newton.

    Raises
    ------
    ValueError
        When ``result`` has no trajectory (settle with ``record=True``), for
        unknown nodes, a ``names`` list of the wrong length, or a ``sample``
        outside the batch.
    """
    traj = _trajectory(result)
    sample = _check_sample(traj, sample)
    labels = _node_names(names, traj.x.shape[2])
    idx = _select(labels, nodes)
    fig, (axis,) = _new_axes(ax)
    _draw_voltages(axis, result, traj, labels, idx, sample)
    return _save(fig, path)


def plot_residual(
    result: SettleResult,
    sample: int = 0,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """The residual ``‖f(v)‖∞`` (A) against time, on a log scale.

    ``f`` is the net current into each free node (positive into the node), so
    the residual is zero exactly at a stationary state.  The settling
    tolerance ``result.tol`` is drawn as a dashed line; exact zeros are not
    drawn (log scale).

    Parameters
    ----------
    result
        A :class:`~simulator.settle.SettleResult` from ``settle(..., record=True)``.
    sample
        Which sample of the batch to draw.
    ax
        Draw into this axes instead of a new figure.
    path
        Save the figure here (format from the extension, 120 dpi).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``result`` has no trajectory (settle with ``record=True``) or
        ``sample`` is outside the batch.
    """
    traj = _trajectory(result)
    sample = _check_sample(traj, sample)
    fig, (axis,) = _new_axes(ax)
    _draw_residual(axis, result, traj, sample)
    return _save(fig, path)


def plot_settling(
    result: SettleResult,
    names: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    *,
    sample: int = 0,
) -> Figure:
    """Two panels sharing the time axis: node voltages (V) and residual (A, log).

    Parameters
    ----------
    result
        A :class:`~simulator.settle.SettleResult` from ``settle(..., record=True)``.
    names
        Free node names in state order (``system.nodes``).
    sample
        Which sample of the batch to draw.
    path
        Save the figure here (format from the extension, 120 dpi).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``result`` has no trajectory (settle with ``record=True``),
        ``names`` has the wrong length or ``sample`` is outside the batch.
    """
    traj = _trajectory(result)
    sample = _check_sample(traj, sample)
    labels = _node_names(names, traj.x.shape[2])
    fig, (top, bottom) = _new_axes(None, nrows=2, figsize=(6.4, 6.4))
    _draw_voltages(top, result, traj, labels, list(range(len(labels))), sample)
    top.set_xlabel("")
    _draw_residual(bottom, result, traj, sample)
    bottom.set_title("")
    fig.suptitle(result.message, fontsize="medium")
    return _save(fig, path)


def plot_phase_portrait(
    system: CompiledSystem | Bound,
    result: SettleResult | None = None,
    inputs: np.ndarray | None = None,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    density: int = 25,
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
    *,
    sample: int = 0,
    kind: str = "stream",
    nullclines: bool = True,
) -> Figure:
    """Vector field ``dv/dt = C⁻¹ f(v)`` of a two-node circuit, with a trajectory.

    The field is evaluated on a ``density × density`` grid of states in one
    batched call of the compiled kernel; arrows point the way the state moves
    (V/s).  Nullclines are the curves where the net current into one node is
    zero (``f_a = 0`` solid, ``f_b = 0`` dashed); stationary states lie where
    they cross.

    Parameters
    ----------
    system
        A compiled system with exactly two free nodes (or one already bound
        to its inputs).
    result
        Optional :class:`~simulator.settle.SettleResult` settled with
        ``record=True`` on the same system and inputs; its trajectory is drawn
        with the start (circle) and end (filled star if converged, hollow
        otherwise) marked.
    inputs
        Clamped input voltages (V), shape ``(n_inputs,)``; a batch
        ``(batch, n_inputs)`` is reduced to row ``sample``.  Default: the
        circuit's own values.  Not allowed with a bound system.
    xlim, ylim
        Voltage ranges (V) of the first and second free node; default the
        trajectory's range with a margin, or ``(-2, 2)`` without one.
    density
        Grid points per axis (≥ 2).
    sample
        Which sample of ``result`` (and of batched ``inputs``) to draw.
    kind
        ``"stream"`` (streamlines) or ``"quiver"`` (arrows).
    nullclines
        Draw the nullclines.
    ax
        Draw into this axes instead of a new figure.
    path
        Save the figure here (format from the extension, 120 dpi).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When the system does not have exactly two free nodes, ``result`` has
        no trajectory (settle with ``record=True``) or does not match the
        system, or an argument is out of range.
    """
    if isinstance(system, Bound):
        if inputs is not None:
            raise ValueError("inputs= cannot be given with a bound system; bind the compiled system instead")
        bound_sys, nodes = system, system.system.nodes
        if len(system.u) > 1:
            if not 0 <= sample < len(system.u):
                raise ValueError(f"sample {sample} is outside the input batch of {len(system.u)}")
            bound_sys = system.system.bind(system.u[sample])
    elif isinstance(system, CompiledSystem):
        nodes = system.nodes
        bound_sys = None
    else:
        raise TypeError(f"expected a CompiledSystem or a bound system, got {type(system).__name__}")
    if len(nodes) != 2:
        raise ValueError(
            f"a phase portrait needs a circuit with exactly 2 free nodes; this one has {len(nodes)} "
            f"({', '.join(nodes[:5])}{', …' if len(nodes) > 5 else ''}); plot_voltages works for any size"
        )
    if kind not in ("stream", "quiver"):
        raise ValueError(f"kind must be 'stream' or 'quiver', got {kind!r}")
    if not isinstance(density, (int, np.integer)) or density < 2:
        raise ValueError(f"density must be an integer ≥ 2, got {density!r}")
    traj = None
    if result is not None:
        traj = _trajectory(result)
        if traj.x.shape[2] != 2:
            raise ValueError(f"result has {traj.x.shape[2]} nodes but the system has 2; settle this system")
        sample = _check_sample(traj, sample)
    if bound_sys is None:
        if inputs is not None:
            u = np.asarray(inputs, dtype=float)
            if u.ndim == 2 and len(u) > 1:
                if not 0 <= sample < len(u):
                    raise ValueError(f"sample {sample} is outside the input batch of {len(u)}")
                u = u[sample]
            inputs = u
        bound_sys = system.bind(inputs)

    path_xy = None
    if traj is not None:
        path_xy = np.asarray(traj.x[:, sample, :], dtype=float)
        path_xy = path_xy[np.all(np.isfinite(path_xy), axis=1)]
    xlim = _limits(xlim, path_xy[:, 0] if path_xy is not None and len(path_xy) else None, "xlim")
    ylim = _limits(ylim, path_xy[:, 1] if path_xy is not None and len(path_xy) else None, "ylim")

    gx = np.linspace(*xlim, density)
    gy = np.linspace(*ylim, density)
    X, Y = np.meshgrid(gx, gy)
    grid = np.column_stack([X.ravel(), Y.ravel()])
    with np.errstate(all="ignore"):
        F = np.asarray(bound_sys.f(grid.astype(bound_sys.dtype)), dtype=float)
        dv = F / np.asarray(bound_sys.capacitance, dtype=float)
    U, V = dv[:, 0].reshape(X.shape), dv[:, 1].reshape(X.shape)
    U, V = np.nan_to_num(U, nan=0.0, posinf=0.0, neginf=0.0), np.nan_to_num(V, nan=0.0, posinf=0.0, neginf=0.0)

    fig, (axis,) = _new_axes(ax, figsize=(5.6, 5.0))
    speed = np.hypot(U, V)
    if kind == "stream":
        width = 0.5 + 1.5 * speed / max(float(speed.max()), 1e-300)
        axis.streamplot(gx, gy, U, V, color="0.55", density=1.2, linewidth=width, arrowsize=0.9)
    else:
        axis.quiver(X, Y, U, V, color="0.45", angles="xy", pivot="mid")
    if nullclines:
        for k, style in ((0, "-"), (1, "--")):
            Fk = F[:, k].reshape(X.shape)
            finite = Fk[np.isfinite(Fk)]
            if finite.size and finite.min() < 0 < finite.max():
                axis.contour(X, Y, Fk, levels=[0.0], colors=f"C{k + 1}", linestyles=style, linewidths=1.2)
                axis.plot([], [], color=f"C{k + 1}", linestyle=style, label=f"{_sub('f', nodes[k])} = 0")
    if path_xy is not None and len(path_xy):
        axis.plot(path_xy[:, 0], path_xy[:, 1], color="C0", linewidth=1.5, label="trajectory")
        axis.plot(*path_xy[0], "o", color="C0", markersize=7, label="start")
        converged = bool(result.converged[sample])
        axis.plot(
            *path_xy[-1],
            "*",
            markersize=13,
            color="C3",
            markerfacecolor="C3" if converged else "none",
            label=f"end ({result.reason[sample]})",
        )
    axis.set_xlim(*xlim)
    axis.set_ylim(*ylim)
    axis.set_xlabel(f"{_sub('v', nodes[0])} (V)")
    axis.set_ylabel(f"{_sub('v', nodes[1])} (V)")
    axis.set_title(r"phase portrait, $\dot v = C^{-1} f(v)$", fontsize="medium")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="best", fontsize="small")
    return _save(fig, path)


def _limits(lim, values: np.ndarray | None, what: str) -> tuple[float, float]:
    if lim is not None:
        lo, hi = (float(v) for v in lim)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"{what} must be two finite numbers (V) with low < high, got {lim!r}")
        return lo, hi
    if values is None:
        return -2.0, 2.0
    lo, hi = float(np.min(values)), float(np.max(values))
    margin = max(0.2 * (hi - lo), 0.1 * max(abs(lo), abs(hi)), 0.1)
    return lo - margin, hi + margin
