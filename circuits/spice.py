"""Export a circuit to an ngspice deck: the same physics, checked by a real circuit simulator.

The deck is plain text generated from the element laws, nothing hand-written
per element type:

=================  ===========================================================
aeplab             ngspice
=================  ===========================================================
free node          capacitor ``C`` to ground, leak ``g`` as ``R = 1/g`` to
                   ground (omitted when ``g = 0``)
resistor           ``R = 1/G`` between its nodes (omitted when ``G = 0``)
clamped input      independent voltage source to ground (``V … DC value``)
any other element  one behavioural current source (``B``) per free node it
                   drives, ``I = <its law>`` with every parameter substituted:
                   ``vccs``, ``coupling``, ``halfcoupling``, ``bias`` and every
                   user-defined element type alike
extra sources      behavioural currents given by the caller (learning phases:
                   nudging, AEP corrections; see :mod:`learning.spice_phases`)
=================  ===========================================================

Sign convention.  aeplab counts currents positive *into* a node.  A SPICE
current source ``B n+ n- I=expr`` pushes ``expr`` out of ``n+``, through
itself, into ``n-``; every behavioural source here is therefore written
``B… 0 node I=<current into node>``.  Currents that an element pushes into a
clamped node are absorbed by its voltage source and, as in aeplab's equations,
not written.

Units: V, A, S, F, s (``R = 1/G`` in Ω).

Node names.  ngspice is case-insensitive and its expression parser gives
meaning to brackets, commas, operators and the names ``0`` and ``gnd``
(ground).  :func:`spice_node_names` maps aeplab names deterministically, in
circuit order (free nodes, then clamped nodes):

1. a name whose lower-case form uses only ``[a-z0-9_]``, is not ``0`` or
   ``gnd`` and is not taken yet keeps that lower-case form (``h1`` → ``h1``,
   ``H1`` → ``h1``);
2. every other name is lower-cased, each character outside ``[a-z0-9_]``
   becomes ``_`` (``h[3]`` → ``h_3_``, ``out.0`` → ``out_0``), ``n`` is
   prefixed to ``0`` and ``gnd``, and if the result is taken ``_2``, ``_3``, …
   is appended (``h[3]`` next to a node ``h_3_`` → ``h_3__2``).

Ground is SPICE node ``0``.  The mapping is exposed as :class:`NodeMap` (both
directions) on every :class:`Deck` and written into the deck as comments.

Expressions.  :class:`SpicePrinter` prints sympy laws as ngspice B-source
expressions: ``V(node)``, numbers as Python's round-trip ``repr``, ``+ - * /``,
integer powers expanded into products (ngspice's ``**`` and ``pow`` use
``|x|``), ``sqrt``, other real powers as ``pow(x, y)`` (= ``|x|^y``), ``exp``,
``ln``, ``tanh`` and the other (hyperbolic) trigonometric functions, ``abs``,
``sgn``, ``min``/``max``, ``u`` (Heaviside, ``u(0) = 0``), ``floor``/``ceil``,
and ``Piecewise`` as nested ternaries ``(c ? a : b)`` with ``< <= > >= == !=
&& || !``.  Anything else raises :class:`SpiceExportError` naming it.

Analyses.  ``.op`` (the stationary state) and ``.tran step stop 0 step uic``
from an initial state given by ``.ic``, with a ``.print tran`` of the free
nodes so that ``ngspice -b deck.cir`` prints tables (interactively:
``ngspice deck.cir``, then ``run`` and ``plot v(h1)``).  Tolerances go in
``.options`` (defaults :data:`DEFAULT_OPTIONS`, tight enough to compare
stationary states to 1e-6).  A circuit with several stationary states may
settle to a different one in ngspice than in aeplab: ``nodeset=`` gives
ngspice's Newton iteration a starting guess.  :mod:`simulator.ngspice` runs
a deck and reads the results back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .atomic import atomic_write
from .circuit import Circuit
from .element import NodeVoltage
from .errors import CircuitError
from .library import FreeNode, Resistor

__all__ = [
    "DEFAULT_OPTIONS",
    "Deck",
    "ExtraSource",
    "NodeMap",
    "SpiceExportError",
    "SpicePrinter",
    "Transient",
    "export_spice",
    "spice_expression",
    "spice_node_names",
    "element_currents",
    "input_values",
    "iter_elements",
    "to_spice",
    "write_spice",
]

#: ngspice ``.options`` written by default: relative tolerance, voltage (V)
#: and current (A) absolute tolerances, DC iteration limit.
DEFAULT_OPTIONS: dict[str, float] = {"reltol": 1e-9, "vntol": 1e-12, "abstol": 1e-15, "itl1": 500}

_VALID = re.compile(r"^[a-z0-9_]+$")
_RESERVED = {"0", "gnd"}


class SpiceExportError(CircuitError):
    """A circuit (or an expression in it) cannot be written as an ngspice deck."""


# -- node names ----------------------------------------------------------------


@dataclass(frozen=True)
class NodeMap:
    """The one-to-one mapping between aeplab node names and SPICE node names.

    Attributes
    ----------
    to_spice : dict
        aeplab name → SPICE name.
    to_aeplab : dict
        SPICE name (lower case) → aeplab name.
    """

    to_spice: dict[str, str]
    to_aeplab: dict[str, str]

    def spice(self, node: str) -> str:
        """The SPICE name of aeplab node ``node``."""
        try:
            return self.to_spice[node]
        except KeyError:
            raise SpiceExportError(f"node {node!r} is not in this circuit") from None

    def aeplab(self, name: str) -> str:
        """The aeplab name of SPICE node ``name`` (case-insensitive)."""
        try:
            return self.to_aeplab[name.lower()]
        except KeyError:
            raise KeyError(f"SPICE node {name!r} is not in this deck") from None

    def __len__(self) -> int:
        return len(self.to_spice)


def _sanitize(name: str) -> str:
    out = re.sub(r"[^a-z0-9_]", "_", name.lower())
    return "n" + out if out in _RESERVED else out


def spice_node_names(nodes: Iterable[str]) -> NodeMap:
    """Map aeplab node names to distinct, valid SPICE node names (see the module doc).

    Parameters
    ----------
    nodes
        Node names in a fixed order (the circuit's free nodes, then its
        clamped nodes); the mapping depends only on this sequence.

    Returns
    -------
    NodeMap

    Raises
    ------
    SpiceExportError
        If a name repeats.
    """
    nodes = list(nodes)
    if len(set(nodes)) != len(nodes):
        dup = sorted({n for n in nodes if nodes.count(n) > 1})
        raise SpiceExportError(f"duplicate node names {dup}")
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for n in nodes:  # names SPICE accepts as they are keep them
        low = n.lower()
        if _VALID.match(low) and low not in _RESERVED and low not in taken:
            mapping[n] = low
            taken.add(low)
    for n in nodes:
        if n in mapping:
            continue
        base = _sanitize(n) or "n"
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        mapping[n] = name
        taken.add(name)
    ordered = {n: mapping[n] for n in nodes}
    return NodeMap(ordered, {v: k for k, v in ordered.items()})


class _Names:
    """Unique SPICE element names: a type letter, then a sanitised label."""

    def __init__(self):
        self.taken: set[str] = set()

    def __call__(self, letter: str, label: str) -> str:
        base = letter + (_sanitize(label).strip("_") or "x")
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


# -- expressions -----------------------------------------------------------------


def _number(x: float) -> str:
    x = float(x)
    if not np.isfinite(x):
        raise SpiceExportError(f"cannot write the non-finite number {x!r} into a SPICE deck")
    return repr(x)


class SpicePrinter(StrPrinter):
    """Print a sympy expression as an ngspice B-source expression.

    Parameters
    ----------
    nodes
        Maps the node of every :class:`~circuits.element.NodeVoltage` in the
        expression to its SPICE name.
    max_power
        Integer powers up to this are expanded into products.
    """

    printmethod = "_spice"
    _functions = {
        "exp": "exp",
        "log": "ln",
        "sqrt": "sqrt",
        "Abs": "abs",
        "sign": "sgn",
        "sin": "sin",
        "cos": "cos",
        "tan": "tan",
        "asin": "asin",
        "acos": "acos",
        "atan": "atan",
        "sinh": "sinh",
        "cosh": "cosh",
        "tanh": "tanh",
        "asinh": "asinh",
        "acosh": "acosh",
        "atanh": "atanh",
        "floor": "floor",
        "ceiling": "ceil",
    }

    def __init__(self, nodes: NodeMap, max_power: int = 16):
        super().__init__({"full_prec": True})
        self.nodes = nodes
        self.max_power = max_power

    def _print_NodeVoltage(self, expr: NodeVoltage) -> str:
        return f"V({self.nodes.spice(expr.node)})"

    def _print_Symbol(self, expr) -> str:
        raise SpiceExportError(
            f"symbol {expr.name!r} has no value: substitute every parameter before printing for SPICE"
        )

    def _print_Integer(self, expr) -> str:
        return str(int(expr))

    def _print_Rational(self, expr) -> str:
        return _number(float(expr))

    def _print_Float(self, expr) -> str:
        return _number(float(expr))

    def _print_NumberSymbol(self, expr) -> str:
        return _number(float(expr))

    _print_Exp1 = _print_Pi = _print_NumberSymbol

    def _print_Zero(self, expr) -> str:
        return "0"

    def _print_BooleanTrue(self, expr) -> str:
        return "1"

    def _print_BooleanFalse(self, expr) -> str:
        return "0"

    def _print_ImaginaryUnit(self, expr) -> str:
        raise SpiceExportError("complex numbers cannot be written into a SPICE deck")

    def _print_Infinity(self, expr) -> str:
        raise SpiceExportError("an infinite value cannot be written into a SPICE deck")

    _print_NegativeInfinity = _print_ComplexInfinity = _print_NaN = _print_Infinity

    def _print_Pow(self, expr, rational=False) -> str:
        base, e = expr.as_base_exp()
        if base is sp.E:
            return f"exp({self._print(e)})"
        b = self.parenthesize(base, PRECEDENCE["Mul"], strict=True)
        if e.is_Integer and 0 < abs(int(e)) <= self.max_power:
            prod = "*".join([b] * abs(int(e)))
            return f"({prod})" if e > 0 else f"(1/({prod}))"
        if e == sp.S.Half:
            return f"sqrt({self._print(base)})"
        if e == -sp.S.Half:
            return f"(1/sqrt({self._print(base)}))"
        # ngspice's pow(x, y) is |x|^y: exact for x ≥ 0, the only real case.
        return f"pow({self._print(base)}, {self._print(e)})"

    def _print_Function(self, expr) -> str:
        name = type(expr).__name__
        if name in self._functions:
            if len(expr.args) != 1:
                raise SpiceExportError(f"{name} with {len(expr.args)} arguments has no ngspice equivalent")
            return f"{self._functions[name]}({self._print(expr.args[0])})"
        raise SpiceExportError(
            f"function {name!r} has no ngspice B-source equivalent (supported: "
            f"{', '.join(sorted(self._functions))}, Heaviside, Min, Max, Piecewise, powers)"
        )

    def _print_Heaviside(self, expr) -> str:
        return f"u({self._print(expr.args[0])})"  # ngspice: u(0) = 0

    def _minmax(self, expr, fn: str) -> str:
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"{fn}({out}, {a})"
        return out

    def _print_Min(self, expr) -> str:
        return self._minmax(expr, "min")

    def _print_Max(self, expr) -> str:
        return self._minmax(expr, "max")

    def _print_Piecewise(self, expr) -> str:
        pieces = list(expr.args)
        last_value, last_cond = pieces[-1]
        if last_cond == sp.true:
            out = f"({self._print(last_value)})"
            pieces = pieces[:-1]
        else:
            out = "0"  # sympy: undefined outside every condition; ngspice needs a value
        for value, cond in reversed(pieces):
            out = f"(({self._print(cond)}) ? ({self._print(value)}) : {out})"
        return out

    def _print_Relational(self, expr) -> str:
        ops = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!="}
        op = expr.rel_op
        if op not in ops:
            raise SpiceExportError(f"relation {op!r} has no ngspice equivalent")
        return f"({self._print(expr.lhs)} {ops[op]} {self._print(expr.rhs)})"

    def _print_And(self, expr) -> str:
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr) -> str:
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr) -> str:
        return f"(!{self._print(expr.args[0])})"

    def emptyPrinter(self, expr):  # noqa: N802 (sympy's name)
        raise SpiceExportError(f"cannot print {type(expr).__name__} {expr} for ngspice")


def spice_expression(expr, nodes: NodeMap) -> str:
    """``expr`` (sympy, node voltages and numbers only) as an ngspice B-source expression.

    Raises
    ------
    SpiceExportError
        For a symbol without a value or a function ngspice lacks.
    """
    return SpicePrinter(nodes).doprint(sp.sympify(expr))


# -- deck --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtraSource:
    """A behavioural current into one node, added to a deck (e.g. a learning-phase term).

    Attributes
    ----------
    label
        Name used for the SPICE element (``B<label>``) and in the comment.
    node
        aeplab name of the free node the current flows into.
    current
        The current into ``node`` (A): a sympy expression in node voltages
        (:class:`~circuits.element.NodeVoltage`) and numbers.
    comment
        One line describing the source, written above it.
    """

    label: str
    node: str
    current: sp.Expr
    comment: str = ""


@dataclass(frozen=True)
class Transient:
    """A ``.tran`` analysis from an initial state.

    Attributes
    ----------
    step
        Output step and largest internal step (s).
    stop
        Final time (s).
    x0
        Initial free-node voltages (V): shape ``(n,)`` in circuit order, or a
        mapping node → voltage (missing nodes start at 0 V).  ``None``: all 0 V.
    """

    step: float
    stop: float
    x0: np.ndarray | Mapping[str, float] | None = None


@dataclass
class Deck:
    """An ngspice deck and what is needed to read its results back.

    Attributes
    ----------
    text : str
        The deck.
    nodes : NodeMap
        aeplab ↔ SPICE node names.
    free_nodes, clamped_nodes : list of str
        aeplab names, in circuit order.
    analyses : tuple of str
        ``"op"`` and/or ``"tran"``.
    transient : Transient or None
    x0 : ndarray or None
        Initial free-node voltages (V) of the transient.
    circuit_name : str
    meta : dict
        Anything else the maker records (learning phases: ``phase``,
        ``beta``, ``cost``, ``x0``).
    """

    text: str
    nodes: NodeMap
    free_nodes: list[str]
    clamped_nodes: list[str]
    analyses: tuple[str, ...]
    transient: Transient | None = None
    x0: np.ndarray | None = None
    circuit_name: str = "circuit"
    meta: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text

    def write(self, path: str | os.PathLike) -> None:
        """Write the deck to ``path`` atomically."""
        atomic_write(path, self.text)


def _state_vector(x, circuit: Circuit, what: str) -> np.ndarray:
    n = len(circuit.free_nodes)
    if x is None:
        return np.zeros(n)
    if isinstance(x, Mapping):
        out = np.zeros(n)
        for node, v in x.items():
            if node not in circuit.node_index:
                raise SpiceExportError(f"{what}: {node!r} is not a free node of circuit {circuit.name!r}")
            out[circuit.node_index[node]] = float(v)
        return out
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (n,):
        raise SpiceExportError(f"{what}: expected shape ({n},) (one voltage per free node), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SpiceExportError(f"{what}: contains NaN or infinite values")
    return arr


def input_values(circuit: Circuit, inputs=None) -> np.ndarray:
    """The clamped voltages (V): the circuit's own, or ``inputs`` (``(n_in,)`` or a mapping)."""
    if inputs is None:
        return np.asarray(circuit.input_values, dtype=float)
    if isinstance(inputs, Mapping):
        u = np.asarray(circuit.input_values, dtype=float).copy()
        for node, v in inputs.items():
            if node not in circuit.clamped_index:
                raise SpiceExportError(f"inputs: {node!r} is not an input of circuit {circuit.name!r}")
            u[circuit.clamped_index[node]] = float(v)
        return u
    u = np.asarray(inputs, dtype=float).reshape(-1)
    if u.shape != (len(circuit.clamped_nodes),):
        raise SpiceExportError(f"inputs: expected {len(circuit.clamped_nodes)} values, got shape {np.shape(inputs)}")
    if not np.all(np.isfinite(u)):
        raise SpiceExportError("inputs contain NaN or infinite values")
    return u


