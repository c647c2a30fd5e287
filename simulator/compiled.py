"""Compile a circuit into batched numpy kernels generated from its element laws.

State ``x`` has shape ``(batch, n)`` (free node voltages, V) and clamped
inputs ``u`` shape ``(batch, n_in)`` or ``(n_in,)``.  Kernels:

* ``f(x)``: currents into the free nodes (A), ``C ẋ = f``;
* ``jvp(x, v) = J v`` and ``vjp(x, w) = Jᵀ w`` with ``J = ∂f/∂x`` (S);
* ``param_vjp(x, w) = Σ_batch wᵀ ∂f/∂θ``: one array per parameter, shaped
  like it (summed over the batch);
* ``cost`` and ``cost_grad`` of the outputs; dense ``jacobian`` for small
  circuits.

Elements are compiled in groups: scalar elements of one type are merged into
one *edge group* (gather terminal voltages, evaluate the lambdified law,
scatter currents); a :class:`~circuits.circuit.Dense` block whose law
separates (see :mod:`simulator.separable`) becomes a *dense group* evaluated
with matrix products; one that does not separate falls back to an edge group
over all element pairs.  Nothing here is written per element type.

Caching: :meth:`CompiledSystem.bind` fixes the inputs and precomputes every
term that depends only on them (e.g. ``W ρ(u)``).  A bound system is valid
until the parameters change; bind again after an update.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse
import sympy as sp

from circuits import Circuit, Dense
from circuits.element import Law

from .costs import Cost, get_cost
from .separable import separate

__all__ = ["Bound", "CompiledSystem", "Linearization", "compile_circuit"]


def _lambdify(args, exprs):
    return sp.lambdify(args, list(exprs), modules="numpy", cse=True)


def _contiguous(idx: np.ndarray):
    """A slice equal to ``idx`` when it is an increasing run, else ``idx``."""
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


class Terminal:
    """How one terminal of a group reads its nodes and where its current goes."""

    def __init__(self, nodes: Sequence[str], free_index: dict, clamped_index: dict, n: int):
        m = len(nodes)
        kind = np.array([n_ in free_index for n_ in nodes])
        self.m = m
        self.free_pos = np.flatnonzero(kind)
        self.clamped_pos = np.flatnonzero(~kind)
        self.free_idx = np.array([free_index[nodes[e]] for e in self.free_pos], dtype=int)
        self.clamped_idx = np.array([clamped_index[nodes[e]] for e in self.clamped_pos], dtype=int)
        self.all_free = len(self.clamped_pos) == 0
        self.all_clamped = len(self.free_pos) == 0
        self.any_free = not self.all_clamped
        self._x_sel = _contiguous(self.free_idx)
        self._u_sel = _contiguous(self.clamped_idx)
        unique = len(np.unique(self.free_idx)) == len(self.free_idx)
        if self.all_free and unique:
            self._scatter = None
        else:
            self._scatter = scipy.sparse.csr_matrix(
                (np.ones(len(self.free_pos)), (self.free_pos, self.free_idx)), shape=(m, n)
            )

    def read(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
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
    """A function of one voltage with its derivative, lambdified once."""

    def __init__(self, expr: sp.Expr, symbol: sp.Symbol):
        self.expr = expr
        deriv = sp.diff(expr, symbol)
        self.const = float(expr) if not expr.free_symbols else None
        self.dconst = float(deriv) if not deriv.free_symbols else None
        self._f = _lambdify([symbol], [expr])
        self._fdf = _lambdify([symbol], [expr, deriv])

    def __call__(self, v):
        return self.const if self.const is not None else self._f(v)[0]

    def with_derivative(self, v):
        if self.const is not None:
            return self.const, 0.0
        f, df = self._fdf(v)
        return f, df


class Group:
    """Common interface of compiled element groups."""

    name: str
    law: Law
    element_names: list[str]
    reciprocal: bool
    # user parameter name -> (group parameter, element index or None, user shape)
    param_keys: dict[str, tuple[str, int | None, tuple]]
    arrays: dict[str, np.ndarray]

    @staticmethod
    def _pick(arr: np.ndarray, i: int | None, shape: tuple) -> np.ndarray:
        return arr.reshape(shape) if i is None else arr[i : i + 1].reshape(())

    def parameters(self) -> dict[str, np.ndarray]:
        """User-visible parameter arrays (views: writing them changes the circuit)."""
        return {key: self._pick(self.arrays[p], i, shape) for key, (p, i, shape) in self.param_keys.items()}

    def split(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Group-level arrays → user parameter names and shapes."""
        return {key: self._pick(grads[p], i, shape) for key, (p, i, shape) in self.param_keys.items()}


