"""Learning phases as real circuits: ngspice decks of the free, nudged and AEP phases.

The phases of ALGORITHMS.md §3 are the free circuit plus extra currents, and
each extra current is something a circuit can do.  Here they are written as
behavioural current sources (``B`` elements) into the free nodes, currents
positive *into* the node:

* nudged phase (EP, VF): ``−β ∂ℓ/∂x_o`` into every output node ``o``:
  ``−β (V(o) − y_o)`` for the squared error, ``−β (softmax(V)_o Σy − y_o)``
  for the softmax cross-entropy (reads every output node);
* AEP learning phase: the nudging plus, for every non-reciprocal element
  ``e``, its own share of ``−2A₀(x − x₀)``, namely ``−(J_e − J_eᵀ)(x − x₀)``
  with ``J_e = ∂i_e/∂v`` evaluated at the stored free state ``x₀``
  (numbers, from the element's symbolic law, :attr:`circuits.element.Law.jacobian`),
  into the element's own terminals only.  For a transconductance from ``j``
  to ``i`` that is ``−J_ij (V(j) − x₀_j)`` into ``i`` and ``+J_ij (V(i) − x₀_i)``
  into ``j``: it cancels its own linearised forward action and adds the
  reversed one ("Hardware reading" in ALGORITHMS.md).

The stationary state of the AEP deck is aeplab's ``x_β`` of
:class:`learning.phases.AEPPhase` (the test suite checks it with ngspice).
β has units of A per unit of ``∂ℓ/∂x`` (A/V for the squared error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sympy as sp

from circuits import Circuit
from circuits.element import NodeVoltage
from circuits.spice import (
    Deck,
    ExtraSource,
    Transient,
    input_values,
    iter_elements,
    to_spice,
)

__all__ = ["PHASES", "aep_sources", "export_phase", "free_state", "nudging_sources", "phase_deck"]

PHASES = ("free", "nudged", "aep")
COST_NAMES = ("squared_error", "cross_entropy")


def _check_beta(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a positive number (A per unit of ∂ℓ/∂x), got {beta!r}") from None
    if not (np.isfinite(b) and b > 0):
        raise ValueError(f"beta must be a positive number (A per unit of ∂ℓ/∂x), got {beta!r}")
    return b


def _targets(circuit: Circuit, target) -> np.ndarray:
    if not circuit.outputs:
        raise ValueError(f"circuit {circuit.name!r} has no outputs; designate one with `output NODE`")
    if target is None:
        y = np.asarray(circuit.targets, dtype=float)
        if np.isnan(y).any():
            missing = [o for o, t in zip(circuit.outputs, y) if np.isnan(t)]
            raise ValueError(f"outputs {missing[:5]} have no target; pass target=")
        return y
    if isinstance(target, Mapping):
        y = np.asarray(circuit.targets, dtype=float).copy()
        for node, v in target.items():
            if node not in circuit.outputs:
                raise ValueError(f"target: {node!r} is not an output of circuit {circuit.name!r}")
            y[circuit.outputs.index(node)] = float(v)
        if np.isnan(y).any():
            raise ValueError("target: some outputs have no target")
        return y
    y = np.asarray(target, dtype=float).reshape(-1)
    if y.shape != (len(circuit.outputs),):
        raise ValueError(
            f"target must have {len(circuit.outputs)} entries (one per output), got shape {np.shape(target)}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("target contains NaN or infinite values")
    return y


def nudging_sources(circuit: Circuit, beta: float, target=None, cost: str = "squared_error") -> list[ExtraSource]:
    """The nudging currents ``−β ∂ℓ/∂x_o`` into the output nodes.

    Parameters
    ----------
    circuit
        A circuit with outputs.
    beta
        Nudging strength β > 0 (A per unit of ``∂ℓ/∂x``).
    target
        Targets (V) of the outputs, ``(n_out,)`` or a mapping; default the
        circuit's.
    cost
        ``"squared_error"`` (``ℓ = ½Σ(x_o − y_o)²``) or ``"cross_entropy"``
        (softmax over the output voltages, ``y`` class probabilities).
    """
    beta = _check_beta(beta)
    if cost not in COST_NAMES:
        raise ValueError(f"unknown cost {cost!r}; valid: {', '.join(COST_NAMES)}")
    y = [float(t) for t in _targets(circuit, target)]
    v = [NodeVoltage(o) for o in circuit.outputs]
    out = []
    if cost == "squared_error":
        for o, vo, yo in zip(circuit.outputs, v, y):
            i = sp.Mul(sp.Float(-beta), sp.Add(vo, sp.Float(-yo), evaluate=False), evaluate=False)
            out.append(ExtraSource(f"nudge_{o}", o, i, f"nudging into {o}: -beta*(V - y), beta = {beta!r}, y = {yo!r}"))
        return out
    total = sp.Float(float(np.sum(y)))
    denom = sp.Add(*[sp.exp(vk) for vk in v])
    for o, vo, yo in zip(circuit.outputs, v, y):
        grad = sp.exp(vo) / denom * total - sp.Float(yo)
        out.append(
            ExtraSource(
                f"nudge_{o}",
                o,
                -sp.Float(beta) * grad,
                f"nudging into {o}: -beta*(softmax(V)_o*sum(y) - y_o), beta = {beta!r}, y_o = {yo!r}",
            )
        )
    return out


def aep_sources(circuit: Circuit, x0, inputs=None, tol: float = 0.0) -> list[ExtraSource]:
    """Every non-reciprocal element's AEP correction ``−(J_e − J_eᵀ)(x − x₀)``, as currents.

    Parameters
    ----------
    circuit
        The circuit.
    x0
        Free stationary state (V), ``(n,)`` in state order or a mapping.
    inputs
        Clamped voltages (V), default the circuit's.
    tol
        Coefficients ``|J_ab − J_ba|`` at or below this (S) are dropped.

    Returns
    -------
    list of ExtraSource
        One per (element, free terminal node) with a non-zero correction,
        reading only that element's free terminals and the stored ``x₀`` there.
    """
    x0 = _state(circuit, x0)
    u = input_values(circuit, inputs)
    value = {n: float(x) for n, x in zip(circuit.free_nodes, x0)}
    value.update({n: float(x) for n, x in zip(circuit.clamped_nodes, u)})
    free = circuit.node_index
    out: list[ExtraSource] = []
    jac_fns: dict[int, object] = {}
    for label, et, law, ends, values in iter_elements(circuit):
        if law.reciprocal:
            continue
        key = id(law)
        if key not in jac_fns:
            jac_fns[key] = sp.lambdify([*law.voltages, *law.params], law.jacobian, modules="numpy")
        args = [value[n] for n in ends] + [values[p.name] for p in law.params]
        J = np.asarray(jac_fns[key](*args), dtype=float).reshape(len(ends), len(ends))
        K = J - J.T  # 2 A_e at x0, over terminals
        nodes = [n for n in dict.fromkeys(ends) if n in free]
        for a in nodes:
            parts, terms = [], []
            for b in nodes:
                c = sum(K[t, s] for t, na in enumerate(ends) if na == a for s, nb in enumerate(ends) if nb == b)
                if abs(c) > tol:
                    dx = sp.Add(NodeVoltage(b), sp.Float(-value[b]), evaluate=False)
                    parts.append(sp.Mul(sp.Float(-float(c)), dx, evaluate=False))
                    terms.append(b)
            if terms:
                expr = sp.Add(*parts, evaluate=False) if len(parts) > 1 else parts[0]
                out.append(
                    ExtraSource(
                        f"aep_{label}_{a}",
                        a,
                        expr,
                        f"AEP correction of {label} ({et.kind}) into {a}: -(J_e - J_e^T)(x - x0), "
                        f"J_e at x0, reads {', '.join(terms)}",
                    )
                )
    return out


def _state(circuit: Circuit, x) -> np.ndarray:
    n = len(circuit.free_nodes)
    if isinstance(x, Mapping):
        arr = np.full(n, np.nan)
        for node, v in x.items():
            if node not in circuit.node_index:
                raise ValueError(f"x0: {node!r} is not a free node")
            arr[circuit.node_index[node]] = float(v)
        if np.isnan(arr).any():
            raise ValueError("x0: every free node needs a value")
        return arr
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"x0 must be {n} finite voltages (one per free node), got shape {np.shape(x)}")
    return arr


def free_state(circuit: Circuit, inputs=None, cost: str = "squared_error") -> np.ndarray:
    """The free stationary state (V) settled by aeplab (Newton to 1e-12 A up to 256 nodes).

    Raises
    ------
    RuntimeError
        If the free phase does not settle.
    """
    from simulator import compile_circuit

    from .algorithms import free_phase

    system = compile_circuit(circuit, cost=cost)
    u = None if inputs is None else input_values(circuit, inputs)
    return free_phase(system, inputs=u).final[0].astype(float)


def phase_deck(
    circuit: Circuit,
    phase: str = "free",
    *,
    beta: float = 1e-3,
    x0=None,
    target=None,
    cost: str = "squared_error",
    inputs=None,
    tran: tuple[float, float] | Transient | None = None,
    op: bool = True,
    options: Mapping[str, float] | None = None,
) -> Deck:
    """The ngspice deck of one learning phase of ``circuit``.

    Parameters
    ----------
    circuit
        The circuit.
    phase
        ``"free"`` (the circuit), ``"nudged"`` (EP/VF: ``C ẋ = f − β ℓ'``) or
        ``"aep"`` (``C ẋ = f − β ℓ' − 2A₀(x − x₀)``).
    beta
        Nudging strength β > 0 (A per unit of ``∂ℓ/∂x``); unused for ``"free"``.
    x0
        Free stationary state (V), ``(n,)`` or a mapping; also the ``.op``
        starting guess (``.nodeset``) and the transient's initial state.  When
        ``None`` for a learning phase it is settled by aeplab
        (:func:`free_state`); the free phase then starts from 0 V.
    target
        Output targets (V); default the circuit's.
    cost
        ``"squared_error"`` or ``"cross_entropy"``.
    inputs
        Clamped voltages (V); default the circuit's.
    tran
        ``(step, stop)`` in s, or a :class:`~circuits.spice.Transient`: add a
        ``.tran``; it starts from ``x0`` (for the learning phases: where the
        free phase ended), or from 0 V when the free phase is given no ``x0``.
    op
        Include ``.op``.
    options
        ngspice ``.options`` overrides.

    Returns
    -------
    Deck

    Raises
    ------
    ValueError
        Unknown phase or cost, ``beta ≤ 0``, missing targets, malformed ``x0``.
    RuntimeError
        When ``x0`` must be settled and the free phase does not settle.
    """
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")
    sources: Sequence[ExtraSource] = []
    if phase != "free":
        beta = _check_beta(beta)
        if cost not in COST_NAMES:
            raise ValueError(f"unknown cost {cost!r}; valid: {', '.join(COST_NAMES)}")
        _targets(circuit, target)
        x0 = free_state(circuit, inputs, cost) if x0 is None else _state(circuit, x0)
        sources = nudging_sources(circuit, beta, target, cost)
        if phase == "aep":
            sources = [*sources, *aep_sources(circuit, x0, inputs)]
    elif x0 is not None:
        x0 = _state(circuit, x0)
    transient = None
    if tran is not None:
        if isinstance(tran, Transient):
            transient = tran
        else:
            step, stop = tran
            transient = Transient(step, stop, x0)
    title = f"aeplab circuit {circuit.name}, {phase} phase"
    if phase != "free":
        title += f" (beta = {beta!r}, cost {cost})"
    deck = to_spice(
        circuit, op=op, tran=transient, inputs=inputs, sources=sources, options=options, title=title, nodeset=x0
    )
    deck.meta.update(
        {
            "phase": phase,
            "beta": beta if phase != "free" else None,
            "cost": cost,
            "x0": None if x0 is None else np.asarray(x0, dtype=float),
        }
    )
    return deck


def export_phase(
    circuit: Circuit,
    phase: str = "free",
    beta: float = 1e-3,
    x0=None,
    target=None,
    **kwargs,
) -> str:
    """The deck text of one learning phase; see :func:`phase_deck` for the arguments."""
    return phase_deck(circuit, phase, beta=beta, x0=x0, target=target, **kwargs).text
