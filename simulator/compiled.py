"""Compile a circuit into batched numpy kernels generated from its element laws.

State ``x`` has shape ``(batch, n)`` (free node voltages, V) and clamped
inputs ``u`` shape ``(batch, n_in)`` or ``(n_in,)``.  Kernels:

* ``f(x)``: currents into the free nodes (A), ``C ẋ = f``;
* ``jvp(x, v) = J v`` and ``vjp(x, w) = Jᵀ w`` with ``J = ∂f/∂x`` (S);
* ``param_vjp(x, w) = Σ_batch wᵀ ∂f/∂θ``: one array per parameter, shaped
  like it (summed over the batch);
* ``cost`` and ``cost_grad`` of the outputs; dense ``jacobian`` for small
  circuits.

Elements are compiled in groups (see :mod:`simulator.kernels`): scalar
elements of one law are merged into one group; one-terminal laws (leaks,
biases) become elementwise *node groups*; a :class:`~circuits.circuit.Dense`
block whose law separates (see :mod:`simulator.separable`) becomes a *dense
group* evaluated with matrix products; everything else is an *edge group*
(gather terminal voltages, evaluate the lambdified law, scatter currents),
including dense blocks that do not separate.  Nothing here is written per
element type.

Caching: :meth:`CompiledSystem.bind` fixes the inputs and precomputes every
term that depends only on them (e.g. ``W ρ(u)``).  A bound system is valid
until the parameters change; bind again after an update.
"""

from __future__ import annotations

import numpy as np

from circuits import Circuit
from circuits.errors import did_you_mean

from .costs import Cost, get_cost
from .kernels import EdgeGroup, Eval, Functions, Group, dense_group, node_group

__all__ = ["Bound", "CompiledSystem", "Linearization", "compile_circuit"]


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
        self.functions = system.functions
        self.parts = [g.bind(u, system.functions) for g in system.groups]
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
        ctx = Eval(self.functions, x2, self.u)
        for p in self.parts:
            p.add_currents(ctx, out)
        return out.reshape(x.shape) if x.ndim == 1 else out

    def context(self, x: np.ndarray) -> Eval:
        """An evaluation point at state ``x`` (memoises terminal reads and functions)."""
        return Eval(self.functions, np.atleast_2d(self._check(x)), self.u)

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
        ctx = self.context(x)
        return sum(p.energy(ctx) for p in self.parts)

    def energy_param_grad(self, x) -> dict[str, np.ndarray]:
        """``Σ_batch ∂E/∂θ`` per parameter at state ``x``."""
        self.system.require_energy()
        ctx = self.context(x)
        out = {}
        for g, p in zip(self.system.groups, self.parts):
            out.update(g.split(p.energy_param_grad(ctx)))
        return out


class Linearization:
    """``J`` at one state, matrix-free: ``jvp``, ``vjp``, ``param_vjp``, ``antisym``."""

    def __init__(self, bound: Bound, x: np.ndarray, squeeze: bool = False):
        self.bound = bound
        self._version = bound._version
        self.x = x
        self.n = bound.n
        self.dtype = bound.dtype
        self.squeeze = squeeze
        ctx = Eval(bound.functions, x, bound.u)
        self.parts = [p.linearize(ctx) for p in bound.parts]
        self.groups = bound.system.groups

    def _vec(self, v):
        if self._version != self.bound.system.version:
            raise RuntimeError("the parameters changed since this linearization was made; linearize again")
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
        for g, p in zip(self.groups, self.parts):
            if not g.reciprocal:
                p.antisym_into(v2, out)
        return self._ret(out, v)

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
        self.functions = Functions()
        self.groups = _build_groups(circuit, layout, self.functions, self.dtype)
        self.functions.finalize()
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
        return (
            f"<CompiledSystem {self.circuit.name!r}: n={self.n}, inputs={self.n_inputs}, "
            f"groups={len(self.groups)}, {self.dtype}>"
        )


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


def _build_groups(circuit: Circuit, layout, functions: Functions, dtype) -> list[Group]:
    groups: list[Group] = []
    merged: dict[tuple, dict] = {}
    for name, et, opts, nodes, params, form in circuit.element_groups():
        law = et.law(**opts)
        if form == "scalar":
            # Scalar elements of one law are compiled together as an edge list.
            entry = merged.setdefault(
                (et, tuple(sorted(opts.items()))),
                {
                    "law": law,
                    "names": [],
                    "nodes": [[] for _ in nodes],
                    "params": {p: [] for p in params},
                    "keys": {},
                },
            )
            i = len(entry["names"])
            entry["names"].append(name)
            for t, lst in enumerate(nodes):
                entry["nodes"][t] += lst
            for p, v in params.items():
                entry["params"][p].append(v)
            entry["keys"].update({f"{name}.{p}": (p, i, ()) for p in params})
            continue
        keys = {f"{name}.{p}": (p, None, np.shape(v)) for p, v in params.items()}
        if form == "dense":
            group = dense_group(name, law, nodes, params, keys, layout, functions, dtype)
            if group is not None:
                groups.append(group)
                continue
            # Not separable: broadcast over every (row, col) pair as an edge list.
            r, c = np.indices((len(nodes[0]), len(nodes[1]))).reshape(2, -1)
            nodes = [list(np.asarray(nodes[0])[r]), list(np.asarray(nodes[1])[c])]
        groups.append(
            _edge_or_node(
                name,
                law,
                [name],
                nodes,
                {p: np.reshape(v, -1) for p, v in params.items()},
                keys,
                layout,
                functions,
                dtype,
            )
        )
    for entry in merged.values():
        arrays = {p: np.asarray(v, dtype=float) for p, v in entry["params"].items()}
        names = entry["names"]
        name = names[0] if len(names) == 1 else f"{entry['law'].element_type.kind}[{len(names)}]"
        groups.append(
            _edge_or_node(name, entry["law"], names, entry["nodes"], arrays, entry["keys"], layout, functions, dtype)
        )
    return groups


def _edge_or_node(name, law, names, nodes, arrays, keys, layout, functions, dtype) -> Group:
    group = node_group(name, law, names, nodes, arrays, keys, layout, functions, dtype)
    if group is None:
        group = EdgeGroup(name, law, names, nodes, arrays, keys, layout, dtype)
    return group
