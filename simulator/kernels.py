"""Compiled element groups: the batched numpy kernels behind a compiled system.

Three kinds of group, all generated from the sympy laws:

* :class:`NodeGroup` — one-terminal laws that separate as ``Σ_k θ_k g_k(v)``
  (leaks, biases): elementwise products.
* :class:`DenseGroup` — a dense block whose two-terminal law separates as
  ``Σ_k θ_k a_k(v_in) b_k(v_out)`` (see :mod:`simulator.separable`): one
  matrix product per distinct ``(θ_k, a_k)``.
* :class:`EdgeGroup` — anything else, as an edge list: gather the terminal
  voltages, evaluate the lambdified law, scatter the currents.

Univariate functions of a node set (``ρ(v_h)``, ``ρ'(v_h)``, …) are shared
by all groups through :class:`Functions`: every function of one layer is
evaluated in a single lambdified call with common subexpressions, once per
state (:class:`Eval` memoises them).

Each group has three stages: the compiled group (laws, indices, parameter
arrays), its *bound* part (inputs fixed: everything that depends only on
them is precomputed) and its *linear* part (Jacobian data at one state).
A group reads and writes only its own terminals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from circuits.element import Law

from .separable import separate

__all__ = ["DenseGroup", "EdgeGroup", "Eval", "Functions", "Group", "NodeGroup", "Terminal"]


class _Sqrt(sp.Function):
    """``√x`` kept unevaluated so that CSE shares it between ``x^(k/2)`` powers."""


class _Printer(NumPyPrinter):
    """NumPy code with cheap small powers: ``x**-1 → 1/x``, ``x**3 → x*x*x``, ``x**-1.5 → 1/(√x·√x·√x)``."""

    def _print__Sqrt(self, expr):
        return f"numpy.sqrt({self._print(expr.args[0])})"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        b = self._print(base)
        if exp == -1:
            return f"(1/({b}))"
        if exp.is_Integer and 1 < abs(int(exp)) <= 4:
            if base.is_Symbol:  # evaluated once already: multiply it out
                prod = "*".join([b] * abs(int(exp)))
            elif abs(int(exp)) == 2:
                prod = f"numpy.square({b})"
            else:
                return super()._print_Pow(expr, rational=rational)
            return f"({prod})" if exp > 0 else f"(1/({prod}))"
        return super()._print_Pow(expr, rational=rational)


def _half_powers(expr: sp.Expr) -> sp.Expr:
    """Rewrite ``b^(k/2)`` as ``_Sqrt(b)^k`` (no ``numpy.power`` with fractional exponents)."""
    return expr.replace(
        lambda e: e.is_Pow and e.exp.is_Rational and e.exp.q == 2,
        lambda e: _Sqrt(e.base) ** int(e.exp.p),
    )


def _lambdify(args, exprs):
    exprs = [_half_powers(sp.sympify(e)) for e in exprs]
    return sp.lambdify(args, exprs, modules="numpy", cse=True, printer=_Printer)


def _is_zero(a) -> bool:
    return np.isscalar(a) and a == 0


def _contiguous(idx: np.ndarray):
    """A slice equal to ``idx`` when it is an increasing run, else ``idx``."""
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


class Terminal:
    """One terminal of a group: which nodes it reads and where its current goes.

    ``key`` identifies the node set, so that groups on the same layer share
    evaluated functions.
    """

    def __init__(self, nodes: Sequence[str], free_index: dict, clamped_index: dict, n: int):
        m = len(nodes)
        is_free = np.array([node in free_index for node in nodes])
        self.m = m
        self.free_pos = np.flatnonzero(is_free)
        self.clamped_pos = np.flatnonzero(~is_free)
        self.free_idx = np.array([free_index[nodes[e]] for e in self.free_pos], dtype=int)
        self.clamped_idx = np.array([clamped_index[nodes[e]] for e in self.clamped_pos], dtype=int)
        self.all_free = len(self.clamped_pos) == 0
        self.all_clamped = len(self.free_pos) == 0
        self.any_free = not self.all_clamped
        self._x_sel = _contiguous(self.free_idx)
        self._u_sel = _contiguous(self.clamped_idx)
        self.key = (self.free_pos.tobytes(), self.free_idx.tobytes(), self.clamped_idx.tobytes(), m)
        if self.all_free and len(np.unique(self.free_idx)) == m:
            self._scatter = None
        else:
            self._scatter = scipy.sparse.csr_matrix(
                (np.ones(len(self.free_pos)), (self.free_pos, self.free_idx)), shape=(m, n)
            )

    def read(self, x, u) -> np.ndarray:
        """Terminal voltages ``(batch, m)`` from the state and the inputs."""
        if self.all_free:
            return x[:, self._x_sel]
        if self.all_clamped:
            return u[:, self._u_sel]
        out = np.empty((max(len(x), len(u)), self.m), dtype=x.dtype)
        out[:, self.free_pos] = x[:, self.free_idx]
        out[:, self.clamped_pos] = u[:, self.clamped_idx]
        return out

    def tangent(self, v: np.ndarray) -> np.ndarray:
        """A state-space vector read at this terminal (zero where clamped)."""
        if self.all_free:
            return v[:, self._x_sel]
        out = np.zeros((len(v), self.m), dtype=v.dtype)
        out[:, self.free_pos] = v[:, self.free_idx]
        return out

    def add(self, out: np.ndarray, current) -> None:
        """Add per-element ``current`` ``(batch, m)`` into the free nodes of ``out``."""
        if self._scatter is None:
            out[:, self._x_sel] += current
        else:
            out += np.broadcast_to(current, (len(out), self.m)) @ self._scatter


class Univariate:
    """Handle to a function of one terminal's voltages, registered in :class:`Functions`."""

    def __init__(self, key, index: int, expr: sp.Expr, const, dconst):
        self.key, self.index, self.expr, self.const, self.dconst = key, index, expr, const, dconst