class EdgeGroup(Group):
    """Elements of one law given as an edge list: gather, evaluate, scatter."""

    form = "edge"

    def __init__(self, name, law: Law, element_names, terminal_nodes, arrays, param_keys, layout, dtype):
        self.name, self.law, self.element_names = name, law, list(element_names)
        self.reciprocal = law.reciprocal
        self.param_keys = param_keys
        self.arrays = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}
        self.pnames = [str(p) for p in law.params]
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
        self.dparam_entries = [
            (p, t) for p in self.pnames for t in range(k) if law.param_derivatives[p][t] != 0
        ]
        self._dparam = _lambdify(args, [law.param_derivatives[p][t] for p, t in self.dparam_entries])
        if law.energy is not None:
            self._energy = _lambdify(args, [law.energy])
            self._denergy = _lambdify(args, [sp.diff(law.energy, p) for p in law.params])

    def bind(self, u: np.ndarray) -> BoundEdge:
        return BoundEdge(self, u)


class BoundEdge:
    def __init__(self, group: EdgeGroup, u: np.ndarray):
        self.g = group
        self.u = u
        self.fixed = {i: t.read(None, u) for i, t in enumerate(group.terminals) if t.all_clamped}

    def _args(self, x):
        g = self.g
        volts = [self.fixed[i] if i in self.fixed else t.read(x, self.u) for i, t in enumerate(g.terminals)]
        return volts + [g.arrays[p] for p in g.pnames]

    def add_currents(self, x, out) -> None:
        args = self._args(x)
        for t, current in zip(self.g.terminals, self.g._currents(*args)):
            if t.any_free and not (np.isscalar(current) and current == 0):
                t.add(out, current)

    def linearize(self, x) -> LinearEdge:
        return LinearEdge(self, self._args(x))

    def energy(self, x) -> np.ndarray:
        e = self.g._energy(*self._args(x))[0]
        return np.broadcast_to(e, (len(x), self.g.m)).sum(axis=1)

    def energy_param_grad(self, x) -> dict[str, np.ndarray]:
        g = self.g
        vals = g._denergy(*self._args(x))
        return {p: np.broadcast_to(v, (len(x), g.m)).sum(axis=0) for p, v in zip(g.pnames, vals)}


class LinearEdge:
    def __init__(self, bound: BoundEdge, args):
        self.g = bound.g
        self.args = args
        self.batch = max(np.shape(a)[0] if np.ndim(a) == 2 else 1 for a in args[: len(self.g.terminals)])
        self.jac = dict(zip(self.g.jac_entries, self.g._jac(*args)))

    def jvp_into(self, v, out) -> None:
        terms = self.g.terminals
        tang = {s: terms[s].tangent(v) for s in range(len(terms)) if terms[s].any_free}
        acc: dict[int, np.ndarray] = {}
        for (t, s), j in self.jac.items():
            if s in tang and terms[t].any_free:
                acc[t] = acc.get(t, 0) + j * tang[s]
        for t, a in acc.items():
            terms[t].add(out, a)

    def vjp_into(self, w, out) -> None:
        terms = self.g.terminals
        cot = {t: terms[t].tangent(w) for t in range(len(terms)) if terms[t].any_free}
        acc: dict[int, np.ndarray] = {}
        for (t, s), j in self.jac.items():
            if t in cot and terms[s].any_free:
                acc[s] = acc.get(s, 0) + j * cot[t]
        for s, a in acc.items():
            terms[s].add(out, a)

    def param_vjp(self, w) -> dict[str, np.ndarray]:
        g = self.g
        terms = g.terminals
        grads = {p: np.zeros(g.m, dtype=w.dtype) for p in g.pnames}
        cot = {t: terms[t].tangent(w) for t in range(len(terms)) if terms[t].any_free}
        for (p, t), d in zip(g.dparam_entries, g._dparam(*self.args)):
            if t in cot:
                grads[p] += np.broadcast_to(d * cot[t], (len(w), g.m)).sum(axis=0)
        return grads