def iter_elements(circuit: Circuit):
    """Every scalar element as ``(label, type, law, terminal nodes, {param: value})``.

    Arrays are expanded: dense element ``(i, j)`` of block ``W`` is ``W[i,j]``,
    sparse element ``e`` of array ``S`` is ``S[e]``, and the leaks of a layer
    are labelled by their node.  ``terminal nodes`` covers the type's
    terminals followed by the nodes its law reads (``law.implicit_nodes``).
    """
    for name, et, opts, nodes, params, form in circuit.element_groups():
        law = et.law(**opts)
        if form == "dense":
            rows, cols = nodes
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    vals = {p: float(params[p][i, j]) for p in params}
                    yield f"{name}[{i},{j}]", et, law, (r, c, *law.implicit_nodes), vals
        elif form == "sparse":
            for e in range(len(nodes[0])):
                ends = tuple(lst[e] for lst in nodes)
                label = ends[0] if et is FreeNode else f"{name}[{e}]"
                yield label, et, law, (*ends, *law.implicit_nodes), {p: float(params[p][e]) for p in params}
        else:
            ends = tuple(lst[0] for lst in nodes)
            yield name, et, law, (*ends, *law.implicit_nodes), {p: float(v) for p, v in params.items()}


def element_currents(law, ends: Sequence[str], values: Mapping[str, float]) -> list[tuple[str, sp.Expr]]:
    """``(node, current into it)`` of one element, its parameters substituted.

    Terminals on the same node are summed; zero currents are dropped.
    """
    subs: dict = {v: NodeVoltage(n) for v, n in zip(law.voltages, ends)}
    subs.update({p: sp.Float(values[p.name]) for p in law.params})
    out: dict[str, sp.Expr] = {}
    for t, node in enumerate(ends):
        i = law.currents[t]
        if i == 0:
            continue
        out[node] = out.get(node, sp.Integer(0)) + i.xreplace(subs)
    return [(n, i) for n, i in out.items() if i != 0]


