"""A new element type needs nothing but its law: a diode, then a deliberately non-local element.

Run:  python examples/custom_element.py
"""

import sys
from pathlib import Path

# Run as a script, this folder leads sys.path, and its netlist folder circuits/ would
# then shadow the circuits package (an editable install resolves packages last).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import sympy as sp

from circuits import Circuit, Element, FreeNode, Input, Output, Parameter, Resistor, node_voltage
from learning.locality import check_locality
from simulator import compile_circuit, derive, settle


class Diode(Element):
    """Shockley diode from ``a`` to ``b``: i = Is (exp((v_a − v_b)/Vt) − 1), flowing a → b."""

    kind = "diode"
    terminals = ("a", "b")
    parameters = (
        Parameter("Is", "A", "saturation current", 1e-9, domain="positive"),
        Parameter("Vt", "V", "thermal voltage", 0.025, domain="positive"),
    )

    def currents(v, p, o):
        i = p["Is"] * (sp.exp((v["a"] - v["b"]) / p["Vt"]) - 1)
        return {"a": -i, "b": i}


circuit = Circuit(
    [
        Input("vin", value=1.0),
        FreeNode("n", C=1e-6, g=1e-3),
        Resistor("R", "vin", "n", G=1e-2),
        Diode("D", "n", "gnd"),
        Input("gnd", value=0.0),
        Output("n"),
    ],
    name="diode_clamp",
)
print(derive(circuit).text())
print("reciprocal:", circuit.reciprocal)  # the diode derives from a potential: reciprocal
result = settle(compile_circuit(circuit), method="newton", tol=1e-12)
print(result.message, "→ v_n =", result.state[0, 0], "V")


class Spy(Element):
    """Reads node 'n' without being attached to it: its update could not be local in hardware."""

    kind = "spy"
    terminals = ("a",)
    parameters = (Parameter("w", "A", "gain", 1e-3, trainable=True),)

    def currents(v, p, o):
        return {"a": p["w"] * sp.tanh(node_voltage("n"))}


spied = Circuit([*circuit.items, FreeNode("m", C=1e-6, g=1e-3), Spy("S", "m")], name="spied")
for report in check_locality(spied):
    verdict = "local" if report.local else "NON-LOCAL, reads " + ", ".join(report.reads_outside)
    print(f"{report.element:>2} ({report.kind}): {verdict}")
