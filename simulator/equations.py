"""Equations of motion, derived symbolically from the element laws.

KCL at every free node ``i``:  ``C_i dv_i/dt = f_i(v, θ, u) = Σ_e i_e,i``,
currents positive into the node.  :class:`Equations` gives ``f`` as sympy
expressions, the Jacobian ``J = ∂f/∂v`` over the free nodes, its reciprocal
and non-reciprocal parts ``S = (J + Jᵀ)/2`` and ``A = (J − Jᵀ)/2``, the
parameter derivatives ``∂f/∂θ``, and per element whether it is reciprocal and
its own non-reciprocal part.

Symbols: node voltages ``v_<node>``, capacitances ``C_<node>``, parameters
``<param>_<element>`` (``w_W21``); array elements are indexed
(``w_W1[2,0]``).  Circuits with arrays print as per-layer vector equations
(``C_h ⊙ dv_h/dt = −g_h ⊙ v_h + w_W1·tanh(v_x) + …``); their scalar expansion
is only built when asked for and small enough.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import sympy as sp

from circuits import Circuit, Layer
from circuits.element import Law, NodeVoltage
from circuits.library import FreeNode

from .separable import separate

__all__ = ["Equations", "derive"]


def _param_symbol(element: str, param: str, index=None) -> sp.Symbol:
    suffix = "" if index is None else "[" + ",".join(map(str, index)) + "]"
    return sp.Symbol(f"{param}_{element}{suffix}", real=True)


def _latex_name(sym: sp.Symbol) -> str:
    name = sym.name
    head, _, rest = name.partition("_")
    if not rest:
        return name
    rest = rest.replace("_", r"\_")
    return f"{head}_{{\\mathrm{{{rest}}}}}"


class Equations:
    """The equations of motion of a circuit.

    Parameters
    ----------
    circuit
        The circuit.
    max_elements
        Largest number of scalar elements expanded symbolically; bigger
        circuits still print as vector equations.

    Attributes
    ----------
    nodes : list of str
        Free nodes (state order).
    states, inputs : list of NodeVoltage
        Free and clamped node voltage symbols.
    capacitance : dict
        Node → capacitance symbol ``C_<node>``.
    values : dict
        Symbol → numeric value (parameters, capacitances, inputs).
    """

    def __init__(self, circuit: Circuit, max_elements: int = 20000):
        self.circuit = circuit
        self.nodes = list(circuit.free_nodes)
        self.states = [NodeVoltage(n) for n in self.nodes]
        self.inputs = [NodeVoltage(n) for n in circuit.clamped_nodes]
        self.capacitance = {n: sp.Symbol(f"C_{n}", positive=True) for n in self.nodes}
        self.max_elements = max_elements
        self.values: dict[sp.Symbol, float] = {}
        for n, c in zip(self.nodes, circuit.capacitance):
            self.values[self.capacitance[n]] = float(c)
        for sym, val in zip(self.inputs, circuit.input_values):
            self.values[sym] = float(val)
        self.n_scalar = sum(
            len(nodes[0]) * (len(nodes[1]) if form == "dense" else 1)
            for _, _, _, nodes, _, form in circuit.element_groups()
        )
        self._collect_values()

    def _collect_values(self) -> None:
        """Numeric values of every parameter symbol (arrays only when expandable)."""
        for name, et, _, nodes, params, form in self.circuit.element_groups():
            for p, value in params.items():
                if p == "C":
                    continue
                if form == "scalar":
                    self.values[_param_symbol(name, p)] = float(value)
                elif et is FreeNode:
                    for node, v in zip(nodes[0], value):
                        self.values[_param_symbol(node, p)] = float(v)
                elif self.expandable:
                    for index in np.ndindex(value.shape):
                        self.values[_param_symbol(name, p, index)] = float(value[index])

    # -- scalar symbolic form ------------------------------------------------
    @property
    def expandable(self) -> bool:
        return self.n_scalar <= self.max_elements

    def _require_expandable(self):
        if not self.expandable:
            raise ValueError(
                f"circuit {self.circuit.name!r} has {self.n_scalar} scalar elements, more than "
                f"max_elements={self.max_elements}; use the vector form (text(), latex())"
            )

    @cached_property
    def element_currents(self) -> dict[str, dict[str, sp.Expr]]:
        """Element name → {node: current into the node} (array elements indexed)."""
        self._require_expandable()
        out: dict[str, dict[str, sp.Expr]] = {}
        for name, et, opts, nodes, params, form in self.circuit.element_groups():
            law = et.law(**opts)
            if form == "dense":
                rows, cols = nodes
                for i, r in enumerate(rows):
                    for j, c in enumerate(cols):
                        vals = {p: params[p][i, j] for p in params}
                        self._instance(out, f"{name}[{i},{j}]", name, (i, j), law, (r, c), vals)
            elif form == "sparse":
                for e in range(len(nodes[0])):
                    ends = tuple(lst[e] for lst in nodes)
                    label = ends[0] if et is FreeNode else f"{name}[{e}]"
                    index = None if et is FreeNode else (e,)
                    elem = ends[0] if et is FreeNode else name
                    self._instance(out, label, elem, index, law, ends, {p: params[p][e] for p in params})
            else:
                self._instance(out, name, name, None, law, tuple(lst[0] for lst in nodes), params)
        return out

    def _instance(self, out, label, element, index, law: Law, ends, values):
        subs = {v: NodeVoltage(n) for v, n in zip(law.voltages, ends)}
        for p in law.params:
            subs[p] = _param_symbol(element, p.name, index)
        currents = {}
        for t, node in enumerate(tuple(ends) + law.implicit_nodes):
            i = law.currents[t].xreplace(subs)
            if i != 0 and node in self.circuit.node_index:
                currents[node] = currents.get(node, 0) + i
        out[label] = currents

    @cached_property
    def rhs(self) -> dict[str, sp.Expr]:
        """Free node → ``f_i``, the total current into it (A)."""
        f = {n: sp.Integer(0) for n in self.nodes}
        for currents in self.element_currents.values():
            for node, i in currents.items():
                f[node] += i
        return f

    @cached_property
    def jacobian(self) -> sp.Matrix:
        """``J = ∂f/∂v`` over the free nodes (S)."""
        f = sp.Matrix([self.rhs[n] for n in self.nodes])
        return f.jacobian(self.states)

    @cached_property
    def S(self) -> sp.Matrix:
        """Reciprocal part ``(J + Jᵀ)/2``."""
        return ((self.jacobian + self.jacobian.T) / 2).applyfunc(sp.simplify)

    @cached_property
    def A(self) -> sp.Matrix:
        """Non-reciprocal part ``(J − Jᵀ)/2`` (zero for a conservative circuit)."""
        return ((self.jacobian - self.jacobian.T) / 2).applyfunc(sp.simplify)

    def param_derivatives(self) -> dict[sp.Symbol, sp.Matrix]:
        """Parameter symbol → ``∂f/∂θ`` (column over the free nodes)."""
        f = sp.Matrix([self.rhs[n] for n in self.nodes])
        params = sorted({s for e in f for s in e.free_symbols} - set(self.states) - set(self.inputs), key=str)
        return {p: f.diff(p) for p in params if not p.name.startswith("C_")}

    def numeric(self, expr):
        """``expr`` with every parameter, capacitance and input replaced by its value."""
        return expr.xreplace({k: sp.Float(v) for k, v in self.values.items()})

    # -- per element -----------------------------------------------------------
    @cached_property
    def reciprocal(self) -> dict[str, bool]:
        """Element (or array) name → reciprocal, decided symbolically from its law."""
        return dict(self.circuit.reciprocal)

    @property
    def nonreciprocal_elements(self) -> list[str]:
        return self.circuit.nonreciprocal_elements

    def nonreciprocal_part(self, name: str) -> tuple[list[str], sp.Matrix]:
        """Terminal nodes and ``(J_e − J_eᵀ)/2`` of one element (law symbols for arrays)."""
        for group in self.circuit.element_groups():
            if group.name != name:
                continue
            law, nodes, form = group.law, group.nodes, group.form
            if form != "scalar":
                return [str(v) for v in law.voltages], law.nonreciprocal_part
            ends = [lst[0] for lst in nodes] + list(law.implicit_nodes)
            subs = {v: NodeVoltage(n) for v, n in zip(law.voltages, ends)}
            subs.update({p: _param_symbol(name, p.name) for p in law.params})
            return ends, law.nonreciprocal_part.xreplace(subs)
        raise KeyError(f"no element {name!r}")

    # -- printing --------------------------------------------------------------
    def _vector_form(self) -> bool:
        return bool(self.circuit.arrays) or not self.expandable

    def lines(self, style: str = "text", numeric: bool = False) -> list[tuple[str, str, str]]:
        """``(node or layer, left side, right side)`` per equation, ``style`` text or latex."""
        if self._vector_form():
            return _vector_lines(self, style, numeric)
        out = []
        for node in self.nodes:
            rhs = self.rhs[node]
            if numeric:
                rhs = self.numeric(rhs)
            c = self.capacitance[node]
            if style == "latex":
                names = self._latex_names(rhs, c)
                lhs = f"{sp.latex(c, symbol_names=names)}\\,\\dot{{{_latex_name(NodeVoltage(node))}}}"
                out.append((node, lhs, sp.latex(rhs, symbol_names=names)))
            else:
                out.append((node, f"{c}·dv_{node}/dt", _text(rhs)))
        return out

    @staticmethod
    def _latex_names(*exprs) -> dict:
        return {s: _latex_name(s) for e in exprs for s in sp.sympify(e).free_symbols}

    def text(self, numeric: bool = False) -> str:
        """The equations, one per line, as plain text."""
        return "\n".join(f"{lhs} = {rhs}" for _, lhs, rhs in self.lines("text", numeric))

    def latex(self, numeric: bool = False) -> str:
        """The equations as a LaTeX ``aligned`` block."""
        body = " \\\\\n".join(f"{lhs} &= {rhs}" for _, lhs, rhs in self.lines("latex", numeric))
        return "\\begin{aligned}\n" + body + "\n\\end{aligned}"

    def to_dict(self) -> dict:
        """JSON-ready summary: nodes, equations, reciprocity, non-reciprocal parts."""
        d = {
            "circuit": self.circuit.name,
            "nodes": self.nodes,
            "inputs": {n: float(v) for n, v in zip(self.circuit.clamped_nodes, self.circuit.input_values)},
            "outputs": self.circuit.outputs,
            "equations": {name: rhs for name, _, rhs in self.lines("text")},
            "capacitance": {n: f"C_{n}" for n in self.nodes},
            "reciprocal": self.reciprocal,
            "nonreciprocal_elements": self.nonreciprocal_elements,
            "conservative": self.circuit.is_conservative,
            "parameters": {str(k): v for k, v in self.values.items() if not isinstance(k, NodeVoltage)},
        }
        if self.expandable and not self._vector_form():
            d["nonreciprocal_parts"] = {}
            for name in self.nonreciprocal_elements:
                ends, A = self.nonreciprocal_part(name)
                d["nonreciprocal_parts"][name] = {
                    "terminals": ends,
                    "matrix": [[_text(a) for a in row] for row in A.tolist()],
                }
            d["A"] = [[_text(a) for a in row] for row in self.A.tolist()]
        return d


def derive(circuit: Circuit, max_elements: int = 20000) -> Equations:
    """The :class:`Equations` of ``circuit``."""
    return Equations(circuit, max_elements=max_elements)


def _text(expr) -> str:
    return sp.sstr(expr).replace("**", "^")


# -- vector equations ----------------------------------------------------------
# Layer vectors multiply elementwise ("*" in text, juxtaposition in LaTeX);
# "·" is a matrix-vector product with a dense block's parameter matrix.


def _vector_lines(eq: Equations, style: str, numeric: bool):
    circuit = eq.circuit
    latex = style == "latex"
    layer_of = {n: lname for lname, layer in circuit.layers.items() if isinstance(layer, Layer) for n in layer.nodes}
    targets: dict[str, list[str]] = {}
    for node in circuit.free_nodes:
        targets.setdefault(layer_of.get(node, node), [])

    def label(nodes) -> str | None:
        """The layer (or scalar node) that ``nodes`` are exactly, else None."""
        for lname, layer in circuit.layers.items():
            if list(nodes) == list(layer.nodes):
                return lname
        return nodes[0] if len(nodes) == 1 and nodes[0] not in layer_of else None

    def fmt(expr) -> str:
        if numeric:
            expr = eq.numeric(expr)
        if latex:
            return sp.latex(expr, symbol_names={s: _latex_name(s) for s in expr.free_symbols})
        return _text(expr)

    def vec(lab) -> sp.Symbol:
        return sp.Symbol(f"v_{lab}", real=True)

    for group in circuit.element_groups():
        name, et, nodes, form, law = group.name, group.element_type, group.nodes, group.form, group.law
        if form == "dense":
            labels = [label(nodes[0]), label(nodes[1])]
            for out_t, in_t in ((0, 1), (1, 0)):
                out_lab, in_lab = labels[out_t], labels[in_t]
                if law.currents[out_t] == 0 or out_lab not in targets:
                    continue
                terms = separate(law.currents[out_t], law.voltages[out_t], law.voltages[in_t], law.params)
                if terms is None or in_lab is None:
                    targets[out_lab].append(f"{name}({law.element_type.kind}, not separable)")
                    continue
                for t in terms:
                    matrix = f"{t.param}_{name}" + ("^T" if out_t == 1 else "")
                    if latex:
                        matrix = _latex_name(sp.Symbol(f"{t.param}_{name}")) + ("^{T}" if out_t == 1 else "")
                    drive = t.drive.xreplace({law.voltages[in_t]: vec(in_lab)})
                    gain = t.gain.xreplace({law.voltages[out_t]: vec(out_lab)})
                    one = r"\mathbf{1}" if latex else "1"
                    prod = f"{matrix}" + (r"\," if latex else "·") + (one if drive == 1 else _paren(fmt(drive), drive))
                    targets[out_lab].append(
                        prod
                        if gain == 1
                        else f"{_paren(fmt(gain), gain)}" + (r"\odot " if latex else " * ") + f"({prod})"
                    )
            continue
        ends = [list(lst) for lst in nodes] + [[n] * len(nodes[0]) for n in law.implicit_nodes]
        labels = [label(lst) for lst in ends]
        aligned = form == "sparse" and all(lab is not None for lab in labels)
        for t, term_nodes in enumerate(ends):
            if law.currents[t] == 0:
                continue
            if form == "scalar":
                node = term_nodes[0]
                if node not in circuit.node_index:
                    continue
                subs = {v: NodeVoltage(lst[0]) for v, lst in zip(law.voltages, ends)}
                subs.update({p: _param_symbol(name, p.name) for p in law.params})
                text = fmt(law.currents[t].xreplace(subs))
                lab = layer_of.get(node, node)
                targets[lab].append(text if lab == node else f"[{text}]_{{{node}}}")
            elif aligned and labels[t] in targets:
                subs = {v: vec(lab) for v, lab in zip(law.voltages, labels)}
                elem = name if et is not FreeNode else labels[0]
                subs.update({p: sp.Symbol(f"{p.name}_{elem}", real=True) for p in law.params})
                targets[labels[t]].append(fmt(law.currents[t].xreplace(subs)))
            else:
                for lab in sorted({layer_of.get(n, n) for n in term_nodes} & set(targets)):
                    targets[lab].append(
                        f"{name}[{law.element_type.kind} edges into "
                        f"{law.element_type.terminals[min(t, len(nodes) - 1)]}]"
                    )
    out = []
    for lab, parts in targets.items():
        rhs = " + ".join(parts).replace("+ -", "- ") if parts else "0"
        is_layer = lab in circuit.layers
        if latex:
            mid = r" \odot " if is_layer else r"\,"
            lhs = f"C_{{\\mathrm{{{lab}}}}}{mid}\\dot{{v}}_{{\\mathrm{{{lab}}}}}"
        else:
            lhs = f"C_{lab} * dv_{lab}/dt" if is_layer else f"C_{lab}·dv_{lab}/dt"
        out.append((lab, lhs, rhs))
    return out


def _paren(text: str, expr) -> str:
    return f"({text})" if isinstance(expr, sp.Add) else text