class _TemplatePrinter(SpicePrinter):
    """Prints a law's parameters as placeholders ``@p<k>@``."""

    def __init__(self, nodes: NodeMap, params: Mapping[sp.Symbol, str]):
        super().__init__(nodes)
        self.params = params

    def _print_Symbol(self, expr) -> str:
        if expr in self.params:
            return self.params[expr]
        return super()._print_Symbol(expr)


_TOKEN = re.compile(r"@([tp])(\d+)@")


class _LawTemplate:
    """One law's terminal currents printed once, with placeholders for nodes and parameters.

    Printing a sympy expression per element is slow for dense blocks; the
    template is printed once per law and filled in per element.  A
    parameter value is written in parentheses when negative.  A terminal
    current is dropped when a parameter whose zero makes it vanish
    identically is zero (``w = 0`` in a VCCS, ``I = 0`` in a bias).
    """

    def __init__(self, law):
        tokens = [f"@t{k}@" for k in range(len(law.voltages))]
        printer = _TemplatePrinter(
            NodeMap({t: t for t in tokens}, {t: t for t in tokens}), {p: f"@p{j}@" for j, p in enumerate(law.params)}
        )
        subs = {v: NodeVoltage(t) for v, t in zip(law.voltages, tokens)}
        self.params = [p.name for p in law.params]
        self.terms: list[tuple[str, tuple[int, ...]] | None] = []
        for i in law.currents:
            if i == 0:
                self.terms.append(None)
                continue
            kills = tuple(j for j, p in enumerate(law.params) if i.xreplace({p: sp.Integer(0)}) == 0)
            self.terms.append((printer.doprint(i.xreplace(subs)), kills))

    def fill(self, ends: Sequence[str], values: Mapping[str, float], nodes: NodeMap) -> list[tuple[str, str]]:
        """``(node, current expression)`` per node the element drives (terminals on one node summed)."""
        vals = [float(values[p]) for p in self.params]
        spice = [nodes.spice(n) for n in ends]

        def token(m: re.Match) -> str:
            if m[1] == "t":
                return spice[int(m[2])]
            x = vals[int(m[2])]
            return _number(x) if x >= 0 else f"({_number(x)})"

        out: dict[str, list[str]] = {}
        for node, term in zip(ends, self.terms):
            if term is None or any(vals[j] == 0 for j in term[1]):
                continue
            out.setdefault(node, []).append(_TOKEN.sub(token, term[0]))
        return [(n, t[0] if len(t) == 1 else " + ".join(f"({x})" for x in t)) for n, t in out.items()]


