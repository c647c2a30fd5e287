"""Figures of learning: gradient error vs nudging strength β, accuracy vs epoch.

Functions return :class:`matplotlib.figure.Figure` objects (no global pyplot
state) and save them when given ``path``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from simulator import CompiledSystem

from .algorithms import NotApplicable, compare, estimate, free_phase, reference_gradient

__all__ = ["beta_sweep", "plot_beta_sweep", "plot_history"]


def beta_sweep(
    system: CompiledSystem,
    algorithms=("ep", "vf", "aep", "dyadic"),
    betas=None,
    nudging: str = "symmetric",
    inputs=None,
    target=None,
) -> dict:
    """Relative error of each algorithm's estimate vs β.

    AEP is swept with both symmetric and one-sided nudging, to show its error
    slopes (2 and 1 on a log-log plot).

    Returns
    -------
    dict
        ``{label: {"beta": [...], "rel_error": [...], "slope": s}}`` where ``s``
        is the least-squares log-log slope over β ≤ 0.1; algorithms that do
        not apply are left out.
    """
    betas = np.logspace(-4, 0, 9) if betas is None else np.asarray(betas, dtype=float)
    free = free_phase(system, inputs)
    ref = reference_gradient(system, inputs, target, free=free)
    trainable = [k for k in system.params if system.trainable[k]]
    ref.grads = {k: ref.grads[k] for k in trainable}
    runs = []
    for name in algorithms:
        if name == "aep":
            runs += [("aep", "symmetric"), ("aep", "one-sided")]
        elif name == "dyadic":
            runs.append(("dyadic", "one-sided"))
        else:
            runs.append((name, nudging))
    out = {}
    for name, nud in runs:
        errors = []
        try:
            for b in betas:
                est = estimate(name, system, inputs, target, beta=float(b), nudging=nud, free=free)
                errors.append(compare(est, ref)["rel_error"])
        except NotApplicable:
            continue
        errors = np.asarray(errors)
        small = (betas <= 0.1) & (errors > 1e-14)
        slope = (
            float(np.polyfit(np.log(betas[small]), np.log(errors[small]), 1)[0]) if small.sum() >= 2 else float("nan")
        )
        label = name if name == "dyadic" or (name != "aep" and nud == nudging) else f"{name} ({nud})"
        out[label] = {"beta": betas.tolist(), "rel_error": errors.tolist(), "slope": slope, "nudging": nud}
    return out


def plot_beta_sweep(sweep: dict, path=None, title: str | None = None) -> Figure:
    """Log-log relative error vs β for every algorithm in ``sweep`` (see :func:`beta_sweep`)."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    for label, run in sweep.items():
        err = np.maximum(np.asarray(run["rel_error"]), 1e-17)
        note = f"slope {run['slope']:.2f}" if np.isfinite(run["slope"]) else "exact to round-off"
        ax.loglog(run["beta"], err, "o-", label=f"{label} ({note})")
    ax.set_xlabel("nudging strength β")
    ax.set_ylabel("relative error ‖g − g_exact‖ / ‖g_exact‖")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_history(
    histories: dict[str, list[dict]], key: str = "test_accuracy", path=None, title: str | None = None
) -> Figure:
    """Accuracy (or any metric ``key``) vs epoch, one line per run label.

    ``histories`` maps a label to a list of per-epoch dicts (as written by the
    trainer) or to a list of such lists (several seeds: mean ± std is drawn).
    """
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    for label, runs in histories.items():
        if runs and isinstance(runs[0], dict):
            runs = [runs]
        length = min(len(r) for r in runs)
        vals = np.array([[h[key] for h in r[:length]] for r in runs]) * (100 if "accuracy" in key else 1)
        epochs = np.array([h["epoch"] for h in runs[0][:length]])
        mean = vals.mean(axis=0)
        ax.plot(epochs, mean, "o-", ms=3, label=f"{label} (n={len(runs)})")
        if len(runs) > 1:
            sd = vals.std(axis=0)
            ax.fill_between(epochs, mean - sd, mean + sd, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " ") + (" (%)" if "accuracy" in key else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
