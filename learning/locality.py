"""Locality checker: what each element's update and AEP correction depend on.

For element ``e`` with terminals ``N(e)`` and parameters ``θ_e``, the
linear-response update (VF, AEP, Dyadic EP) is

    g_θe = −Σ_{t∈N(e)} s_t ∂i_t/∂θ_e (x₀)

and its share of AEP's learning-phase correction is ``−(J_e − J_eᵀ)(x − x₀)``
with ``J_e = ∂i_e/∂v`` at ``x₀``.  Both are derived symbolically from the
element's law; the checker lists their free symbols and gives a verdict:
*local* when every voltage they involve belongs to one of the element's own
terminals (ALGORITHMS.md §4).  A law that reads ``node_voltage(...)`` of a
node it is not attached to is reported non-local, naming that node.

Symbols: ``x0_<node>`` free-state voltage, ``s_<node>`` response
``(x_β − x₀)/β`` (or ``d/β``), ``dx_<node>`` learning-phase displacement
``x − x₀``.  Arrays are reported once, with terminal roles in place of nodes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sympy as sp

from circuits import Circuit

__all__ = ["LocalityReport", "check_locality"]


@dataclass
class LocalityReport:
    """Locality verdict for one element (or one array of elements)."""

    element: str
    kind: str
    form: str
    terminals: list[str]
    parameters: list[str]
    update: dict[str, str]
    update_symbols: list[str]
    correction: dict[str, str]
    correction_symbols: list[str]
    reads_outside: list[str]
    local: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _report(name, et, opts, ends: list[str], form: str) -> LocalityReport:
    law = et.law(**opts)
    k = len(et.terminals)
    nodes = list(ends) + list(law.implicit_nodes)
    x0 = {v: sp.Symbol(f"x0_{n}", real=True) for v, n in zip(law.voltages, nodes)}
    s = [sp.Symbol(f"s_{n}", real=True) for n in nodes]
    dx = [sp.Symbol(f"dx_{n}", real=True) for n in nodes]
    update, upd_syms = {}, set()
    for p in law.params:
        expr = -sum(s[t] * law.param_derivatives[p.name][t] for t in range(law.n_terminals))
        expr = sp.simplify(expr.xreplace(x0))
        if expr != 0:
            update[p.name] = sp.sstr(expr)
            upd_syms |= expr.free_symbols
    correction, cor_syms = {}, set()
    if not law.reciprocal:
        antisym = (law.jacobian - law.jacobian.T).xreplace(x0)
        for t in range(law.n_terminals):
            expr = sp.simplify(-sum(antisym[t, u] * dx[u] for u in range(law.n_terminals)))
            if expr != 0:
                correction[nodes[t]] = sp.sstr(expr)
                cor_syms |= expr.free_symbols
    own = set(nodes[:k])
    involved = {str(sym).split("_", 1)[1] for sym in upd_syms | cor_syms if str(sym).startswith(("x0_", "s_", "dx_"))}
    outside = sorted(involved - own) or list(law.implicit_nodes)
    return LocalityReport(
        element=name,
        kind=et.kind,
        form=form,
        terminals=list(ends),
        parameters=[p.name for p in law.params],
        update=update,
        update_symbols=sorted(map(str, upd_syms)),
        correction=correction,
        correction_symbols=sorted(map(str, cor_syms)),
        reads_outside=sorted(set(outside)),
        local=not outside,
    )


def check_locality(circuit: Circuit) -> list[LocalityReport]:
    """One :class:`LocalityReport` per element (arrays: one per array, by terminal role)."""
    reports = []
    for g in circuit.element_groups():
        ends = [lst[0] for lst in g.nodes] if g.form == "scalar" else list(g.element_type.terminals)
        reports.append(_report(g.name, g.element_type, g.options, ends, g.form))
    return reports
