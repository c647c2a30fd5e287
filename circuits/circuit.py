"""Circuits: nodes, clamped inputs, outputs and elements, validated together.

A :class:`Circuit` is built from items:

* free nodes: :class:`~circuits.library.FreeNode` or a :class:`Layer` of them;
* clamped nodes (ideal voltage sources to ground): :class:`Input` or
  :class:`InputLayer`;
* elements: any :class:`~circuits.element.Element`, or arrays of one element
  type, :class:`Dense` (every row node with every column node) and
  :class:`Sparse` (an edge list);
* :class:`Output` designations, with optional targets (V).

Array node names are ``layer[i]``.  Validation happens at construction and
raises :class:`~circuits.errors.CircuitError` naming the element and node;
a circuit whose equations are singular raises a
:class:`~circuits.errors.CircuitWarning` (it is still a valid description:
an ideal floating node is something a user may want to look at).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import NamedTuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, maximum_bipartite_matching

from .element import ELEMENT_TYPES, Element, Law, Parameter, check_name
from .errors import CircuitError, CircuitWarning, did_you_mean
from .library import FreeNode

__all__ = ["Circuit", "Dense", "ElementGroup", "Input", "InputLayer", "Layer", "Output", "Sparse"]

_VALUE = Parameter("value", "V", "clamped voltage")
_TARGET = Parameter("target", "V", "target voltage")


class Input:
    """A clamped node: an ideal voltage source of ``value`` (V) to ground."""

    kind = "input"

    def __init__(self, name: str, value: float = 0.0):
        check_name(name, "input")
        self.name = name
        self.value = float(_VALUE.check(value, f"input {name!r}"))

    def __eq__(self, other):
        return type(other) is Input and (self.name, self.value) == (other.name, other.value)

    __hash__ = None

    def __repr__(self):
        return f"<input {self.name} value={self.value!r}>"


class Output:
    """Designates a free node (or every node of a :class:`Layer`) as an output.

    Parameters
    ----------
    node
        Name of a free node or of a layer.
    target
        Target voltage (V); a scalar for a node, shape ``(size,)`` for a layer.
        ``None`` (default) leaves the target to be given with the data.
    """

    kind = "output"

    def __init__(self, node: str, target=None):
        check_name(node, "output")
        self.node = node
        self.name = node
        self.target = None if target is None else _TARGET.check(target, f"output {node!r}")

    def __eq__(self, other):
        return (
            type(other) is Output
            and self.node == other.node
            and (self.target is None) == (other.target is None)
            and (self.target is None or np.array_equal(self.target, other.target))
        )

    __hash__ = None

    def __repr__(self):
        return f"<output {self.node} target={self.target!r}>"


class Layer:
    """``size`` free nodes named ``name[0] … name[size-1]``.

    Parameters
    ----------
    name, size
        Layer name and number of nodes.
    C : float or array (size,)
        Capacitance to ground (F), > 0.
    g : float or array (size,)
        Leak conductance to ground (S), ≥ 0.
    """

    def __init__(self, name: str, size: int, C=1.0, g=1.0):
        check_name(name, "layer")
        self.name, self.size = name, _check_size(size, f"layer {name!r}")
        self.nodes = [f"{name}[{i}]" for i in range(self.size)]
        self.leak = Sparse(name, FreeNode, [self.nodes], C=C, g=g)

    def __eq__(self, other):
        return type(other) is Layer and self.leak == other.leak

    __hash__ = None


class InputLayer:
    """``size`` clamped nodes named ``name[i]``, at ``value`` (V, scalar or (size,))."""

    def __init__(self, name: str, size: int, value=0.0):
        check_name(name, "input layer")
        self.name, self.size = name, _check_size(size, f"input layer {name!r}")
        self.nodes = [f"{name}[{i}]" for i in range(self.size)]
        value = _VALUE.check(value, f"input layer {name!r}")
        if value.ndim != 0 and value.shape != (self.size,):
            raise CircuitError(
                f"input layer {name!r}: value has shape {value.shape}, expected ({self.size},) or a scalar"
            )
        self.value = np.broadcast_to(value, (self.size,)).astype(float).copy()

    def __eq__(self, other):
        return type(other) is InputLayer and self.nodes == other.nodes and np.array_equal(self.value, other.value)

    __hash__ = None


def _check_size(size, where: str) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise CircuitError(f"{where}: size must be a positive integer, got {size!r}")
    return int(size)


def _element_type(kind) -> type[Element]:
    if isinstance(kind, type) and issubclass(kind, Element):
        return kind
    if kind in ELEMENT_TYPES:
        return ELEMENT_TYPES[kind]
    raise CircuitError(
        f"unknown element kind {kind!r}{did_you_mean(str(kind), ELEMENT_TYPES)}; "
        f"valid: {', '.join(sorted(ELEMENT_TYPES))}"
    )


def _node_list(nodes, where: str) -> tuple[list[str], str | None]:
    if isinstance(nodes, (Layer, InputLayer)):
        return list(nodes.nodes), nodes.name
    if isinstance(nodes, str) or not isinstance(nodes, Iterable):
        raise CircuitError(f"{where}: expected a layer or a list of node names, got {nodes!r}")
    nodes = list(nodes)
    for n in nodes:
        check_name(n, where)
    if not nodes:
        raise CircuitError(f"{where}: empty node list")
    return nodes, None


class ElementArray:
    """Common part of :class:`Dense` and :class:`Sparse`: many elements of one type."""

    element_type: type[Element]
    name: str
    params: dict[str, np.ndarray]
    opts: dict[str, str]

    @property
    def law(self) -> Law:
        return self.element_type.law(**self.opts)

    def __eq__(self, other):
        return (
            type(self) is type(other)
            and self.name == other.name
            and self.element_type is other.element_type
            and self.terminal_nodes == other.terminal_nodes
            and self.opts == other.opts
            and all(np.array_equal(self.params[k], other.params[k]) for k in self.params)
        )

    __hash__ = None


class Dense(ElementArray):
    """One element of a two-terminal type between every ``rows`` node and every ``cols`` node.

    Element ``(i, j)`` connects ``rows[i]`` to the type's first terminal and
    ``cols[j]`` to its second; its parameters are ``params[name][i, j]``.  For
    a :class:`~circuits.library.VCCS` block ``rows`` are the driven (post) nodes
    and ``cols`` the controlling (pre) nodes, so ``i_rows = W ρ(v_cols)``.

    Parameters
    ----------
    name
        Name of the block; its parameters are ``name.w`` etc.
    element_type
        An element class or its kind (e.g. ``"vccs"``).
    rows, cols
        Layers or lists of node names.
    **values
        Parameters (scalars broadcast, or arrays of shape ``(len(rows), len(cols))``)
        and options.
    """

    def __init__(self, name: str, element_type, rows, cols, **values):
        check_name(name, "dense block")
        self.element_type = _element_type(element_type)
        where = f"dense {self.element_type.kind} block {name!r}"
        if len(self.element_type.terminals) != 2:
            raise CircuitError(
                f"{where}: a dense block needs a two-terminal element type; "
                f"{self.element_type.kind} has {len(self.element_type.terminals)}"
            )
        self.name = name
        self.rows, self.rows_layer = _node_list(rows, f"{where}, rows")
        self.cols, self.cols_layer = _node_list(cols, f"{where}, cols")
        shape = (len(self.rows), len(self.cols))
        self.params, self.opts = self.element_type.check_values(values, where, shape)

    @property
    def terminal_nodes(self) -> tuple[list[str], list[str]]:
        return self.rows, self.cols

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)


class Sparse(ElementArray):
    """``m`` elements of one type given as an edge list.

    Parameters
    ----------
    name
        Name of the array; its parameters are ``name.w`` etc.
    element_type
        An element class or its kind.
    nodes
        One sequence of ``m`` node names per terminal of the type (or a layer):
        element ``e`` connects ``nodes[0][e], nodes[1][e], …``.
    **values
        Parameters (scalars broadcast, or arrays of shape ``(m,)``) and options.
    """

    def __init__(self, name: str, element_type, nodes: Sequence, **values):
        check_name(name, "sparse array")
        self.element_type = _element_type(element_type)
        where = f"sparse {self.element_type.kind} array {name!r}"
        k = len(self.element_type.terminals)
        if isinstance(nodes, (Layer, InputLayer, str)) or len(nodes) != k:
            raise CircuitError(
                f"{where}: give {k} node list(s), one per terminal ({', '.join(self.element_type.terminals)})"
            )
        lists = [_node_list(n, f"{where}, terminal {t}")[0] for n, t in zip(nodes, self.element_type.terminals)]
        m = len(lists[0])
        if any(len(lst) != m for lst in lists):
            raise CircuitError(f"{where}: node lists have different lengths {[len(x) for x in lists]}")
        self.name = name
        self.nodes = lists
        self.params, self.opts = self.element_type.check_values(values, where, (m,))

    @property
    def terminal_nodes(self) -> tuple[list[str], ...]:
        return tuple(self.nodes)

    @property
    def size(self) -> int:
        return len(self.nodes[0])


class ElementGroup(NamedTuple):
    """One element or array of elements, as the simulator sees it.

    ``form`` is ``"scalar"`` (one element: node lists of length 1, float
    parameters), ``"sparse"`` (one node list per terminal) or ``"dense"``
    (node lists rows, cols; parameters of shape (rows, cols)).
    """

    name: str
    element_type: type[Element]
    options: dict
    nodes: tuple
    params: dict
    form: str

    @property
    def law(self) -> Law:
        return self.element_type.law(**self.options)


class Circuit:
    """A validated circuit.

    Parameters
    ----------
    items
        Free nodes, layers, inputs, input layers, elements, dense and sparse
        arrays, and outputs, in any order.  Node order in the state vector is
        the order in which free nodes and layers appear.
    name
        A label used in printouts.

    Raises
    ------
    CircuitError
        Unknown or duplicate names, a node both clamped and free, an element
        on an unknown node, outputs on clamped nodes, an empty circuit.

    Warns
    -----
    CircuitWarning
        When the equations are singular: free nodes that no element ties to
        ground, or structurally rank-deficient Jacobian.
    """

    def __init__(self, items: Iterable = (), name: str = "circuit"):
        self.name = name
        self.items = list(items)
        self._validate()

    # -- structure -----------------------------------------------------------
    def _validate(self) -> None:
        self.free_nodes: list[str] = []
        self.clamped_nodes: list[str] = []
        self.layers: dict[str, Layer | InputLayer] = {}
        self.elements: list[Element] = []
        self.arrays: list[ElementArray] = []
        self.output_items: list[Output] = []
        capacitance, values = [], []
        declared: dict[str, str] = {}  # node -> how declared
        names: dict[str, str] = {}

        def declare_name(name: str, what: str):
            if name in names:
                raise CircuitError(f"duplicate name {name!r}: used by {names[name]} and by {what}")
            names[name] = what

        def declare_node(node: str, how: str):
            if node in declared:
                if {declared[node], how} == {"input", "free node"}:
                    raise CircuitError(f"node {node!r} is declared both as input and as free node")
                raise CircuitError(f"node {node!r} is declared twice ({declared[node]} and {how})")
            declared[node] = how

        for item in self.items:
            if isinstance(item, FreeNode):
                declare_name(item.name, "free node")
                declare_node(item.name, "free node")
                self.free_nodes.append(item.name)
                capacitance.append(item.params["C"])
                self.elements.append(item)
            elif isinstance(item, Layer):
                declare_name(item.name, "layer")
                for n in item.nodes:
                    declare_node(n, "free node")
                self.layers[item.name] = item
                self.free_nodes += item.nodes
                capacitance += list(item.leak.params["C"])
                self.arrays.append(item.leak)
            elif isinstance(item, Input):
                declare_name(item.name, "input")
                declare_node(item.name, "input")
                self.clamped_nodes.append(item.name)
                values.append(item.value)
            elif isinstance(item, InputLayer):
                declare_name(item.name, "input layer")
                for n in item.nodes:
                    declare_node(n, "input")
                self.layers[item.name] = item
                self.clamped_nodes += item.nodes
                values += list(item.value)
            elif isinstance(item, Element):
                declare_name(item.name, f"{item.kind} element")
                self.elements.append(item)
            elif isinstance(item, ElementArray):
                declare_name(item.name, f"{item.element_type.kind} array")
                self.arrays.append(item)
            elif isinstance(item, Output):
                self.output_items.append(item)
            else:
                raise CircuitError(f"cannot put {item!r} in a circuit (type {type(item).__name__})")

        if not self.free_nodes:
            raise CircuitError(
                f"circuit {self.name!r} has no free nodes; declare at least one with `node NAME` (or a Layer)"
            )
        self.capacitance = np.asarray(capacitance, dtype=float)
        self.input_values = np.asarray(values, dtype=float)
        self.node_index = {n: i for i, n in enumerate(self.free_nodes)}
        self.clamped_index = {n: i for i, n in enumerate(self.clamped_nodes)}

        for e in self.elements:
            if not isinstance(e, FreeNode):
                self._check_nodes(f"{e.kind} {e.name!r}", e.nodes, declared)
            self._check_nodes(f"{e.kind} {e.name!r} (read by its law)", e.law(**e.opts).implicit_nodes, declared)
        for a in self.arrays:
            where = f"{a.element_type.kind} array {a.name!r}"
            for nodes in a.terminal_nodes:
                self._check_nodes(where, nodes, declared)
            self._check_nodes(f"{where} (read by its law)", a.law.implicit_nodes, declared)

        self.outputs: list[str] = []
        targets: list[float] = []
        for out in self.output_items:
            if out.node in self.layers:
                layer = self.layers[out.node]
                if isinstance(layer, InputLayer):
                    raise CircuitError(f"output {out.node!r}: {out.node} is an input layer; outputs must be free nodes")
                nodes = layer.nodes
                t = np.full(len(nodes), np.nan) if out.target is None else out.target
                if np.shape(t) != (len(nodes),):
                    if np.ndim(t) != 0:
                        raise CircuitError(
                            f"output {out.node!r}: target has shape {np.shape(t)}, expected ({len(nodes)},)"
                        )
                    t = np.full(len(nodes), float(t))
            else:
                if out.node not in declared:
                    raise CircuitError(f"output {out.node!r}: unknown node{did_you_mean(out.node, declared)}")
                if declared[out.node] != "free node":
                    raise CircuitError(f"output {out.node!r}: {out.node} is an input; outputs must be free nodes")
                nodes = [out.node]
                if out.target is not None and np.ndim(out.target) != 0:
                    raise CircuitError(f"output {out.node!r}: target must be a scalar")
                t = [np.nan if out.target is None else float(out.target)]
            for n in nodes:
                if n in self.outputs:
                    raise CircuitError(f"output {n!r} is designated twice")
            self.outputs += nodes
            targets += list(t)
        self.targets = np.asarray(targets, dtype=float)
        self._warn_if_singular()

    @staticmethod
    def _check_nodes(where: str, nodes, declared) -> None:
        for n in nodes:
            if n not in declared:
                raise CircuitError(
                    f"{where}: unknown node {n!r}{did_you_mean(n, declared)}; declare it with `node {n}` or `input {n}`"
                )

    # -- views ---------------------------------------------------------------
    def element_groups(self) -> list[ElementGroup]:
        """Every element (or array of elements) as an :class:`ElementGroup`."""
        groups = []
        for e in self.elements:
            groups.append(ElementGroup(e.name, type(e), e.opts, tuple([n] for n in e.nodes), e.params, "scalar"))
        for a in self.arrays:
            form = "dense" if isinstance(a, Dense) else "sparse"
            groups.append(ElementGroup(a.name, a.element_type, a.opts, a.terminal_nodes, a.params, form))
        return groups

    def get(self, name: str):
        """The item (element, array, layer, input or node) called ``name``."""
        for item in self.items:
            if getattr(item, "name", None) == name:
                return item
        known = [getattr(i, "name", "") for i in self.items]
        raise KeyError(f"no item {name!r} in circuit {self.name!r}{did_you_mean(name, known)}")

    @cached_property
    def reciprocal(self) -> dict[str, bool]:
        """Element (or array) name → whether its law is reciprocal (symbolic)."""
        return {g.name: g.law.reciprocal for g in self.element_groups()}

    @property
    def nonreciprocal_elements(self) -> list[str]:
        """Names of the elements whose Jacobian block is not symmetric."""
        return [n for n, r in self.reciprocal.items() if not r]

    @property
    def is_conservative(self) -> bool:
        """True when every element is reciprocal (then ``f = −∇E``)."""
        return not self.nonreciprocal_elements

    def __eq__(self, other) -> bool:
        return type(other) is Circuit and self.items == other.items

    __hash__ = None

    def __repr__(self) -> str:
        return (
            f"<Circuit {self.name!r}: {len(self.free_nodes)} free nodes, {len(self.clamped_nodes)} "
            f"inputs, {len(self.elements) + len(self.arrays)} elements/arrays>"
        )

    # -- singularity ---------------------------------------------------------
    def _warn_if_singular(self) -> None:
        n = len(self.free_nodes)
        idx = self.node_index
        rows, cols = [], []
        grounded = np.zeros(n, dtype=bool)
        edges_r, edges_c = [], []
        for group in self.element_groups():
            et, nodes, params, form, law = group.element_type, group.nodes, group.params, group.form, group.law
            k = len(et.terminals)
            if form == "dense":
                r, c = np.indices((len(nodes[0]), len(nodes[1]))).reshape(2, -1)
                per_elem = [np.asarray(nodes[0])[r], np.asarray(nodes[1])[c]]
            else:
                per_elem = [np.asarray(lst) for lst in nodes]
            per_elem += [np.full(len(per_elem[0]), nm) for nm in law.implicit_nodes]
            free = [np.array([idx.get(x, -1) for x in col]) for col in per_elem]
            if et is FreeNode:
                # A leak ties its node to ground only where g > 0.
                g = np.atleast_1d(params["g"])
                grounded[free[0][g > 0]] = True
                rows.append(free[0][g > 0])
                cols.append(free[0][g > 0])
                continue
            for t in range(law.n_terminals):
                ft = free[t]
                if t < k and not law.shift_invariant[t]:
                    grounded[ft[ft >= 0]] = True
                for s in range(law.n_terminals):
                    if law.jacobian[t, s] == 0:
                        continue
                    fs = free[s]
                    ok = (ft >= 0) & (fs >= 0)
                    rows.append(ft[ok])
                    cols.append(fs[ok])
                    if s != t:
                        edges_r.append(ft[ok])
                        edges_c.append(fs[ok])
                    clamped = (ft >= 0) & (fs < 0)
                    grounded[ft[clamped]] = True
        r = np.concatenate(rows) if rows else np.zeros(0, int)
        c = np.concatenate(cols) if cols else np.zeros(0, int)
        pattern = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
        match = maximum_bipartite_matching(pattern, perm_type="column")
        unmatched = [self.free_nodes[i] for i in np.flatnonzero(match < 0)]
        if unmatched:
            warnings.warn(
                f"circuit {self.name!r}: the equations are singular: no element makes the current into "
                f"{_few(unmatched)} depend on the node voltages independently (structurally "
                "rank-deficient Jacobian); add a leak (g > 0) or a conductance",
                CircuitWarning,
                stacklevel=3,
            )
            return
        er = np.concatenate(edges_r) if edges_r else np.zeros(0, int)
        ec = np.concatenate(edges_c) if edges_c else np.zeros(0, int)
        graph = coo_matrix((np.ones(len(er)), (er, ec)), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        floating = [
            self.free_nodes[i]
            for lab in np.unique(labels)
            if not grounded[labels == lab].any()
            for i in np.flatnonzero(labels == lab)
        ]
        if floating:
            warnings.warn(
                f"circuit {self.name!r}: free node(s) {_few(floating)} have no path to any conductance "
                "to ground (no leak g > 0, no input, only voltage-difference elements): the equations "
                "are singular",
                CircuitWarning,
                stacklevel=3,
            )


def _few(names: list[str], k: int = 5) -> str:
    shown = ", ".join(repr(x) for x in names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")