class Functions:
    """Registry of the univariate functions of each node set, lambdified together."""

    _v = sp.Symbol("v", real=True)

    def __init__(self):
        self.exprs: dict = {}
        self._values: dict = {}
        self._both: dict = {}

    def add(self, terminal: Terminal, expr: sp.Expr, symbol: sp.Symbol, energy: bool = False) -> Univariate:
        """Register ``expr`` (a function of ``symbol``, read at ``terminal``).

        Energy terms go in a separate batch: they are not needed for currents.
        """
        expr = sp.sympify(expr).xreplace({symbol: self._v})
        simpler = sp.simplify(expr)
        if sp.count_ops(simpler) < sp.count_ops(expr):
            expr = simpler
        deriv = sp.diff(expr, self._v)
        const = float(expr) if not expr.free_symbols else None
        dconst = float(deriv) if not deriv.free_symbols else None
        key = (terminal.key, energy)
        lst = self.exprs.setdefault(key, [])
        if expr not in lst:
            lst.append(expr)
        return Univariate(key, lst.index(expr), expr, const, dconst)

    def finalize(self) -> None:
        for key, lst in self.exprs.items():
            self._values[key] = _lambdify([self._v], lst)
            self._both[key] = _lambdify([self._v], lst + [sp.diff(e, self._v) for e in lst])

    def values(self, key, V):
        return self._values[key](V)

    def both(self, key, V):
        out = self._both[key](V)
        k = len(out) // 2
        return out[:k], out[k:]


class Eval:
    """One evaluation point (state ``x``, inputs ``u``): memoised terminal reads and functions."""

    def __init__(self, functions: Functions, x, u):
        self.functions, self.x, self.u = functions, x, u
        self._read: dict = {}
        self._vals: dict = {}
        self._ders: dict = {}

    def read(self, t: Terminal) -> np.ndarray:
        V = self._read.get(t.key)
        if V is None:
            V = self._read[t.key] = t.read(self.x, self.u)
        return V

    def value(self, f: Univariate, t: Terminal):
        if f.const is not None:
            return f.const
        vals = self._vals.get(f.key)
        if vals is None:
            vals = self._vals[f.key] = self.functions.values(f.key, self.read(t))
        return vals[f.index]

    def derivative(self, f: Univariate, t: Terminal):
        if f.dconst is not None:
            return f.dconst
        ders = self._ders.get(f.key)
        if ders is None:
            vals, ders = self.functions.both(f.key, self.read(t))
            self._vals[f.key], self._ders[f.key] = vals, ders
        return ders[f.index]


