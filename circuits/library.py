"""The built-in element library.

Units: volts (V), amperes (A), siemens (S), farads (F), seconds (s).  Any
consistent scaling works; aeplab never assumes a magnitude.  Currents are
positive *into* a node.

=============  ===============  ==============================================
kind           terminals        law
=============  ===============  ==============================================
node           node             leak ``i = −g·v``  (E = g v²/2); capacitance C
resistor       a, b             ``i_a = G(v_b − v_a)``  (E = G (v_a − v_b)²/2)
vccs           out, in          ``i_out = w·ρ(v_in)``, ``i_in = 0``
coupling       a, b             ``E = −w·ρ(v_a)·ρ(v_b)``
halfcoupling   out, in          ``i_out = w·ρ(v_in)·ρ'(v_out)``, ``i_in = 0``
bias           node             ``E = −I·ρ(v)``; with ρ linear, ``i = I``
=============  ===============  ==============================================

``resistor``, ``coupling``, ``node`` and ``bias`` derive from a co-content and
are reciprocal; ``vccs`` and ``halfcoupling`` are not.  Two half-couplings
``a←b`` and ``b←a`` with the same ``w`` add up to one ``coupling``: the untied
Hopfield network is built from half-couplings.

Clamped inputs (:class:`Input`) and output designations (:class:`Output`) are
not current laws and live in :mod:`circuits.circuit`.
"""

from __future__ import annotations

import sympy as sp

from .element import Element, Parameter, act_option
from .errors import CircuitError

__all__ = ["FreeNode", "Resistor", "VCCS", "Coupling", "HalfCoupling", "Bias"]


def _derivative(rho, v: sp.Symbol) -> sp.Expr:
    return sp.diff(rho(v), v)


class FreeNode(Element):
    """A free node (neuron): capacitance ``C`` to ground and leak conductance ``g``.

    Its name is the node's name: ``FreeNode("h1", "h1", C=1, g=1)``, or in a
    netlist ``node h1 C=1 g=1``.
    """

    kind = "node"
    terminals = ("node",)
    parameters = (
        Parameter("C", "F", "capacitance to ground", 1.0, domain="positive"),
        Parameter("g", "S", "leak conductance to ground", 1.0, domain="nonnegative"),
    )

    def __init__(self, name: str, *nodes: str, **values):
        if nodes not in ((), (name,)):
            raise CircuitError(f"node {name!r}: a free node is its own terminal; give no other nodes")
        super().__init__(name, name, **values)

    def energy(v, p, o):
        return p["g"] * v["node"] ** 2 / 2


class Resistor(Element):
    """A conductance ``G`` between nodes ``a`` and ``b``; reciprocal."""

    kind = "resistor"
    terminals = ("a", "b")
    parameters = (Parameter("G", "S", "conductance", trainable=True, domain="nonnegative"),)

    def energy(v, p, o):
        return p["G"] * (v["a"] - v["b"]) ** 2 / 2


class VCCS(Element):
    """Transconductance: pushes ``w·ρ(v_in)`` into ``out``, draws nothing from ``in``."""

    kind = "vccs"
    terminals = ("out", "in")
    parameters = (Parameter("w", "A", "transconductance (current per unit ρ)", trainable=True),)
    options = (act_option("linear"),)

    def currents(v, p, o):
        return {"out": p["w"] * o["act"](v["in"])}


class Coupling(Element):
    """Hopfield energy coupling ``E = −w·ρ(v_a)·ρ(v_b)``; reciprocal."""

    kind = "coupling"
    terminals = ("a", "b")
    parameters = (Parameter("w", "A", "coupling strength (current per unit ρ·ρ')", trainable=True),)
    options = (act_option("linear"),)

    def energy(v, p, o):
        return -p["w"] * o["act"](v["a"]) * o["act"](v["b"])


class HalfCoupling(Element):
    """One directed half of an energy coupling: ``i_out = w·ρ(v_in)·ρ'(v_out)``."""

    kind = "halfcoupling"
    terminals = ("out", "in")
    parameters = (Parameter("w", "A", "coupling strength (current per unit ρ·ρ')", trainable=True),)
    options = (act_option("linear"),)

    def currents(v, p, o):
        return {"out": p["w"] * o["act"](v["in"]) * _derivative(o["act"], v["out"])}


class Bias(Element):
    """Bias current into a node, ``E = −I·ρ(v)`` (a constant ``I`` when ρ is linear)."""

    kind = "bias"
    terminals = ("node",)
    parameters = (Parameter("I", "A", "bias current", trainable=True),)
    options = (act_option("linear"),)

    def energy(v, p, o):
        return -p["I"] * o["act"](v["node"])