class DenseTerm:
    """``param · drive(v_in) · gain(v_out)`` flowing into side ``out`` of a dense block."""

    def __init__(self, out: str, param: str, drive: Univariate, gain: Univariate):
        self.out, self.param, self.drive, self.gain = out, param, drive, gain
        self.into = "cols" if out == "rows" else "rows"

    def mm(self, a: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Drive (batch, n_in) → contribution (batch, n_out)."""
        return a @ P.T if self.out == "rows" else a @ P

    def mm_back(self, b: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Cotangent (batch, n_out) → (batch, n_in)."""
        return b @ P if self.out == "rows" else b @ P.T

    def outer(self, b: np.ndarray, a) -> np.ndarray:
        """Σ_batch outer(b, a) shaped like P (rows, cols)."""
        if np.isscalar(a):
            s = b.sum(axis=0) * a
            return s[:, None] if self.out == "rows" else s[None, :]
        return b.T @ a if self.out == "rows" else a.T @ b

    def const_product(self, P: np.ndarray) -> np.ndarray:
        return self.drive.const * P.sum(axis=1 if self.out == "rows" else 0)


class DenseGroup(Group):
    """A dense block whose law separates: every current is a few matrix products."""

    form = "dense"

    def __init__(self, name, law: Law, rows: Terminal, cols: Terminal, arrays, param_keys, terms, energy_terms, dtype):
        self.name, self.law, self.element_names = name, law, [name]
        self.reciprocal = law.reciprocal
        self.param_keys = param_keys
        self.arrays = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}
        self.side = {"rows": rows, "cols": cols}
        # Currents into clamped nodes go nowhere: drop those terms.
        self.terms = [t for t in terms if self.side[t.out].any_free]
        self.energy_terms = energy_terms

    def bind(self, u) -> BoundDense:
        return BoundDense(self, u)


class BoundDense:
    def __init__(self, group: DenseGroup, u):
        self.g = group
        self.u = u
        self.fixed = {s: t.read(None, u) for s, t in group.side.items() if t.all_clamped}
        # Products whose drive reads only inputs are constant while bound.
        self.const_prod = {}
        for k, term in enumerate(group.terms + group.energy_terms):
            P = group.arrays[term.param]
            if term.drive.const is not None:
                self.const_prod[k] = term.const_product(P)
            elif term.into in self.fixed:
                self.const_prod[k] = term.mm(term.drive(self.fixed[term.into]), P)

    def volts(self, x):
        return {s: self.fixed[s] if s in self.fixed else t.read(x, self.u) for s, t in self.g.side.items()}

    def _product(self, k, term, V):
        if k in self.const_prod:
            return self.const_prod[k]
        return term.mm(term.drive(V[term.into]), self.g.arrays[term.param])

    def add_currents(self, x, out) -> None:
        V = self.volts(x)
        acc = {}
        for k, term in enumerate(self.g.terms):
            prod = self._product(k, term, V)
            gain = term.gain(V[term.out])
            contrib = prod * gain if not (np.isscalar(gain) and gain == 1.0) else prod
            acc[term.out] = acc[term.out] + contrib if term.out in acc else contrib
        for side, current in acc.items():
            self.g.side[side].add(out, current)

    def linearize(self, x) -> LinearDense:
        return LinearDense(self, x)

    def energy(self, x) -> np.ndarray:
        V = self.volts(x)
        total = 0.0
        n = len(self.g.terms)
        for k, term in enumerate(self.g.energy_terms):
            prod = self._product(n + k, term, V)
            total = total + np.sum(np.broadcast_to(prod * term.gain(V[term.out]), (len(x), np.shape(prod)[-1])), axis=1)
        return total

    def energy_param_grad(self, x) -> dict[str, np.ndarray]:
        V = self.volts(x)
        g = self.g
        grads = {p: np.zeros_like(a) for p, a in g.arrays.items()}
        for term in g.energy_terms:
            gain = np.broadcast_to(term.gain(V[term.out]), (len(x), g.side[term.out].m))
            grads[term.param] += term.outer(gain, term.drive(V[term.into]))
        return grads


