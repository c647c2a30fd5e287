"""Element types: one symbolic current law each, everything else derived.

An element type declares its terminals, its parameters and its options, and
states its law once, in sympy, in one of two forms:

* ``currents(v, p, o)`` returns the current (A) pushed *into* each terminal;
* ``energy(v, p, o)`` returns a co-content ``E`` (W = A·V) and the currents are
  ``i = −∂E/∂v``, which makes the element reciprocal by construction.

``v`` maps terminal roles to voltage symbols (V), ``p`` maps parameter names to
symbols, ``o`` maps option names to their resolved values (e.g. a transfer
function).  From the law, :class:`Law` derives the Jacobian block ``∂i/∂v``
(S), the parameter derivatives ``∂i/∂θ``, reciprocity (symmetric block, decided
symbolically) and the non-reciprocal part ``(∂i/∂v − (∂i/∂v)ᵀ)/2``.

Sign convention, used everywhere in aeplab: a current is positive when it flows
*into* the node; KCL at free node ``i`` reads ``C_i dv_i/dt = Σ_e i_e,i``.

A new element type needs nothing but this::

    class Diode(Element):
        kind = "diode"
        terminals = ("a", "b")
        parameters = (Parameter("Is", "A", "saturation current", 1e-12),)
        def currents(v, p, o):
            i = p["Is"] * (sp.exp((v["a"] - v["b"]) / 0.025) - 1)
            return {"a": -i, "b": i}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from .errors import CircuitError, did_you_mean
from .transfer import transfer, transfer_names

__all__ = [
    "ELEMENT_TYPES",
    "Element",
    "Law",
    "NodeVoltage",
    "Option",
    "Parameter",
    "node_voltage",
    "act_option",
]

ELEMENT_TYPES: dict[str, type[Element]] = {}
_DOMAINS = ("real", "positive", "nonnegative")


class NodeVoltage(sp.Symbol):
    """Voltage (V) of a named circuit node, as a sympy symbol ``v_<node>``.

    Laws normally use the symbols of their own terminals; a law that reads
    ``node_voltage("h3")`` reads a node it is not attached to, which the
    simulator honours and the locality checker reports.
    """

    def __new__(cls, node: str):
        obj = super().__new__(cls, f"v_{node}", real=True)
        obj.node = node
        return obj

    def __getnewargs__(self):
        return (self.node,)

    def _hashable_content(self):
        return (*super()._hashable_content(), "node")


def node_voltage(node: str) -> NodeVoltage:
    """The voltage symbol of circuit node ``node``."""
    return NodeVoltage(node)


@dataclass(frozen=True)
class Parameter:
    """A numeric parameter of an element type (one value per element).

    Attributes
    ----------
    name : str
        Key in netlists and in ``p`` inside the law.
    unit : str
        SI unit of the value, e.g. ``"S"`` or ``"A"``.
    doc : str
        What the parameter is, physically.
    default : float or None
        Value when not given; ``None`` makes it required.
    trainable : bool
        Whether learning rules update it by default.
    domain : {"real", "positive", "nonnegative"}
        Values outside are rejected.
    """

    name: str
    unit: str
    doc: str
    default: float | None = None
    trainable: bool = False
    domain: str = "real"

    def __post_init__(self):
        if self.domain not in _DOMAINS:
            raise ValueError(f"parameter {self.name!r}: domain must be one of {_DOMAINS}")

    def check(self, value, where: str) -> np.ndarray:
        """Return ``value`` as a float array, or raise naming ``where``."""
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise CircuitError(f"{where}: {self.name}={value!r} is not a number") from None
        for ok, need in (
            (np.isfinite(arr), "finite"),
            (arr > 0 if self.domain == "positive" else True, f"> 0 ({self.doc})"),
            (arr >= 0 if self.domain == "nonnegative" else True, f"≥ 0 ({self.doc})"),
        ):
            if not np.all(ok):
                bad = np.flatnonzero(~np.broadcast_to(ok, arr.shape))[0] if arr.ndim else None
                got = (
                    repr(float(arr))
                    if bad is None
                    else f"{float(arr.flat[bad])!r} at index {tuple(int(i) for i in np.unravel_index(bad, arr.shape))}"
                )
                raise CircuitError(f"{where}: {self.name} must be {need}, got {got}")
        return arr


@dataclass(frozen=True)
class Option:
    """A fixed, non-numeric choice of an element type (e.g. its transfer function).

    Attributes
    ----------
    name, doc, default
        Key, description and default choice.
    choices : callable
        Returns the list of valid values.
    resolve : callable
        Maps a valid value to what the law receives in ``o[name]``.
    """

    name: str
    doc: str
    default: str
    choices: Callable[[], list[str]]
    resolve: Callable[[str], Any]

    def check(self, value, where: str) -> str:
        value = str(value)
        valid = self.choices()
        if value not in valid:
            raise CircuitError(
                f"{where}: unknown {self.name} {value!r}{did_you_mean(value, valid)}; valid: {', '.join(valid)}"
            )
        return value


def act_option(default: str = "tanh") -> Option:
    """The ``act`` option: a registered transfer function ρ."""
    return Option("act", "transfer function ρ", default, transfer_names, transfer)


class Element:
    """Base class of element types, and a single element of that type.

    Subclasses set ``kind``, ``terminals``, ``parameters``, ``options`` and
    define ``currents`` or ``energy`` (static, sympy).  An instance is one
    element in a circuit::

        VCCS("W21", "h2", "h1", w=0.8, act="tanh")

    Parameters
    ----------
    name
        Unique name of the element in its circuit.
    *nodes
        One node name per terminal, in the order of ``terminals``.
    **values
        Parameter values (floats, in the units declared) and options.
    """

    kind: ClassVar[str]
    terminals: ClassVar[tuple[str, ...]]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()
    currents: ClassVar[Callable | None] = None
    energy: ClassVar[Callable | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            return  # abstract intermediate class
        for attr in ("currents", "energy"):
            if isinstance(cls.__dict__.get(attr), Callable) and not isinstance(cls.__dict__[attr], staticmethod):
                setattr(cls, attr, staticmethod(cls.__dict__[attr]))
        if (cls.currents is None) == (cls.energy is None):
            raise TypeError(f"element type {cls.__name__} must define exactly one of currents/energy")
        names = [p.name for p in cls.parameters] + [o.name for o in cls.options]
        if len(set(names)) != len(names):
            raise TypeError(f"element type {cls.__name__}: duplicate parameter/option names")
        if any(n.startswith("v_") for n in names):
            raise TypeError(f"element type {cls.__name__}: names starting with 'v_' are reserved")
        if cls.kind in ELEMENT_TYPES and ELEMENT_TYPES[cls.kind] is not cls:
            raise TypeError(f"element kind {cls.kind!r} is already registered")
        ELEMENT_TYPES[cls.kind] = cls

    def __init__(self, name: str, *nodes: str, **values):
        where = f"{self.kind} {name!r}"
        check_name(name, where)
        if len(nodes) != len(self.terminals):
            raise CircuitError(
                f"{where}: needs {len(self.terminals)} node(s) ({', '.join(self.terminals)}), got {len(nodes)}"
            )
        for node in nodes:
            check_name(node, f"{where}, node")
        self.name = name
        self.nodes = tuple(nodes)
        self.params, self.opts = self.check_values(values, where, shape=())

    @classmethod
    def check_values(cls, values: Mapping[str, Any], where: str, shape: tuple[int, ...]):
        """Validate parameter and option values; arrays must have ``shape``."""
        keys = {p.name for p in cls.parameters} | {o.name for o in cls.options}
        for key in values:
            if key not in keys:
                raise CircuitError(
                    f"{where}: unknown key {key!r}{did_you_mean(key, keys)}; "
                    f"valid keys for {cls.kind}: {', '.join(sorted(keys)) or '(none)'}"
                )
        params = {}
        for p in cls.parameters:
            if p.name in values:
                arr = p.check(values[p.name], where)
            elif p.default is not None:
                arr = np.asarray(p.default, dtype=float)
            else:
                raise CircuitError(f"{where}: missing required parameter {p.name} ({p.doc}, {p.unit})")
            if arr.shape != shape:
                if arr.ndim == 0 and shape:
                    arr = np.full(shape, float(arr))
                else:
                    raise CircuitError(f"{where}: {p.name} has shape {arr.shape}, expected {shape or 'a scalar'}")
            params[p.name] = arr.copy() if shape else float(arr)
        opts = {o.name: o.check(values.get(o.name, o.default), where) for o in cls.options}
        return params, opts

    @classmethod
    def law(cls, **opts: str) -> Law:
        """The symbolic law of this type for the given options (cached)."""
        full = {o.name: opts.get(o.name, o.default) for o in cls.options}
        return _law(cls, tuple(sorted(full.items())))

    def __repr__(self) -> str:
        vals = " ".join(f"{k}={v!r}" for k, v in {**self.params, **self.opts}.items())
        return f"<{self.kind} {self.name} {' '.join(self.nodes)} {vals}>"

    def __eq__(self, other) -> bool:
        return (
            type(self) is type(other)
            and self.name == other.name
            and self.nodes == other.nodes
            and self.params == other.params
            and self.opts == other.opts
        )

    __hash__ = None


def check_name(name: str, where: str) -> None:
    """Names are non-empty and free of whitespace, '=' and '#'."""
    if not isinstance(name, str) or not name or any(c.isspace() or c in "=#" for c in name):
        raise CircuitError(f"{where}: invalid name {name!r} (no spaces, '=' or '#')")


@dataclass(frozen=True, eq=False)
class Law:
    """Everything derived symbolically from one element type's law.

    Terminal order is the type's ``terminals`` followed by any node the law
    reads without being attached to it (``implicit_nodes``), which receive no
    current.

    Attributes
    ----------
    voltages : tuple of Symbol
        Voltage symbols of the terminals (V).
    params : tuple of Symbol
        Parameter symbols, in declaration order.
    currents : tuple of Expr
        Current into each terminal (A).
    energy : Expr or None
        Co-content ``E`` with ``currents = −∂E/∂v``, when the law is stated so.
    jacobian : sympy.Matrix
        ``∂i_t/∂v_s`` (S).
    param_derivatives : dict
        Parameter name → tuple of ``∂i_t/∂θ`` per terminal.
    reciprocal : bool
        Whether ``jacobian`` is symmetric (decided symbolically).
    nonreciprocal_part : sympy.Matrix
        ``(jacobian − jacobianᵀ)/2``.
    shift_invariant : tuple of bool
        Per terminal, whether its current depends on voltage differences only
        (row sum of ``jacobian`` ≡ 0): such an element gives no path to ground.
    """

    element_type: type
    options: tuple
    voltages: tuple
    params: tuple
    currents: tuple
    energy: sp.Expr | None
    jacobian: sp.Matrix
    param_derivatives: dict
    reciprocal: bool
    nonreciprocal_part: sp.Matrix
    shift_invariant: tuple
    implicit_nodes: tuple = field(default=())

    @property
    def n_terminals(self) -> int:
        return len(self.voltages)


@cache
def _law(cls: type[Element], options: tuple) -> Law:
    v = {t: sp.Symbol(f"v_{t}", real=True) for t in cls.terminals}
    p = {q.name: sp.Symbol(q.name, real=True) for q in cls.parameters}
    o = {name: opt.resolve(value) for opt in cls.options for (name, value) in options if name == opt.name}
    energy = None
    if cls.energy is not None:
        energy = sp.sympify(cls.energy(v, p, o))
        currents = {t: sp.factor_terms(-sp.diff(energy, v[t])) for t in cls.terminals}
    else:
        currents = {t: sp.sympify(i) for t, i in cls.currents(v, p, o).items()}
        unknown = set(currents) - set(cls.terminals)
        if unknown:
            raise TypeError(f"{cls.kind}: law returns currents for unknown terminals {sorted(unknown)}")
    exprs = [currents.get(t, sp.Integer(0)) for t in cls.terminals]
    allowed = set(v.values()) | set(p.values())
    implicit = sorted({s for e in exprs for s in e.free_symbols if isinstance(s, NodeVoltage)}, key=str)
    strays = {s for e in exprs for s in e.free_symbols} - allowed - set(implicit)
    if strays:
        raise TypeError(
            f"{cls.kind}: law uses undeclared symbols {sorted(map(str, strays))}; "
            "use the terminal voltages v[...], the parameters p[...] or node_voltage(name)"
        )
    voltages = tuple(v[t] for t in cls.terminals) + tuple(implicit)
    exprs += [sp.Integer(0)] * len(implicit)
    jac = sp.Matrix([[sp.diff(i, s) for s in voltages] for i in exprs])
    antisym = ((jac - jac.T) / 2).applyfunc(sp.simplify)
    return Law(
        element_type=cls,
        options=options,
        voltages=voltages,
        params=tuple(p[q.name] for q in cls.parameters),
        currents=tuple(exprs),
        energy=energy,
        jacobian=jac,
        param_derivatives={q.name: tuple(sp.diff(i, p[q.name]) for i in exprs) for q in cls.parameters},
        reciprocal=bool(antisym.is_zero_matrix),
        nonreciprocal_part=antisym,
        shift_invariant=tuple(sp.simplify(sum(jac.row(t))) == 0 for t in range(len(exprs))),
        implicit_nodes=tuple(s.node for s in implicit),
    )
