"""Symbolic equations of motion: KCL over the element laws, checked against hand derivations.

Conventions under test (simulator/equations.py): currents are positive *into* a node,
``C_i dv_i/dt = f_i``; node voltages are ``NodeVoltage(name)`` (printed ``v_<name>``),
parameters ``Symbol(f"{param}_{element}", real=True)``, capacitances
``Symbol(f"C_{node}", positive=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from circuits import (
    VCCS,
    Bias,
    Circuit,
    Coupling,
    Dense,
    FreeNode,
    HalfCoupling,
    Input,
    InputLayer,
    Layer,
    Resistor,
    Sparse,
    read_netlist,
)
from circuits.element import NodeVoltage
from simulator.equations import derive

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "circuits"


def P(name: str) -> sp.Symbol:
    """A parameter symbol as simulator/equations.py names it, e.g. ``P("w_W")``."""
    return sp.Symbol(name, real=True)


def is_zero(expr) -> bool:
    return sp.simplify(expr) == 0


def assert_matrix_equal(got: sp.Matrix, expected: sp.Matrix) -> None:
    assert got.shape == expected.shape
    diff = (got - expected).applyfunc(sp.simplify)
    assert diff.is_zero_matrix, f"difference:\n{diff}"


# -- 1. a hand-made three-node circuit --------------------------------------------------------------------------------

v_a, v_b, v_x = NodeVoltage("a"), NodeVoltage("b"), NodeVoltage("x")
g_a, g_b, G_R, w_W, w_K, I_B = (P(n) for n in ("g_a", "g_b", "G_R", "w_W", "w_K", "I_B"))


def rho(v):
    return sp.tanh(v)


def drho(v):
    """ρ' for ρ = tanh, written out by hand."""
    return 1 - sp.tanh(v) ** 2


@pytest.fixture(scope="module")
def three_node():
    """Input x; free nodes a, b; resistor a–b; VCCS a←x (tanh); coupling a–b (tanh); bias into b (linear)."""
    circuit = Circuit(
        [
            Input("x", 0.5),
            FreeNode("a", C=2.0, g=0.5),
            FreeNode("b", C=1.0, g=1.5),
            Resistor("R", "a", "b", G=0.2),
            VCCS("W", "a", "x", w=0.8, act="tanh"),
            Coupling("K", "a", "b", w=0.3, act="tanh"),
            Bias("B", "b", I=0.1),
        ],
        name="three",
    )
    return derive(circuit)


def expected_three_node_rhs() -> dict[str, sp.Expr]:
    # Coupling: E = −w ρ(v_a) ρ(v_b), so i_a = −∂E/∂v_a = w ρ'(v_a) ρ(v_b) and symmetrically for b.
    return {
        "a": -g_a * v_a + G_R * (v_b - v_a) + w_W * rho(v_x) + w_K * drho(v_a) * rho(v_b),
        "b": -g_b * v_b + G_R * (v_a - v_b) + w_K * rho(v_a) * drho(v_b) + I_B,
    }


def test_three_node_state_and_symbols(three_node):
    eq = three_node
    assert eq.nodes == ["a", "b"]
    assert eq.states == [v_a, v_b]
    assert eq.inputs == [v_x]
    assert eq.capacitance == {"a": sp.Symbol("C_a", positive=True), "b": sp.Symbol("C_b", positive=True)}


def test_three_node_rhs_equals_hand_derivation(three_node):
    expected = expected_three_node_rhs()
    assert set(three_node.rhs) == set(expected)
    for node, f in expected.items():
        assert sp.simplify(three_node.rhs[node] - f) == 0, node


def test_three_node_rhs_uses_only_the_conventional_symbols(three_node):
    symbols = set().union(*(f.free_symbols for f in three_node.rhs.values()))
    assert symbols == {v_a, v_b, v_x, g_a, g_b, G_R, w_W, w_K, I_B}


def test_three_node_jacobian_equals_hand_derivation(three_node):
    # d/dv [ρ'(v)] = −2 tanh(v) (1 − tanh²(v))
    d2rho_a = -2 * sp.tanh(v_a) * drho(v_a)
    d2rho_b = -2 * sp.tanh(v_b) * drho(v_b)
    expected = sp.Matrix(
        [
            [-g_a - G_R + w_K * d2rho_a * rho(v_b), G_R + w_K * drho(v_a) * drho(v_b)],
            [G_R + w_K * drho(v_a) * drho(v_b), -g_b - G_R + w_K * rho(v_a) * d2rho_b],
        ]
    )
    assert_matrix_equal(three_node.jacobian, expected)
    # Every element acting between free nodes is reciprocal (the VCCS is driven by the input).
    assert three_node.A.is_zero_matrix
    assert_matrix_equal(three_node.S, expected)


