"""Netlist text format: one element per line.

::

    # a comment; blank lines are ignored
    node      h1  C=1 g=1
    input     x1  value=0.5
    vccs      W21 h2 h1 w=0.8 act=tanh      # current into h2 = w·tanh(v_h1)
    coupling  K12 h1 h2 w=0.3 act=tanh      # Hopfield energy coupling
    resistor  R1  h1 h2 G=0.2
    bias      b1  h1 I=0.1
    output    h2  target=0.25

Each line is ``kind name [node ...] [key=value ...]``.  For ``node``, ``input``
and ``output`` the name *is* the node and no other node follows.  Numbers are
written with Python's shortest round-trip ``repr``, so writing and reading a
circuit gives back exactly the same values.  Netlists hold scalar elements;
arrays (layers, dense and sparse blocks) are built in Python.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .circuit import Circuit, ElementArray, Input, InputLayer, Layer, Output
from .element import ELEMENT_TYPES, Element
from .errors import CircuitError, did_you_mean
from .library import FreeNode

__all__ = ["parse_netlist", "read_netlist", "format_netlist", "write_netlist"]

_DECLARATIONS = {"node", "input", "output"}


def _kinds() -> list[str]:
    return sorted(set(ELEMENT_TYPES) | _DECLARATIONS)


def parse_netlist(text: str, name: str = "circuit", source: str = "<netlist>") -> Circuit:
    """Parse netlist ``text`` into a :class:`~circuits.circuit.Circuit`.

    Raises
    ------
    CircuitError
        With ``source:line`` and the element named, for any invalid line.
    """
    items, lines = [], {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"{source}:{lineno}"
        try:
            item = _parse_line(body)
        except CircuitError as err:
            raise CircuitError(f"{where}: {err}") from None
        items.append(item)
        lines[id(item)] = lineno
    declared: dict[str, int] = {}
    kinds: dict[str, str] = {}
    names: dict[str, int] = {}
    for item in items:
        if not isinstance(item, Output):
            if item.name in names and not isinstance(item, (FreeNode, Input)):
                raise CircuitError(
                    f"{source}:{lines[id(item)]}: duplicate name {item.name!r} (first used on line {names[item.name]})"
                )
            names.setdefault(item.name, lines[id(item)])
        node = item.name if isinstance(item, (FreeNode, Input)) else None
        if node is None:
            continue
        if node in declared:
            how = "input" if isinstance(item, Input) else "free node"
            both = {kinds[node], how} == {"input", "free node"}
            raise CircuitError(
                f"{source}:{lines[id(item)]}: node {node!r} is declared "
                + (
                    f"both as {kinds[node]} (line {declared[node]}) and as {how}"
                    if both
                    else f"twice (first on line {declared[node]})"
                )
            )
        declared[node] = lines[id(item)]
        kinds[node] = "input" if isinstance(item, Input) else "free node"
    for item in items:
        nodes = item.nodes if isinstance(item, Element) and not isinstance(item, FreeNode) else ()
        if isinstance(item, Output):
            nodes = (item.node,)
        for n in nodes:
            if n not in declared:
                raise CircuitError(
                    f"{source}:{lines[id(item)]}: {item.kind} {item.name!r}: unknown node {n!r}"
                    f"{did_you_mean(n, declared)}; declare it with `node {n}` or `input {n}`"
                )
            if isinstance(item, Output) and kinds[n] == "input":
                raise CircuitError(
                    f"{source}:{lines[id(item)]}: output {n!r}: {n} is an input (line {declared[n]}); "
                    "outputs must be free nodes"
                )
    try:
        return Circuit(items, name=name)
    except CircuitError as err:
        raise CircuitError(f"{source}: {err}") from None


def _parse_line(body: str):
    tokens = body.split()
    kind = tokens[0]
    if kind not in ELEMENT_TYPES and kind not in _DECLARATIONS:
        raise CircuitError(f"unknown element kind {kind!r}{did_you_mean(kind, _kinds())}; valid: {', '.join(_kinds())}")
    if len(tokens) < 2 or "=" in tokens[1]:
        raise CircuitError(f"{kind}: missing name (expected `{kind} NAME ...`)")
    name, nodes, values = tokens[1], [], {}
    for tok in tokens[2:]:
        if "=" in tok:
            key, _, value = tok.partition("=")
            if not key or not value:
                raise CircuitError(f"{kind} {name!r}: malformed `{tok}` (expected key=value)")
            if key in values:
                raise CircuitError(f"{kind} {name!r}: key {key!r} given twice")
            values[key] = value
        elif values:
            raise CircuitError(f"{kind} {name!r}: node {tok!r} after key=value pairs")
        else:
            nodes.append(tok)
    if kind in _DECLARATIONS:
        if nodes:
            raise CircuitError(f"{kind} {name!r}: takes no nodes besides its name, got {' '.join(nodes)}")
        allowed = {"node": ("C", "g"), "input": ("value",), "output": ("target",)}[kind]
        for key in values:
            if key not in allowed:
                raise CircuitError(
                    f"{kind} {name!r}: unknown key {key!r}{did_you_mean(key, allowed)}; "
                    f"valid keys: {', '.join(allowed)}"
                )
        numbers = {k: _number(v, kind, name, k) for k, v in values.items()}
        if kind == "node":
            return FreeNode(name, **numbers)
        if kind == "input":
            return Input(name, **numbers)
        return Output(name, **numbers)
    etype = ELEMENT_TYPES[kind]
    numeric = {p.name for p in etype.parameters}
    return etype(name, *nodes, **{k: _number(v, kind, name, k) if k in numeric else v for k, v in values.items()})


def _number(text: str, kind: str, name: str, key: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CircuitError(f"{kind} {name!r}: {key}={text!r} is not a number") from None
    if not np.isfinite(value):
        raise CircuitError(f"{kind} {name!r}: {key} must be finite, got {text}")
    return value


def read_netlist(path: str | os.PathLike) -> Circuit:
    """Read a netlist file; the circuit is named after the file's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"netlist {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise CircuitError(f"netlist {str(path)!r} is a folder; give a netlist file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CircuitError(f"cannot read netlist {str(path)!r}: {err}") from None
    return parse_netlist(text, name=path.stem, source=str(path))


def format_netlist(circuit: Circuit) -> str:
    """The netlist text of ``circuit`` (exact: reading it gives an equal circuit).

    Raises
    ------
    CircuitError
        If the circuit holds arrays (layers, dense or sparse blocks).
    """
    lines = [f"# {circuit.name}"]
    for item in circuit.items:
        if isinstance(item, (Layer, InputLayer, ElementArray)):
            raise CircuitError(
                f"{type(item).__name__} {item.name!r} cannot be written to a netlist: netlists hold "
                "scalar elements; build arrays in Python"
            )
        if isinstance(item, FreeNode):
            fields = [item.name] + [f"{k}={item.params[k]!r}" for k in ("C", "g")]
        elif isinstance(item, Input):
            fields = [item.name, f"value={item.value!r}"]
        elif isinstance(item, Output):
            fields = [item.node] + ([] if item.target is None else [f"target={float(item.target)!r}"])
        else:
            fields = [item.name, *item.nodes]
            fields += [f"{k}={v!r}" for k, v in item.params.items()]
            fields += [f"{k}={v}" for k, v in item.opts.items()]
        lines.append(f"{item.kind:<13} " + " ".join(fields))
    return "\n".join(lines) + "\n"


def write_netlist(circuit: Circuit, path: str | os.PathLike) -> None:
    """Write ``circuit`` to ``path`` atomically (temporary file, then rename)."""
    atomic_write(path, format_netlist(circuit))