def _options_line(options: Mapping[str, float]) -> str:
    def fmt(v) -> str:
        return str(int(v)) if float(v).is_integer() else _number(v)

    return ".options " + " ".join(f"{k}={fmt(v)}" for k, v in options.items())


def to_spice(
    circuit: Circuit,
    *,
    op: bool = True,
    tran: Transient | None = None,
    inputs=None,
    nodeset=None,
    sources: Sequence[ExtraSource] = (),
    options: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Deck:
    """Write ``circuit`` as an ngspice deck.

    Parameters
    ----------
    circuit
        Any circuit: scalar elements, layers, dense and sparse arrays, user
        element types.
    op
        Include ``.op`` (the stationary state).
    tran
        Include ``.tran`` from ``tran.x0`` (``.ic`` + ``uic``).
    inputs
        Clamped voltages (V) overriding the circuit's: ``(n_in,)`` or a mapping.
    nodeset
        Initial guess (V) for ``.op`` (``.nodeset``): ``(n,)`` or a mapping.
    sources
        Extra behavioural currents (:class:`ExtraSource`), e.g. learning-phase terms.
    options
        ngspice ``.options`` overriding :data:`DEFAULT_OPTIONS`.
    title
        The deck's first line (ngspice reads it as the title).

    Returns
    -------
    Deck

    Raises
    ------
    SpiceExportError
        If a law uses a function ngspice lacks, or an argument is malformed.
    """
    if not op and tran is None:
        raise SpiceExportError("nothing to simulate: give op=True and/or tran=Transient(...)")
    nodes = spice_node_names(list(circuit.free_nodes) + list(circuit.clamped_nodes))
    printer = SpicePrinter(nodes)
    names = _Names()
    u = input_values(circuit, inputs)
    title = title or f"aeplab circuit {circuit.name}"
    lines = [
        title.replace("\n", " "),
        "* Exported by aeplab (circuits/spice.py). Units: V, A, S, F, s; R = 1/G in ohm.",
        "* Sign convention: aeplab currents are positive INTO a node; each behavioural source is",
        "* written 'B<name> 0 <node> I=<current into node>' (SPICE pushes I from its first node,",
        "* through the source, into its second).",
        "*",
        "* node map (aeplab -> SPICE):",
    ]
    lines += [f"*   {a} -> {s}" for a, s in nodes.to_spice.items()]
    lines += ["", "* clamped inputs: ideal voltage sources to ground"]
    for node, value in zip(circuit.clamped_nodes, u):
        lines.append(f"{names('V', node)} {nodes.spice(node)} 0 DC {_number(value)}")

    caps, elements = [], []
    templates: dict[int, _LawTemplate] = {}
    for label, et, law, ends, values in iter_elements(circuit):
        if et is FreeNode:
            node = nodes.spice(ends[0])
            caps.append(f"{names('C', label)} {node} 0 {_number(values['C'])}")
            if values["g"] > 0:
                caps.append(f"{names('R', 'g_' + label)} {node} 0 {_number(1.0 / values['g'])}")
            continue
        if et is Resistor:
            if values["G"] > 0:
                elements.append(f"* {label} (resistor, G = {values['G']!r} S)")
                elements.append(
                    f"{names('R', label)} {nodes.spice(ends[0])} {nodes.spice(ends[1])} {_number(1.0 / values['G'])}"
                )
            continue
        key = id(law)
        if key not in templates:
            templates[key] = _LawTemplate(law)
        currents = [(n, i) for n, i in templates[key].fill(ends, values, nodes) if n in circuit.node_index]
        if not currents:
            continue
        elements.append(f"* {label} ({et.kind}): currents into {', '.join(n for n, _ in currents)}")
        for node, i in currents:
            elements.append(f"{names('B', f'{label}_{node}')} 0 {nodes.spice(node)} I={i}")
    lines += ["", "* free nodes: capacitance C and leak conductance g (as R = 1/g) to ground", *caps]
    lines += ["", "* elements: currents from their laws", *elements]
    if sources:
        lines += ["", "* extra sources"]
        for s in sources:
            if s.node not in circuit.node_index:
                raise SpiceExportError(f"extra source {s.label!r}: {s.node!r} is not a free node")
            if s.comment:
                lines.append(f"* {s.comment}")
            lines.append(f"{names('B', s.label)} 0 {nodes.spice(s.node)} I={printer.doprint(sp.sympify(s.current))}")

    opts = {**DEFAULT_OPTIONS, **(options or {})}
    lines += ["", _options_line(opts)]
    analyses: list[str] = []
    x0 = None
    if nodeset is not None:
        guess = _state_vector(nodeset, circuit, "nodeset")
        pairs = zip(circuit.free_nodes, guess)
        lines.append(".nodeset " + " ".join(f"V({nodes.spice(n)})={_number(v)}" for n, v in pairs))
    if op:
        lines.append(".op")
        analyses.append("op")
    if tran is not None:
        step, stop = float(tran.step), float(tran.stop)
        if not (np.isfinite(step) and step > 0 and np.isfinite(stop) and stop > 0):
            raise SpiceExportError(
                f"transient: step and stop must be positive seconds, got step={step!r}, stop={stop!r}"
            )
        if step > stop:
            raise SpiceExportError(f"transient: step {step!r} s is longer than stop {stop!r} s")
        x0 = _state_vector(tran.x0, circuit, "transient x0")
        lines.append(".ic " + " ".join(f"V({nodes.spice(n)})={_number(v)}" for n, v in zip(circuit.free_nodes, x0)))
        lines.append(f".tran {_number(step)} {_number(stop)} 0 {_number(step)} uic")
        # Without a .print line `ngspice -b deck.cir` keeps no transient data.
        lines.append(".print tran " + " ".join(f"V({nodes.spice(n)})" for n in circuit.free_nodes))
        analyses.append("tran")
    lines += [".end", ""]
    return Deck(
        text="\n".join(lines),
        nodes=nodes,
        free_nodes=list(circuit.free_nodes),
        clamped_nodes=list(circuit.clamped_nodes),
        analyses=tuple(analyses),
        transient=tran,
        x0=x0,
        circuit_name=circuit.name,
    )


def export_spice(circuit: Circuit, path: str | os.PathLike | None = None, **kwargs) -> str:
    """The deck text of ``circuit`` (see :func:`to_spice`); written atomically to ``path`` if given."""
    deck = to_spice(circuit, **kwargs)
    if path is not None:
        deck.write(path)
    return deck.text


def write_spice(circuit: Circuit, path: str | os.PathLike, **kwargs) -> Deck:
    """Write the deck of ``circuit`` to ``path`` atomically and return it."""
    deck = to_spice(circuit, **kwargs)
    deck.write(path)
    return deck