def test_three_node_parameter_derivatives(three_node):
    d = three_node.param_derivatives()
    assert set(d) == {g_a, g_b, G_R, w_W, w_K, I_B}
    assert_matrix_equal(d[w_W], sp.Matrix([rho(v_x), 0]))
    assert_matrix_equal(d[G_R], sp.Matrix([v_b - v_a, v_a - v_b]))
    assert_matrix_equal(d[I_B], sp.Matrix([0, 1]))


def test_three_node_numeric_values(three_node):
    eq = three_node
    _ = eq.rhs  # see test_values_hold_parameters_before_rhs_is_built for why this is needed today
    assert eq.values[sp.Symbol("C_a", positive=True)] == 2.0
    assert eq.values[v_x] == 0.5
    assert eq.values[w_W] == 0.8
    assert eq.values[I_B] == 0.1
    f_a = eq.numeric(eq.rhs["a"]).subs({v_a: 0.1, v_b: -0.2})
    expected = -0.5 * 0.1 + 0.2 * (-0.3) + 0.8 * np.tanh(0.5) + 0.3 * (1 - np.tanh(0.1) ** 2) * np.tanh(-0.2)
    assert float(f_a) == pytest.approx(expected, rel=1e-12)


def test_three_node_text_and_latex(three_node):
    text = three_node.text().splitlines()
    assert len(text) == 2
    assert text[0].startswith("C_a·dv_a/dt = ")
    assert "w_W*tanh(v_x)" in text[0]
    assert "I_B" in text[1] and "I_B" not in text[0]
    latex = three_node.latex()
    assert latex.startswith("\\begin{aligned}") and latex.endswith("\\end{aligned}")
    assert "\\tanh" in latex and "w_{\\mathrm{W}}" in latex


def test_values_hold_parameters_before_rhs_is_built():
    eq = derive(read_netlist(EXAMPLES / "two_neurons.net"))
    assert eq.values.get(P("w_W21")) == 0.8
    assert float(eq.numeric(P("w_W21"))) == 0.8


# -- 2. reciprocity ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("netlist", ["hopfield.net", "resistor_network.net"])
def test_reciprocal_circuit_has_zero_nonreciprocal_part(netlist):
    circuit = read_netlist(EXAMPLES / netlist)
    assert circuit.is_conservative
    assert all(circuit.reciprocal.values())
    eq = derive(circuit)
    assert eq.A.is_zero_matrix is True
    # A = 0 means J is symmetric: check it at an arbitrary state with the circuit's values.
    J = eq.numeric(eq.jacobian).xreplace({v: sp.Float(0.1 * k - 0.2) for k, v in enumerate(eq.states)})
    J = np.array(J.evalf(), dtype=float)
    np.testing.assert_allclose(J, J.T, rtol=1e-12, atol=1e-15)


def test_vccs_between_free_nodes_gives_nonzero_antisymmetric_part():
    eq = derive(read_netlist(EXAMPLES / "two_neurons.net"))
    assert eq.nodes == ["h1", "h2"]
    h1 = NodeVoltage("h1")
    a = P("w_W21") * drho(h1) / 2
    assert_matrix_equal(eq.A, sp.Matrix([[0, -a], [a, 0]]))
    assert not all(is_zero(x) for x in eq.A)
    assert_matrix_equal(eq.A, -eq.A.T)
    assert_matrix_equal(eq.S + eq.A, eq.jacobian)


def test_nonreciprocal_part_of_one_vccs_element():
    eq = derive(read_netlist(EXAMPLES / "two_neurons.net"))
    ends, m = eq.nonreciprocal_part("W21")
    assert ends == ["h2", "h1"]
    a = P("w_W21") * drho(NodeVoltage("h1")) / 2
    assert_matrix_equal(m, sp.Matrix([[0, a], [-a, 0]]))
    ends, m = eq.nonreciprocal_part("K12")
    assert ends == ["h1", "h2"] and m.is_zero_matrix
    with pytest.raises(KeyError, match="nope"):
        eq.nonreciprocal_part("nope")