class LinearDense:
    def __init__(self, bound: BoundDense, x):
        g = bound.g
        self.g = g
        V = bound.volts(x)
        self.batch = len(x)
        self.items = []
        for k, term in enumerate(g.terms):
            P = g.arrays[term.param]
            gain, dgain = term.gain.with_derivative(V[term.out])
            if term.drive.const is not None:
                drive, ddrive = term.drive.const, 0.0
            else:
                drive, ddrive = term.drive.with_derivative(V[term.into])
            prod = bound._product(k, term, V)
            self.items.append((term, P, drive, ddrive, gain, dgain, prod))

    def jvp_into(self, v, out) -> None:
        side = self.g.side
        tang = {s: t.tangent(v) for s, t in side.items() if t.any_free}
        acc = {}
        for term, P, drive, ddrive, gain, dgain, prod in self.items:
            c = 0.0
            if term.out in tang and not (np.isscalar(dgain) and dgain == 0):
                c = c + dgain * tang[term.out] * prod
            if term.into in tang and not (np.isscalar(ddrive) and ddrive == 0):
                c = c + gain * term.mm(ddrive * tang[term.into], P)
            if not np.isscalar(c):
                acc[term.out] = acc[term.out] + c if term.out in acc else c
        for s, c in acc.items():
            side[s].add(out, c)

    def vjp_into(self, w, out) -> None:
        side = self.g.side
        cot = {s: t.tangent(w) for s, t in side.items() if t.any_free}
        acc = {}
        for term, P, drive, ddrive, gain, dgain, prod in self.items:
            wo = cot[term.out]
            if not (np.isscalar(dgain) and dgain == 0):
                c = dgain * wo * prod
                acc[term.out] = acc[term.out] + c if term.out in acc else c
            if side[term.into].any_free and not (np.isscalar(ddrive) and ddrive == 0):
                c = ddrive * term.mm_back(gain * wo, P)
                acc[term.into] = acc[term.into] + c if term.into in acc else c
        for s, c in acc.items():
            side[s].add(out, c)

    def param_vjp(self, w) -> dict[str, np.ndarray]:
        side = self.g.side
        grads = {p: np.zeros_like(a) for p, a in self.g.arrays.items()}
        for term, P, drive, ddrive, gain, dgain, prod in self.items:
            wo = side[term.out].tangent(w)
            grads[term.param] += term.outer(gain * wo, drive)
        return grads