class Group:
    """Common part of compiled groups: a law, its elements and their parameters."""

    form: str
    name: str
    law: Law
    element_names: list[str]
    reciprocal: bool
    # user parameter name -> (group parameter, element index or None, user shape)
    param_keys: dict[str, tuple[str, int | None, tuple]]
    arrays: dict[str, np.ndarray]

    def _init(self, name, law, element_names, arrays, param_keys, dtype):
        self.name, self.law, self.element_names = name, law, list(element_names)
        self.reciprocal = law.reciprocal
        self.param_keys = param_keys
        self.arrays = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}
        self.pnames = [str(p) for p in law.params]

    @staticmethod
    def _pick(arr: np.ndarray, i: int | None, shape: tuple) -> np.ndarray:
        return arr.reshape(shape) if i is None else arr[i : i + 1].reshape(())

    def parameters(self) -> dict[str, np.ndarray]:
        """User-visible parameter arrays (views: writing them changes the circuit)."""
        return {key: self._pick(self.arrays[p], i, shape) for key, (p, i, shape) in self.param_keys.items()}

    def split(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Group-level arrays → user parameter names and shapes."""
        return {key: self._pick(grads[p], i, shape) for key, (p, i, shape) in self.param_keys.items()}


# -- edge groups ---------------------------------------------------------------------


class EdgeGroup(Group):
    """Elements of one law given as an edge list: gather, evaluate, scatter."""

    form = "edge"

    def __init__(self, name, law: Law, element_names, terminal_nodes, arrays, param_keys, layout, dtype):
        self._init(name, law, element_names, arrays, param_keys, dtype)
        free_index, clamped_index, n = layout
        m = len(terminal_nodes[0])
        nodes = list(terminal_nodes) + [[node] * m for node in law.implicit_nodes]
        self.terminals = [Terminal(t, free_index, clamped_index, n) for t in nodes]
        self.m = m
        args = list(law.voltages) + list(law.params)
        self._currents = _lambdify(args, law.currents)
        k = law.n_terminals
        self.jac_entries = [(t, s) for t in range(k) for s in range(k) if law.jacobian[t, s] != 0]
        self._jac = _lambdify(args, [law.jacobian[t, s] for t, s in self.jac_entries])
        self.dparam_entries = [(p, t) for p in self.pnames for t in range(k) if law.param_derivatives[p][t] != 0]
        self._dparam = _lambdify(args, [law.param_derivatives[p][t] for p, t in self.dparam_entries])
        if law.energy is not None:
            self._energy = _lambdify(args, [law.energy])
            self._denergy = _lambdify(args, [sp.diff(law.energy, p) for p in law.params])

    def bind(self, u, functions):
        return _BoundEdge(self, u)


class _BoundEdge:
    def __init__(self, group: EdgeGroup, u):
        self.g = group
        self.fixed = {i: t.read(None, u) for i, t in enumerate(group.terminals) if t.all_clamped}

    def args(self, ctx: Eval):
        g = self.g
        volts = [self.fixed[i] if i in self.fixed else ctx.read(t) for i, t in enumerate(g.terminals)]
        return volts + [g.arrays[p] for p in g.pnames]

    def add_currents(self, ctx: Eval, out) -> None:
        for t, current in zip(self.g.terminals, self.g._currents(*self.args(ctx))):
            if t.any_free and not _is_zero(current):
                t.add(out, current)

    def linearize(self, ctx: Eval):
        return _LinearEdge(self.g, self.args(ctx))

    def energy(self, ctx: Eval) -> np.ndarray:
        e = self.g._energy(*self.args(ctx))[0]
        return np.broadcast_to(e, (len(ctx.x), self.g.m)).sum(axis=1)

    def energy_param_grad(self, ctx: Eval) -> dict[str, np.ndarray]:
        vals = self.g._denergy(*self.args(ctx))
        return {p: np.broadcast_to(v, (len(ctx.x), self.g.m)).sum(axis=0) for p, v in zip(self.g.pnames, vals)}


class _LinearEdge:
    def __init__(self, group: EdgeGroup, args):
        self.g = group
        self.args = args
        self.jac = dict(zip(group.jac_entries, group._jac(*args)))

    def _apply(self, v, out, transpose: bool, cross_only: bool = False, sign: float = 1.0) -> None:
        terms = self.g.terminals
        vec = {s: terms[s].tangent(v) for s in range(len(terms)) if terms[s].any_free}
        acc: dict[int, np.ndarray] = {}
        for (t, s), j in self.jac.items():
            if cross_only and t == s:
                continue
            src, dst = (t, s) if transpose else (s, t)
            if src in vec and terms[dst].any_free:
                acc[dst] = acc.get(dst, 0) + j * vec[src]
        for dst, a in acc.items():
            terms[dst].add(out, sign * a)

    def jvp_into(self, v, out) -> None:
        self._apply(v, out, transpose=False)

    def vjp_into(self, w, out) -> None:
        self._apply(w, out, transpose=True)

    def antisym_into(self, v, out) -> None:
        # (J − Jᵀ)v; an element's diagonal entries cancel.
        self._apply(v, out, transpose=False, cross_only=True)
        self._apply(v, out, transpose=True, cross_only=True, sign=-1.0)

    def param_vjp(self, w) -> dict[str, np.ndarray]:
        g = self.g
        grads = {p: np.zeros(g.m, dtype=w.dtype) for p in g.pnames}
        cot = {t: g.terminals[t].tangent(w) for t in range(len(g.terminals)) if g.terminals[t].any_free}
        for (p, t), d in zip(g.dparam_entries, g._dparam(*self.args)):
            if t in cot:
                grads[p] += np.broadcast_to(d * cot[t], (len(w), g.m)).sum(axis=0)
        return grads


# -- node groups ----------------------------------------------------------------------


class NodeGroup(Group):
    """One-terminal laws ``Σ_k θ_k g_k(v)``, evaluated elementwise."""

    form = "node"

    def __init__(
        self, name, law, element_names, terminal: Terminal, arrays, param_keys, terms, energy_terms, functions, dtype
    ):
        self._init(name, law, element_names, arrays, param_keys, dtype)
        self.terminal = terminal
        (v,) = law.voltages
        self.terms = [(t.param, functions.add(terminal, t.gain, v)) for t in terms]
        self.energy_terms = [(t.param, functions.add(terminal, t.gain, v, energy=True)) for t in energy_terms]

    def bind(self, u, functions):
        return _BoundNode(self)


class _BoundNode:
    def __init__(self, group: NodeGroup):
        self.g = group

    def add_currents(self, ctx: Eval, out) -> None:
        g = self.g
        if not g.terminal.any_free:
            return
        total = 0.0
        for p, fn in g.terms:
            total = total + g.arrays[p] * ctx.value(fn, g.terminal)
        g.terminal.add(out, total)

    def linearize(self, ctx: Eval):
        return _LinearNode(self.g, ctx)

    def energy(self, ctx: Eval) -> np.ndarray:
        g = self.g
        total = sum(g.arrays[p] * ctx.value(fn, g.terminal) for p, fn in g.energy_terms)
        return np.broadcast_to(total, (len(ctx.x), g.terminal.m)).sum(axis=1)

    def energy_param_grad(self, ctx: Eval) -> dict[str, np.ndarray]:
        g = self.g
        grads = {p: np.zeros_like(a) for p, a in g.arrays.items()}
        for p, fn in g.energy_terms:
            grads[p] += np.broadcast_to(ctx.value(fn, g.terminal), (len(ctx.x), g.terminal.m)).sum(axis=0)
        return grads


class _LinearNode:
    def __init__(self, group: NodeGroup, ctx: Eval):
        self.g = group
        t = group.terminal
        self.values = [(p, ctx.value(fn, t)) for p, fn in group.terms]
        diag = 0.0
        for p, fn in group.terms:
            d = ctx.derivative(fn, t)
            if not _is_zero(d):
                diag = diag + group.arrays[p] * d
        self.diag = diag  # ∂i/∂v per element: the Jacobian is diagonal

    def jvp_into(self, v, out) -> None:
        t = self.g.terminal
        if t.any_free and not _is_zero(self.diag):
            t.add(out, self.diag * t.tangent(v))

    vjp_into = jvp_into

    def antisym_into(self, v, out) -> None:
        return None

    def param_vjp(self, w) -> dict[str, np.ndarray]:
        g = self.g
        grads = {p: np.zeros_like(a) for p, a in g.arrays.items()}
        if not g.terminal.any_free:
            return grads
        wt = g.terminal.tangent(w)
        for p, val in self.values:
            grads[p] += np.broadcast_to(val * wt, wt.shape).sum(axis=0)
        return grads


# -- dense groups ---------------------------------------------------------------------


class DenseTerm:
    """``θ · drive(v_in) · gain(v_out)`` flowing into side ``out`` of a dense block."""

    def __init__(self, out: str, param: str, drive: Univariate, gain: Univariate, shape: tuple[int, int]):
        self.out, self.param, self.drive, self.gain, self.shape = out, param, drive, gain, shape
        self.into = "cols" if out == "rows" else "rows"

    def mm(self, a, P: np.ndarray) -> np.ndarray:
        """Drive ``(batch, n_in)`` → contribution ``(batch, n_out)``."""
        if np.isscalar(a):
            return a * P.sum(axis=1 if self.out == "rows" else 0)
        return a @ P.T if self.out == "rows" else a @ P

    def mm_back(self, b: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Cotangent ``(batch, n_out)`` → ``(batch, n_in)``."""
        return b @ P if self.out == "rows" else b @ P.T

    def outer(self, b: np.ndarray, a) -> np.ndarray:
        """``Σ_batch outer(b, a)`` shaped like ``P`` (rows, cols)."""
        if np.isscalar(a):
            s = b.sum(axis=0) * a
            return np.broadcast_to(s[:, None] if self.out == "rows" else s[None, :], self.shape).copy()
        return b.T @ a if self.out == "rows" else a.T @ b


class DenseGroup(Group):
    """A dense block whose law separates: every current is a few matrix products."""

    form = "dense"

    def __init__(
        self,
        name,
        law: Law,
        rows: Terminal,
        cols: Terminal,
        arrays,
        param_keys,
        row_terms,
        col_terms,
        energy_terms,
        functions,
        dtype,
    ):
        self._init(name, law, [name], arrays, param_keys, dtype)
        self.side = {"rows": rows, "cols": cols}
        v_r, v_c = law.voltages
        sym = {"rows": v_r, "cols": v_c}

        def make(out, t, energy=False):
            into = "cols" if out == "rows" else "rows"
            return DenseTerm(
                out,
                t.param,
                functions.add(self.side[into], t.drive, sym[into], energy),
                functions.add(self.side[out], t.gain, sym[out], energy),
                self.arrays[t.param].shape,
            )

        # Currents into clamped nodes go nowhere: drop those terms.
        self.terms = [make("rows", t) for t in row_terms if rows.any_free]
        self.terms += [make("cols", t) for t in col_terms if cols.any_free]
        self.energy_terms = [make("rows", t, energy=True) for t in energy_terms]

    def bind(self, u, functions):
        return _BoundDense(self, u, functions)


class _BoundDense:
    def __init__(self, group: DenseGroup, u, functions):
        self.g = group
        ctx = Eval(functions, None, u)
        # Products whose drive reads only inputs are constant while bound.
        self.const = {}
        for term in group.terms + group.energy_terms:
            side = group.side[term.into]
            if term.drive.const is not None or side.all_clamped:
                self.const[id(term)] = term.mm(ctx.value(term.drive, side), group.arrays[term.param])

    def product(self, term: DenseTerm, ctx: Eval):
        c = self.const.get(id(term))
        if c is not None:
            return c
        return term.mm(ctx.value(term.drive, self.g.side[term.into]), self.g.arrays[term.param])

    def add_currents(self, ctx: Eval, out) -> None:
        acc = {}
        for term in self.g.terms:
            contrib = self.product(term, ctx)
            gain = ctx.value(term.gain, self.g.side[term.out])
            if not (np.isscalar(gain) and gain == 1.0):
                contrib = contrib * gain
            acc[term.out] = acc[term.out] + contrib if term.out in acc else contrib
        for side, current in acc.items():
            self.g.side[side].add(out, current)

    def linearize(self, ctx: Eval):
        return _LinearDense(self, ctx)

    def energy(self, ctx: Eval) -> np.ndarray:
        total = 0.0
        for term in self.g.energy_terms:
            e = self.product(term, ctx) * ctx.value(term.gain, self.g.side[term.out])
            total = total + np.broadcast_to(e, (len(ctx.x), np.shape(e)[-1])).sum(axis=1)
        return total

    def energy_param_grad(self, ctx: Eval) -> dict[str, np.ndarray]:
        g = self.g
        grads = {p: np.zeros_like(a) for p, a in g.arrays.items()}
        for term in g.energy_terms:
            gain = np.broadcast_to(ctx.value(term.gain, g.side[term.out]), (len(ctx.x), g.side[term.out].m))
            grads[term.param] += term.outer(gain, ctx.value(term.drive, g.side[term.into]))
        return grads


class _DenseItem(NamedTuple):
    """One term of a dense block evaluated at a state."""

    term: DenseTerm
    P: np.ndarray
    drive: np.ndarray | float
    ddrive: np.ndarray | float
    gain: np.ndarray | float
    dgain: np.ndarray | float
    prod: np.ndarray


class _LinearDense:
    def __init__(self, bound: _BoundDense, ctx: Eval):
        g = bound.g
        self.g = g
        self.items = []
        for term in g.terms:
            out, into = g.side[term.out], g.side[term.into]
            self.items.append(
                _DenseItem(
                    term,
                    g.arrays[term.param],
                    ctx.value(term.drive, into),
                    ctx.derivative(term.drive, into) if into.any_free else 0.0,
                    ctx.value(term.gain, out),
                    ctx.derivative(term.gain, out),
                    bound.product(term, ctx),
                )
            )

    def _cross(self, v, out, transpose: bool, sign: float = 1.0) -> None:
        """The off-diagonal part of ``J v`` (or ``Jᵀ v``): through the matrices."""
        side = self.g.side
        vec = {s: t.tangent(v) for s, t in side.items() if t.any_free}
        acc = {}
        for it in self.items:
            term = it.term
            if _is_zero(it.ddrive) or term.into not in vec:
                continue
            if transpose:
                dst, c = term.into, it.ddrive * term.mm_back(it.gain * vec[term.out], it.P)
            else:
                dst, c = term.out, it.gain * term.mm(it.ddrive * vec[term.into], it.P)
            acc[dst] = acc[dst] + c if dst in acc else c
        for s, c in acc.items():
            side[s].add(out, sign * c)

    def _diagonal(self, v, out) -> None:
        """The diagonal part of ``J`` (from each gain's derivative), symmetric."""
        side = self.g.side
        acc = {}
        for it in self.items:
            if _is_zero(it.dgain):
                continue
            c = it.dgain * it.prod
            acc[it.term.out] = acc[it.term.out] + c if it.term.out in acc else c
        for s, d in acc.items():
            side[s].add(out, d * side[s].tangent(v))

    def jvp_into(self, v, out) -> None:
        self._diagonal(v, out)
        self._cross(v, out, transpose=False)

    def vjp_into(self, w, out) -> None:
        self._diagonal(w, out)
        self._cross(w, out, transpose=True)

    def antisym_into(self, v, out) -> None:
        self._cross(v, out, transpose=False)
        self._cross(v, out, transpose=True, sign=-1.0)

    def param_vjp(self, w) -> dict[str, np.ndarray]:
        side = self.g.side
        grads = {p: np.zeros_like(a) for p, a in self.g.arrays.items()}
        for it in self.items:
            wo = side[it.term.out].tangent(w)
            grads[it.term.param] += it.term.outer(it.gain * wo, it.drive)
        return grads


# -- construction ---------------------------------------------------------------------


def node_group(name, law, element_names, nodes, arrays, param_keys, layout, functions, dtype):
    """A :class:`NodeGroup` if the one-terminal law separates, else ``None``."""
    if law.n_terminals != 1:
        return None
    (v,) = law.voltages
    dummy = sp.Dummy("none")
    terms = separate(law.currents[0], v, dummy, law.params)
    energy_terms = [] if law.energy is None else separate(law.energy, v, dummy, law.params)
    if terms is None or energy_terms is None or any(t.drive != 1 for t in terms + energy_terms):
        return None
    free_index, clamped_index, n = layout
    terminal = Terminal(nodes[0], free_index, clamped_index, n)
    return NodeGroup(name, law, element_names, terminal, arrays, param_keys, terms, energy_terms, functions, dtype)


def dense_group(name, law: Law, nodes, arrays, param_keys, layout, functions, dtype):
    """A :class:`DenseGroup` if the law separates and each side is all free or all clamped."""
    free_index, clamped_index, n = layout
    if law.implicit_nodes:
        return None
    rows = Terminal(nodes[0], free_index, clamped_index, n)
    cols = Terminal(nodes[1], free_index, clamped_index, n)
    if not (rows.all_free or rows.all_clamped) or not (cols.all_free or cols.all_clamped):
        return None
    v_r, v_c = law.voltages
    row_terms = separate(law.currents[0], v_r, v_c, law.params)
    col_terms = separate(law.currents[1], v_c, v_r, law.params)
    energy_terms = [] if law.energy is None else separate(law.energy, v_r, v_c, law.params)
    if row_terms is None or col_terms is None or energy_terms is None:
        return None
    return DenseGroup(name, law, rows, cols, arrays, param_keys, row_terms, col_terms, energy_terms, functions, dtype)