def test_symmetric_vccs_pair_is_still_nonconservative():
    """Hopfield 1984: W symmetric, yet J = −g + W diag(ρ'(x)) is not symmetric (ALGORITHMS.md §1)."""
    circuit = Circuit(
        [
            FreeNode("a"),
            FreeNode("b"),
            VCCS("Wab", "a", "b", w=0.5, act="tanh"),
            VCCS("Wba", "b", "a", w=0.5, act="tanh"),
        ]
    )
    eq = derive(circuit)
    half = (P("w_Wab") * drho(v_b) - P("w_Wba") * drho(v_a)) / 2
    assert_matrix_equal(eq.A, sp.Matrix([[0, half], [-half, 0]]))
    assert circuit.nonreciprocal_elements == ["Wab", "Wba"]


@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid"])
def test_two_halfcouplings_equal_one_coupling(act):
    coupled = derive(Circuit([FreeNode("a"), FreeNode("b"), Coupling("K", "a", "b", w=0.3, act=act)]))
    halves = derive(
        Circuit(
            [
                FreeNode("a"),
                FreeNode("b"),
                HalfCoupling("Hab", "a", "b", w=0.3, act=act),
                HalfCoupling("Hba", "b", "a", w=0.3, act=act),
            ]
        )
    )
    same_w = {P("w_Hab"): P("w_K"), P("w_Hba"): P("w_K")}
    for node in ("a", "b"):
        assert sp.simplify(halves.rhs[node].xreplace(same_w) - coupled.rhs[node]) == 0, node
    # With the same w the pair is reciprocal; with different w it is not.
    assert halves.A.xreplace(same_w).applyfunc(sp.simplify).is_zero_matrix
    assert not all(is_zero(x) for x in halves.A)
    assert halves.nonreciprocal_elements == ["Hab", "Hba"]
    assert coupled.nonreciprocal_elements == []


# -- 6. printing ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def array_circuit():
    h = Layer("h", 3)
    x = InputLayer("x", 2, value=[0.1, -0.2])
    W1 = Dense("W1", "vccs", h, x, w=np.arange(6.0).reshape(3, 2) / 10, act="tanh")
    b = Sparse("b", "bias", [h], I=[0.1, 0.2, 0.3])
    return Circuit([x, h, W1, b], name="arrays")


def test_vector_form_text(array_circuit):
    eq = derive(array_circuit)
    lines = eq.text().splitlines()
    assert len(lines) == 1, lines  # one vector equation for the one layer
    line = lines[0]
    assert line.startswith("C_h * dv_h/dt = ")
    assert "w_W1·tanh(v_x)" in line
    assert "g_h*v_h" in line and "I_b" in line
    assert [lab for lab, _, _ in eq.lines()] == ["h"]


def test_vector_form_latex(array_circuit):
    latex = derive(array_circuit).latex()
    assert "\\odot" in latex
    assert "\\tanh" in latex
    assert "w_{\\mathrm{W1}}" in latex


def test_array_circuit_scalar_expansion(array_circuit):
    eq = derive(array_circuit)
    f = eq.rhs["h[1]"]
    expected = (
        -P("g_h[1]") * NodeVoltage("h[1]")
        + P("w_W1[1,0]") * sp.tanh(NodeVoltage("x[0]"))
        + P("w_W1[1,1]") * sp.tanh(NodeVoltage("x[1]"))
        + P("I_b[1]")
    )
    assert sp.simplify(f - expected) == 0
    assert eq.values[P("w_W1[1,1]")] == pytest.approx(0.3)
    assert eq.reciprocal == {"h": True, "W1": False, "b": True}


def test_to_dict_of_two_neurons():
    eq = derive(read_netlist(EXAMPLES / "two_neurons.net"))
    d = eq.to_dict()
    assert {"nodes", "equations", "reciprocal", "nonreciprocal_elements"} <= set(d)
    json.dumps(d)  # JSON-ready
    assert d["nodes"] == ["h1", "h2"]
    assert d["reciprocal"] == {
        "h1": True,
        "h2": True,
        "U1": False,
        "W21": False,
        "K12": True,
        "b1": True,
        "b2": True,
    }
    assert d["nonreciprocal_elements"] == ["U1", "W21"]
    assert d["conservative"] is False
    assert set(d["equations"]) == {"h1", "h2"}
    for node, text in d["equations"].items():
        parsed = sp.parse_expr(text.replace("^", "**"))
        rhs = eq.rhs[node]
        plain = rhs.xreplace({s: sp.Symbol(s.name) for s in rhs.free_symbols})
        assert sp.simplify(parsed - plain) == 0, node
    assert "w_W21*tanh(v_h1)" in d["equations"]["h2"]
    assert d["nonreciprocal_parts"]["W21"]["terminals"] == ["h2", "h1"]