class Bound:
    """A compiled system with its inputs fixed: the dynamics ``C ẋ = f(x)``.

    Create with :meth:`CompiledSystem.bind`.  Methods take ``x`` of shape
    ``(batch, n)`` (or ``(n,)``) and return arrays of the same leading shape.
    """

    def __init__(self, system: CompiledSystem, u: np.ndarray):
        self.system = system
        self.u = u
        self.n = system.n
        self.capacitance = system.capacitance
        self.dtype = system.dtype
        self.parts = [g.bind(u) for g in system.groups]
        self._version = system.version

    def _check(self, x):
        if self._version != self.system.version:
            raise RuntimeError("the parameters changed since this system was bound; call bind() again")
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.n:
            raise ValueError(f"state must have shape (batch, {self.n}) or ({self.n},), got {x.shape}")
        if x.ndim == 2 and len(self.u) not in (1, len(x)):
            raise ValueError(f"state batch {len(x)} does not match the input batch {len(self.u)}")
        return x

    def f(self, x: np.ndarray) -> np.ndarray:
        """Currents into the free nodes, ``C dx/dt`` (A)."""
        x = self._check(x)
        x2 = np.atleast_2d(x)
        out = np.zeros((max(len(x2), len(self.u)), self.n), dtype=self.dtype)
        for p in self.parts:
            p.add_currents(x2, out)
        return out.reshape(x.shape) if x.ndim == 1 else out

    def linearize(self, x: np.ndarray) -> Linearization:
        """Precompute everything ``J`` needs at ``x``; see :class:`Linearization`."""
        x = self._check(x)
        return Linearization(self, np.atleast_2d(x), squeeze=x.ndim == 1)

    def jvp(self, x, v):
        """``J(x) v`` (A)."""
        return self.linearize(x).jvp(v)

    def vjp(self, x, w):
        """``J(x)ᵀ w``."""
        return self.linearize(x).vjp(w)

    def param_vjp(self, x, w) -> dict[str, np.ndarray]:
        """``Σ_batch wᵀ ∂f/∂θ`` per parameter, shaped like it."""
        return self.linearize(x).param_vjp(w)

    def jacobian(self, x) -> np.ndarray:
        """Dense ``J = ∂f/∂x`` of shape ``(batch, n, n)`` (small circuits)."""
        return self.linearize(x).dense()

    def energy(self, x) -> np.ndarray:
        """Total co-content ``E(x)`` per sample (W); needs every law in energy form."""
        self.system.require_energy()
        x2 = np.atleast_2d(self._check(x))
        return sum(p.energy(x2) for p in self.parts)

    def energy_param_grad(self, x) -> dict[str, np.ndarray]:
        """``Σ_batch ∂E/∂θ`` per parameter at state ``x``."""
        self.system.require_energy()
        x2 = np.atleast_2d(self._check(x))
        out = {}
        for g, p in zip(self.system.groups, self.parts):
            out.update(g.split(p.energy_param_grad(x2)))
        return out


class Linearization:
    """``J`` at one state, matrix-free: ``jvp``, ``vjp``, ``param_vjp``, ``antisym``."""

    def __init__(self, bound: Bound, x: np.ndarray, squeeze: bool = False):
        self.bound = bound
        self.x = x
        self.n = bound.n
        self.dtype = bound.dtype
        self.squeeze = squeeze
        self.parts = [p.linearize(x) for p in bound.parts]
        self.groups = bound.system.groups

    def _vec(self, v):
        v = np.asarray(v, dtype=self.dtype)
        v2 = np.atleast_2d(v)
        if v2.shape[-1] != self.n:
            raise ValueError(f"vector must have {self.n} entries per sample, got shape {v.shape}")
        return v2

    def _out(self, v2):
        return np.zeros((max(len(v2), len(self.x)), self.n), dtype=self.dtype)

    def _ret(self, out, v):
        return out[0] if self.squeeze and np.ndim(v) == 1 else out

    def jvp(self, v: np.ndarray) -> np.ndarray:
        """``J v``."""
        v2 = self._vec(v)
        out = self._out(v2)
        for p in self.parts:
            p.jvp_into(v2, out)
        return self._ret(out, v)

    def vjp(self, w: np.ndarray) -> np.ndarray:
        """``Jᵀ w``."""
        w2 = self._vec(w)
        out = self._out(w2)
        for p in self.parts:
            p.vjp_into(w2, out)
        return self._ret(out, w)

    def antisym(self, v: np.ndarray) -> np.ndarray:
        """``(J − Jᵀ) v = 2 A v``, summed over the non-reciprocal groups only.

        Each group contributes from its own terminals: this is the sum of the
        elements' local AEP corrections.
        """
        v2 = self._vec(v)
        out = self._out(v2)
        minus = self._out(v2)
        for g, p in zip(self.groups, self.parts):
            if not g.reciprocal:
                p.jvp_into(v2, out)
                p.vjp_into(v2, minus)
        return self._ret(out - minus, v)

    def param_vjp(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """``Σ_batch wᵀ ∂f/∂θ`` per parameter, each shaped like its parameter."""
        w2 = self._vec(w)
        out = {}
        for g, p in zip(self.groups, self.parts):
            out.update(g.split(p.param_vjp(w2)))
        return out

    def dense(self) -> np.ndarray:
        """Dense ``J`` of shape ``(batch, n, n)`` (one ``jvp`` per column)."""
        B = len(self.x)
        J = np.empty((B, self.n, self.n), dtype=self.dtype)
        e = np.zeros((B, self.n), dtype=self.dtype)
        for j in range(self.n):
            e[:, j] = 1
            J[:, :, j] = self.jvp(e) if not self.squeeze else np.atleast_2d(self.jvp(e))
            e[:, j] = 0
        return J


class CompiledSystem:
    """A circuit compiled to batched kernels.

    Attributes
    ----------
    circuit : Circuit
    nodes : list of str
        Free node names, in state order.
    inputs : list of str
        Clamped node names, in input order.
    n, n_inputs : int
    capacitance : ndarray (n,)
        F.
    outputs : ndarray of int
        State indices of the output nodes.
    targets : ndarray
        Default targets from the circuit (NaN where none was given).
    cost : Cost
    groups : list
        Compiled element groups (each owns its parameters).
    params : dict
        Parameter name (``element.param``) → array view; write with
        :meth:`set_params` (in-place writes are not seen by bound systems).
    trainable : dict
        Parameter name → trainable by default.
    """

    def __init__(self, circuit: Circuit, dtype=np.float64, cost: str | Cost = "squared_error"):
        self.circuit = circuit
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.nodes = list(circuit.free_nodes)
        self.inputs = list(circuit.clamped_nodes)
        self.n, self.n_inputs = len(self.nodes), len(self.inputs)
        self.capacitance = circuit.capacitance.astype(self.dtype)
        self.input_values = circuit.input_values.astype(self.dtype)
        self.outputs = np.array([circuit.node_index[o] for o in circuit.outputs], dtype=int)
        self.targets = circuit.targets.copy()
        self.cost = get_cost(cost)
        self.version = 0
        layout = (circuit.node_index, circuit.clamped_index, self.n)
        self.groups = _build_groups(circuit, layout, self.dtype)
        self.params: dict[str, np.ndarray] = {}
        self.trainable: dict[str, bool] = {}
        self.param_group: dict[str, Group] = {}
        for g in self.groups:
            decl = {p.name: p for p in g.law.element_type.parameters}
            for key, view in g.parameters().items():
                self.params[key] = view
                self.trainable[key] = decl[key.rsplit(".", 1)[1]].trainable
                self.param_group[key] = g

    # -- binding -------------------------------------------------------------
    def bind(self, inputs: np.ndarray | None = None) -> Bound:
        """Fix the clamped inputs (V): ``None`` (the circuit's values), ``(n_in,)`` or ``(batch, n_in)``."""
        if inputs is None:
            u = self.input_values[None, :]
        else:
            u = np.asarray(inputs, dtype=self.dtype)
            if u.ndim == 1:
                u = u[None, :]
            if u.ndim != 2 or u.shape[1] != self.n_inputs:
                raise ValueError(
                    f"inputs must have shape (batch, {self.n_inputs}) or ({self.n_inputs},) "
                    f"for inputs {self.inputs[:3]}{'…' if self.n_inputs > 3 else ''}; got {np.shape(inputs)}"
                )
            if not np.all(np.isfinite(u)):
                raise ValueError("inputs contain NaN or infinite values")
        return Bound(self, u)

    def f(self, x, inputs=None):
        """``f(x)`` with the given inputs; see :meth:`Bound.f`."""
        return self.bind(inputs).f(x)

    def jvp(self, x, v, inputs=None):
        """``J(x) v``; see :meth:`Linearization.jvp`."""
        return self.bind(inputs).jvp(x, v)

    def vjp(self, x, w, inputs=None):
        """``J(x)ᵀ w``; see :meth:`Linearization.vjp`."""
        return self.bind(inputs).vjp(x, w)

    def param_vjp(self, x, w, inputs=None):
        """``Σ_batch wᵀ ∂f/∂θ``; see :meth:`Linearization.param_vjp`."""
        return self.bind(inputs).param_vjp(x, w)

    def jacobian(self, x, inputs=None):
        """Dense ``J`` ``(batch, n, n)``."""
        return self.bind(inputs).jacobian(x)

    # -- parameters ----------------------------------------------------------
    def set_params(self, values: dict[str, np.ndarray]) -> None:
        """Overwrite parameters by name (shapes must match); invalidates bound systems."""
        for key, value in values.items():
            if key not in self.params:
                from circuits.errors import did_you_mean

                raise KeyError(f"no parameter {key!r}{did_you_mean(key, self.params)}")
            value = np.asarray(value, dtype=self.dtype)
            if value.shape != self.params[key].shape:
                raise ValueError(f"parameter {key!r}: shape {value.shape}, expected {self.params[key].shape}")
            self.params[key][...] = value
        self.version += 1

    def touch(self) -> None:
        """Declare that parameters were changed in place (invalidates bound systems)."""
        self.version += 1

    def get_params(self, trainable_only: bool = False) -> dict[str, np.ndarray]:
        """Copies of the parameters."""
        return {k: v.copy() for k, v in self.params.items() if self.trainable[k] or not trainable_only}

    def require_energy(self) -> None:
        missing = [g.name for g in self.groups if g.law.energy is None]
        if missing:
            raise ValueError(
                "this needs an energy (co-content) for every element, but these elements are "
                f"stated by their currents only: {', '.join(missing[:8])}"
            )

    # -- cost ------------------------------------------------------------------
    def _targets(self, x2, target):
        if target is None:
            if np.isnan(self.targets).any():
                missing = [self.nodes[i] for i, t in zip(self.outputs, self.targets) if np.isnan(t)]
                raise ValueError(f"outputs {missing[:5]} have no target; pass target=")
            return self.targets[None, :]
        y = np.asarray(target, dtype=self.dtype)
        if y.shape[-1] != len(self.outputs):
            raise ValueError(f"target must have {len(self.outputs)} entries per sample (one per output), got {y.shape}")
        return np.atleast_2d(y)

    def _require_outputs(self):
        if not len(self.outputs):
            raise ValueError(f"circuit {self.circuit.name!r} has no outputs; designate one with `output NODE`")

    def cost_value(self, x, target=None) -> np.ndarray:
        """ℓ per sample."""
        self._require_outputs()
        x2 = np.atleast_2d(x)
        return self.cost.value(x2[:, self.outputs], self._targets(x2, target))

    def cost_grad(self, x, target=None) -> np.ndarray:
        """``∂ℓ/∂x`` per sample, shape ``(batch, n)`` (zero off the outputs)."""
        self._require_outputs()
        x2 = np.atleast_2d(x)
        g = np.zeros((len(x2), self.n), dtype=self.dtype)
        g[:, self.outputs] = self.cost.grad(x2[:, self.outputs], self._targets(x2, target))
        return g

    def cost_hvp(self, x, v, target=None) -> np.ndarray:
        """``∂²ℓ/∂x² v`` per sample, shape ``(batch, n)``."""
        self._require_outputs()
        x2, v2 = np.atleast_2d(x), np.atleast_2d(v)
        h = np.zeros((max(len(x2), len(v2)), self.n), dtype=self.dtype)
        h[:, self.outputs] = self.cost.hvp(x2[:, self.outputs], self._targets(x2, target), v2[:, self.outputs])
        return h

    def __repr__(self):
        return f"<CompiledSystem {self.circuit.name!r}: n={self.n}, inputs={self.n_inputs}, groups={len(self.groups)}, {self.dtype}>"


def compile_circuit(circuit: Circuit, dtype=np.float64, cost: str | Cost = "squared_error") -> CompiledSystem:
    """Compile ``circuit`` into batched kernels.

    Parameters
    ----------
    circuit
        The circuit.
    dtype
        ``numpy.float64`` (default) or ``numpy.float32``.
    cost
        Output cost: ``"squared_error"`` (default) or ``"cross_entropy"``.
    """
    return CompiledSystem(circuit, dtype=dtype, cost=cost)


def _build_groups(circuit: Circuit, layout, dtype) -> list[Group]:
    free_index, clamped_index, n = layout
    groups: list[Group] = []
    merged: dict[tuple, dict] = {}
    for name, et, opts, nodes, params, form in circuit.element_groups():
        law = et.law(**opts)
        if form == "scalar":
            key = (et, tuple(sorted(opts.items())))
            entry = merged.setdefault(key, {"law": law, "names": [], "nodes": [[] for _ in nodes], "params": {p: [] for p in params}})
            i = len(entry["names"])
            entry["names"].append(name)
            for t, lst in enumerate(nodes):
                entry["nodes"][t] += lst
            for p, v in params.items():
                entry["params"][p].append(v)
            entry.setdefault("keys", {}).update({f"{name}.{p}": (p, i, ()) for p in params})
            continue
        keys = {f"{name}.{p}": (p, None, np.shape(v)) for p, v in params.items()}
        if form == "dense":
            dense = _dense_group(name, law, nodes, params, keys, layout, dtype)
            if dense is not None:
                groups.append(dense)
                continue
            # Not separable: broadcast over every (row, col) pair as an edge list.
            r, c = np.indices((len(nodes[0]), len(nodes[1]))).reshape(2, -1)
            nodes = [list(np.asarray(nodes[0])[r]), list(np.asarray(nodes[1])[c])]
        flat = {p: np.reshape(v, -1) for p, v in params.items()}
        groups.append(EdgeGroup(name, law, [name], nodes, flat, keys, layout, dtype))
    for entry in merged.values():
        arrays = {p: np.asarray(v, dtype=float) for p, v in entry["params"].items()}
        name = entry["names"][0] if len(entry["names"]) == 1 else f"{entry['law'].element_type.kind}*"
        groups.append(EdgeGroup(name, entry["law"], entry["names"], entry["nodes"], arrays, entry["keys"], layout, dtype))
    return groups


def _dense_group(name, law: Law, nodes, params, keys, layout, dtype):
    free_index, clamped_index, n = layout
    if law.implicit_nodes:
        return None
    rows = Terminal(nodes[0], free_index, clamped_index, n)
    cols = Terminal(nodes[1], free_index, clamped_index, n)
    if not (rows.all_free or rows.all_clamped) or not (cols.all_free or cols.all_clamped):
        return None
    v_r, v_c = law.voltages
    pset = law.params
    row_terms = separate(law.currents[0], v_r, v_c, pset)
    col_terms = separate(law.currents[1], v_c, v_r, pset)
    if row_terms is None or col_terms is None:
        return None
    terms = [DenseTerm("rows", t.param, Univariate(t.drive, v_c), Univariate(t.gain, v_r)) for t in row_terms]
    terms += [DenseTerm("cols", t.param, Univariate(t.drive, v_r), Univariate(t.gain, v_c)) for t in col_terms]
    energy_terms = []
    if law.energy is not None:
        e_terms = separate(law.energy, v_r, v_c, pset)
        if e_terms is None:
            return None
        energy_terms = [DenseTerm("rows", t.param, Univariate(t.drive, v_c), Univariate(t.gain, v_r)) for t in e_terms]
    return DenseGroup(name, law, rows, cols, params, keys, terms, energy_terms, dtype)
