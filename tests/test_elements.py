"""Element laws, custom element types, transfer functions, array forms and circuit validation."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from circuits import (
    ELEMENT_TYPES,
    TRANSFER_FUNCTIONS,
    VCCS,
    Bias,
    Circuit,
    CircuitError,
    CircuitWarning,
    Coupling,
    Dense,
    Element,
    FreeNode,
    HalfCoupling,
    Input,
    InputLayer,
    Layer,
    Output,
    Parameter,
    Resistor,
    Sparse,
    act_option,
    format_netlist,
    node_voltage,
    parse_netlist,
    register_transfer,
    transfer,
    transfer_names,
)
from circuits.element import NodeVoltage
from simulator.equations import derive


def S(name: str) -> sp.Symbol:
    """A real symbol, as the laws name terminal voltages (``v_a``) and parameters (``G``)."""
    return sp.Symbol(name, real=True)


def assert_matrix_equal(got: sp.Matrix, expected: sp.Matrix) -> None:
    assert got.shape == expected.shape
    diff = (got - expected).applyfunc(sp.simplify)
    assert diff.is_zero_matrix, f"difference:\n{diff}"


# -- laws of the built-in elements ------------------------------------------------------------------------------------

RECIPROCAL_KINDS = {"node", "resistor", "coupling", "bias"}
BUILTIN_KINDS = ["bias", "coupling", "halfcoupling", "node", "resistor", "vccs"]
BUILTIN_ACTS = ["linear", "tanh", "sigmoid", "hardsigmoid"]


def test_builtin_kinds_are_registered():
    for kind in BUILTIN_KINDS:
        assert ELEMENT_TYPES[kind].kind == kind
    assert set(BUILTIN_ACTS) <= set(transfer_names())


KIND_ACTS = [(kind, act) for kind in ("bias", "coupling", "halfcoupling", "vccs") for act in BUILTIN_ACTS]
KIND_ACTS += [("node", None), ("resistor", None)]


@pytest.mark.parametrize("kind, act", KIND_ACTS, ids=[f"{k}-{a}" if a else k for k, a in KIND_ACTS])
def test_law_reciprocity_per_kind(kind, act):
    etype = ELEMENT_TYPES[kind]
    assert bool(etype.options) is (act is not None)
    law = etype.law(act=act) if act else etype.law()
    assert law.reciprocal is (kind in RECIPROCAL_KINDS)
    assert (law.nonreciprocal_part.is_zero_matrix is True) is (kind in RECIPROCAL_KINDS)
    # Energy-form laws are reciprocal by construction.
    assert (law.energy is not None) is (kind in RECIPROCAL_KINDS)


def test_resistor_law():
    law = Resistor.law()
    va, vb, G = S("v_a"), S("v_b"), S("G")
    assert law.voltages == (va, vb)
    assert law.params == (G,)
    assert sp.simplify(law.currents[0] - G * (vb - va)) == 0
    assert sp.simplify(law.currents[1] - G * (va - vb)) == 0
    assert_matrix_equal(law.jacobian, sp.Matrix([[-G, G], [G, -G]]))
    assert law.shift_invariant == (True, True)
    assert law.implicit_nodes == ()


def test_leak_and_bias_laws():
    node = FreeNode.law()
    v, g = S("v_node"), S("g")
    assert node.params == (S("C"), g)
    assert sp.simplify(node.currents[0] + g * v) == 0
    assert node.param_derivatives["C"] == (0,)
    bias = Bias.law(act="linear")
    assert bias.currents == (S("I"),)
    assert bias.jacobian == sp.Matrix([[0]])
    assert sp.simplify(Bias.law(act="tanh").currents[0] - S("I") * (1 - sp.tanh(v) ** 2)) == 0


def test_vccs_law_and_its_nonreciprocal_part():
    law = VCCS.law(act="tanh")
    vo, vi, w = S("v_out"), S("v_in"), S("w")
    assert law.voltages == (vo, vi)
    assert sp.simplify(law.currents[0] - w * sp.tanh(vi)) == 0
    assert law.currents[1] == 0
    dr = 1 - sp.tanh(vi) ** 2
    assert_matrix_equal(law.jacobian, sp.Matrix([[0, w * dr], [0, 0]]))
    assert_matrix_equal(law.nonreciprocal_part, sp.Matrix([[0, w * dr / 2], [-w * dr / 2, 0]]))
    assert sp.simplify(law.param_derivatives["w"][0] - sp.tanh(vi)) == 0
    assert law.param_derivatives["w"][1] == 0
    assert not law.reciprocal


def test_coupling_and_halfcoupling_laws():
    va, vb, w = S("v_a"), S("v_b"), S("w")
    coupling = Coupling.law(act="tanh")
    assert sp.simplify(coupling.energy + w * sp.tanh(va) * sp.tanh(vb)) == 0
    assert sp.simplify(coupling.currents[0] - w * (1 - sp.tanh(va) ** 2) * sp.tanh(vb)) == 0
    assert sp.simplify(coupling.currents[1] - w * sp.tanh(va) * (1 - sp.tanh(vb) ** 2)) == 0
    half = HalfCoupling.law(act="tanh")
    vo, vi = S("v_out"), S("v_in")
    assert sp.simplify(half.currents[0] - w * sp.tanh(vi) * (1 - sp.tanh(vo) ** 2)) == 0
    assert half.currents[1] == 0


def test_law_is_cached_per_options():
    assert VCCS.law(act="tanh") is VCCS.law(act="tanh")
    assert VCCS.law() is VCCS.law(act="linear")  # the default act of a vccs is linear
    assert VCCS.law(act="tanh") is not VCCS.law(act="sigmoid")


def test_circuit_reciprocal_map():
    circuit = Circuit(
        [
            Input("x", 0.2),
            FreeNode("a"),
            FreeNode("b"),
            Resistor("R", "a", "b", G=1.0),
            Coupling("K", "a", "b", w=0.3, act="tanh"),
            Bias("B", "a", I=0.1, act="tanh"),
            VCCS("W", "b", "x", w=0.5),
            HalfCoupling("H", "a", "b", w=0.2, act="tanh"),
        ]
    )
    assert circuit.reciprocal == {
        "a": True,
        "b": True,
        "R": True,
        "K": True,
        "B": True,
        "W": False,
        "H": False,
    }
    assert circuit.nonreciprocal_elements == ["W", "H"]
    assert circuit.is_conservative is False


def test_element_values_and_equality():
    r = Resistor("R", "a", "b", G=2)
    assert r.params == {"G": 2.0} and isinstance(r.params["G"], float)
    assert r.nodes == ("a", "b")
    assert r == Resistor("R", "a", "b", G=2.0)
    assert r != Resistor("R", "a", "b", G=2.5)
    assert r != Resistor("R", "b", "a", G=2.0)
    assert VCCS("W", "a", "b", w=1).opts == {"act": "linear"}
    assert FreeNode("h").params == {"C": 1.0, "g": 1.0}
    assert FreeNode("h").nodes == ("h",) == FreeNode("h", "h").nodes


# -- a new element type needs nothing but its law ---------------------------------------------------------------------


@pytest.fixture
def diode_type():
    class Diode(Element):
        kind = "test_diode"
        terminals = ("a", "b")
        parameters = (Parameter("Is", "A", "saturation current", 1e-12, trainable=True, domain="positive"),)

        def currents(v, p, o):
            i = p["Is"] * (sp.exp((v["a"] - v["b"]) / 0.025) - 1)
            return {"a": -i, "b": i}

    yield Diode
    ELEMENT_TYPES.pop("test_diode", None)


@pytest.fixture
def reader_type():
    class Reader(Element):
        """A deliberately non-local element: it reads node "ref", which it is not attached to."""

        kind = "test_reader"
        terminals = ("out",)
        parameters = (Parameter("k", "S", "gain", 1.0),)
        options = (act_option("linear"),)

        def currents(v, p, o):
            return {"out": p["k"] * o["act"](node_voltage("ref"))}

    yield Reader
    ELEMENT_TYPES.pop("test_reader", None)


def test_custom_element_type_works_in_a_circuit(diode_type):
    Diode = diode_type
    assert ELEMENT_TYPES["test_diode"] is Diode
    law = Diode.law()
    assert law.reciprocal and law.shift_invariant == (True, True)
    circuit = Circuit([Input("x", 0.1), FreeNode("a"), Diode("D", "x", "a", Is=1e-9)])
    assert circuit.reciprocal == {"a": True, "D": True}
    eq = derive(circuit)
    va, vx = NodeVoltage("a"), NodeVoltage("x")
    Is = sp.Symbol("Is_D", real=True)
    expected = -sp.Symbol("g_a", real=True) * va + Is * (sp.exp((vx - va) / sp.Float(0.025)) - 1)
    assert sp.simplify(eq.rhs["a"] - expected) == 0
    # Its domain is enforced, and it goes through a netlist like a built-in kind.
    with pytest.raises(CircuitError, match=r"test_diode 'D': Is must be > 0"):
        Diode("D", "x", "a", Is=0)
    text = format_netlist(circuit)
    assert "test_diode" in text
    assert parse_netlist(text) == circuit


def test_custom_law_reading_a_node_voltage_lists_it_as_implicit(reader_type):
    Reader = reader_type
    law = Reader.law()
    assert law.implicit_nodes == ("ref",)
    assert law.voltages == (S("v_out"), NodeVoltage("ref"))
    assert_matrix_equal(law.jacobian, sp.Matrix([[0, S("k")], [0, 0]]))
    assert not law.reciprocal
    circuit = Circuit([FreeNode("a"), FreeNode("ref"), Reader("Rd", "a", k=2.0)])
    eq = derive(circuit)
    assert sp.simplify(eq.rhs["a"] - (-S("g_a") * NodeVoltage("a") + S("k_Rd") * NodeVoltage("ref"))) == 0
    assert sp.simplify(eq.rhs["ref"] + S("g_ref") * NodeVoltage("ref")) == 0
    with pytest.raises(CircuitError, match=r"test_reader 'Rd' \(read by its law\): unknown node 'ref'"):
        Circuit([FreeNode("a"), Reader("Rd", "a")])


def test_element_type_needs_exactly_one_law():
    with pytest.raises(TypeError, match="exactly one of currents/energy"):

        class NoLaw(Element):
            kind = "test_nolaw"
            terminals = ("a",)

    with pytest.raises(TypeError, match="exactly one of currents/energy"):

        class TwoLaws(Element):
            kind = "test_twolaws"
            terminals = ("a",)

            def currents(v, p, o):
                return {"a": 0}

            def energy(v, p, o):
                return 0

    assert "test_nolaw" not in ELEMENT_TYPES and "test_twolaws" not in ELEMENT_TYPES


def test_element_kind_cannot_be_registered_twice():
    with pytest.raises(TypeError, match="'resistor' is already registered"):

        class Impostor(Element):
            kind = "resistor"
            terminals = ("a", "b")

            def currents(v, p, o):
                return {"a": 0}

    assert ELEMENT_TYPES["resistor"] is Resistor


def test_law_with_undeclared_symbol_is_rejected():
    class Stray(Element):
        kind = "test_stray"
        terminals = ("a",)

        def currents(v, p, o):
            return {"a": sp.Symbol("k") * v["a"]}

    try:
        with pytest.raises(TypeError, match=r"test_stray: law uses undeclared symbols \['k'\]"):
            Stray.law()
    finally:
        ELEMENT_TYPES.pop("test_stray", None)


# -- transfer functions -----------------------------------------------------------------------------------------------


@pytest.fixture
def softsign():
    name = "test_softsign"
    register_transfer(name, lambda v: v / (1 + sp.Abs(v)))
    yield name
    TRANSFER_FUNCTIONS.pop(name, None)


def test_register_transfer_adds_a_usable_act(softsign):
    assert softsign in transfer_names()
    y = sp.Symbol("y")
    assert transfer(softsign)(y) == y / (1 + sp.Abs(y))
    element = VCCS("W", "a", "b", w=1.0, act=softsign)
    assert element.opts == {"act": softsign}
    vi = S("v_in")
    assert sp.simplify(VCCS.law(act=softsign).currents[0] - S("w") * vi / (1 + sp.Abs(vi))) == 0


def test_register_transfer_errors():
    with pytest.raises(ValueError, match="'tanh' is already registered"):
        register_transfer("tanh", sp.tanh)
    with pytest.raises(ValueError, match=r"'test_bad' depends on \['k'\]; it may depend on its argument only"):
        register_transfer("test_bad", lambda v: sp.Symbol("k") * v)
    with pytest.raises(ValueError, match="must be an identifier"):
        register_transfer("bad name", lambda v: v)
    assert "test_bad" not in TRANSFER_FUNCTIONS and "bad name" not in TRANSFER_FUNCTIONS
    with pytest.raises(ValueError, match="unknown transfer function 'tnah'; valid: .*tanh"):
        transfer("tnah")


# -- array forms ------------------------------------------------------------------------------------------------------


def test_layer_and_input_layer_node_names():
    h = Layer("h", 3, C=[1.0, 2.0, 3.0], g=0.5)
    assert h.nodes == ["h[0]", "h[1]", "h[2]"]
    np.testing.assert_array_equal(h.leak.params["C"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(h.leak.params["g"], [0.5, 0.5, 0.5])
    x = InputLayer("x", 2, value=0.25)
    assert x.nodes == ["x[0]", "x[1]"]
    np.testing.assert_array_equal(x.value, [0.25, 0.25])
    c = Circuit([FreeNode("a"), x, h])
    assert c.free_nodes == ["a", "h[0]", "h[1]", "h[2]"]
    assert c.clamped_nodes == ["x[0]", "x[1]"]
    np.testing.assert_array_equal(c.capacitance, [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(c.input_values, [0.25, 0.25])
    assert c.node_index["h[1]"] == 2
    assert c.get("h") is h


def test_dense_parameter_shapes():
    h, x = Layer("h", 3), InputLayer("x", 2)
    w = np.arange(6.0).reshape(3, 2)
    W = Dense("W", "vccs", h, x, w=w, act="tanh")
    assert W.shape == (3, 2)
    assert W.rows == h.nodes and W.cols == x.nodes
    np.testing.assert_array_equal(W.params["w"], w)
    w[0, 0] = 99.0
    assert W.params["w"][0, 0] == 0.0  # the block keeps its own copy
    broadcast = Dense("V", VCCS, ["a", "b"], x, w=0.5)
    np.testing.assert_array_equal(broadcast.params["w"], np.full((2, 2), 0.5))
    assert broadcast.opts == {"act": "linear"}


def test_sparse_edge_lists():
    h = Layer("h", 3)
    s = Sparse("K", "coupling", [["h[0]", "h[1]"], ["h[1]", "h[2]"]], w=[0.1, 0.2], act="tanh")
    assert s.size == 2
    assert s.terminal_nodes == (["h[0]", "h[1]"], ["h[1]", "h[2]"])
    np.testing.assert_array_equal(s.params["w"], [0.1, 0.2])
    b = Sparse("b", Bias, [h], I=0.3)
    assert b.terminal_nodes == (h.nodes,)
    np.testing.assert_array_equal(b.params["I"], [0.3, 0.3, 0.3])
    c = Circuit([h, s, b])
    groups = {name: (form, nodes) for name, _, _, nodes, _, form in c.element_groups()}
    assert groups["K"] == ("sparse", (["h[0]", "h[1]"], ["h[1]", "h[2]"]))
    assert c.reciprocal == {"h": True, "K": True, "b": True}


def test_outputs_and_targets():
    h, o = Layer("h", 2), Layer("o", 3)
    c = Circuit([h, o, FreeNode("z"), Output("o", target=[0.1, 0.2, 0.3]), Output("z", target=-1.0), Output("h")])
    assert c.outputs == ["o[0]", "o[1]", "o[2]", "z", "h[0]", "h[1]"]
    np.testing.assert_array_equal(c.targets[:4], [0.1, 0.2, 0.3, -1.0])
    assert np.isnan(c.targets[4:]).all()  # no target given: supplied later with the data
    scalar = Circuit([o, Output("o", target=0.5)])
    np.testing.assert_array_equal(scalar.targets, [0.5, 0.5, 0.5])


# -- every bad input gets a clear error -------------------------------------------------------------------------------

BAD_INPUTS = {
    "unknown node": (
        lambda: Circuit([FreeNode("h1"), FreeNode("h2"), Resistor("R", "h1", "h3", G=1.0)]),
        r"resistor 'R': unknown node 'h3'.*declare it with `node h3` or `input h3`",
    ),
    "unknown node in an array": (
        lambda: Circuit([Layer("h", 3), Sparse("S", "resistor", [["h[0]"], ["h[5]"]], G=1.0)]),
        r"resistor array 'S': unknown node 'h\[5\]'",
    ),
    "duplicate element names": (
        lambda: Circuit([FreeNode("a"), FreeNode("b"), Resistor("R", "a", "b", G=1), Resistor("R", "b", "a", G=2)]),
        r"duplicate name 'R': used by resistor element and by resistor element",
    ),
    "element named like a node": (
        lambda: Circuit([FreeNode("a"), Bias("a", "a", I=1.0)]),
        r"duplicate name 'a': used by free node and by bias element",
    ),
    "free node then input": (
        lambda: Circuit([FreeNode("a"), Input("a")]),
        r"'a'.*free node.*input",
    ),
    "input then free node": (
        lambda: Circuit([Input("a"), FreeNode("a")]),
        r"'a'.*input.*free node",
    ),
    "layer node also an input": (
        lambda: Circuit([Layer("h", 2), Input("h[0]")]),
        r"node 'h\[0\]' is declared both as input and as free node",
    ),
    "C = 0": (lambda: FreeNode("a", C=0.0), r"node 'a': C must be > 0 \(capacitance to ground\), got 0\.0"),
    "C < 0": (lambda: FreeNode("a", C=-1e-3), r"node 'a': C must be > 0.*got -0\.001"),
    "negative leak": (lambda: FreeNode("a", g=-0.1), r"node 'a': g must be ≥ 0 \(leak conductance.*got -0\.1"),
    "negative conductance": (lambda: Resistor("R", "a", "b", G=-1), r"resistor 'R': G must be ≥ 0"),
    "layer C = 0": (lambda: Layer("h", 3, C=[1.0, 0.0, 1.0]), r"'h': C must be > 0.*got 0\.0 at index"),
    "nan parameter": (lambda: VCCS("W", "a", "b", w=float("nan")), r"vccs 'W': w must be finite, got nan"),
    "infinite parameter": (lambda: Resistor("R", "a", "b", G=float("inf")), r"resistor 'R': G must be finite, got inf"),
    "nan input": (lambda: Input("x", float("nan")), r"input 'x': value must be finite, got nan"),
    "infinite target": (lambda: Output("a", target=-np.inf), r"output 'a': target must be finite, got -inf"),
    "nan in a dense block": (
        lambda: Dense("D", "vccs", ["a", "b"], ["c", "d"], w=[[1.0, 2.0], [np.nan, 4.0]]),
        r"dense vccs block 'D': w must be finite, got nan at index",
    ),
    "non-numeric parameter": (lambda: Resistor("R", "a", "b", G="abc"), r"resistor 'R': G='abc' is not a number"),
    "missing parameter": (lambda: Resistor("R", "a", "b"), r"resistor 'R': missing required parameter G \(conductance"),
    "unknown kind (dense)": (
        lambda: Dense("D", "vcss", ["a"], ["b"], w=1.0),
        r"unknown element kind 'vcss'; did you mean 'vccs'\?; valid: .*resistor",
    ),
    "unknown kind (sparse)": (
        lambda: Sparse("S", "resistr", [["a"], ["b"]], G=1.0),
        r"unknown element kind 'resistr'; did you mean 'resistor'\?",
    ),
    "unknown transfer function": (
        lambda: VCCS("W", "a", "b", w=1.0, act="tnah"),
        r"vccs 'W': unknown act 'tnah'; did you mean 'tanh'\?; valid: .*linear.*tanh",
    ),
    "unknown key": (
        lambda: VCCS("W", "a", "b", w=1.0, ww=2.0),
        r"vccs 'W': unknown key 'ww'; did you mean 'w'\?; valid keys for vccs: act, w",
    ),
    "too few nodes": (lambda: VCCS("W", "a", w=1.0), r"vccs 'W': needs 2 node\(s\) \(out, in\), got 1"),
    "too many nodes": (lambda: Bias("B", "a", "b", I=1.0), r"bias 'B': needs 1 node\(s\) \(node\), got 2"),
    "node with other nodes": (lambda: FreeNode("a", "b"), r"node 'a': a free node is its own terminal"),
    "dense of a one-terminal type": (
        lambda: Dense("D", "bias", ["a"], ["b"], I=1.0),
        r"dense bias block 'D': a dense block needs a two-terminal element type; bias has 1",
    ),
    "dense wrong shape": (
        lambda: Dense("D", "vccs", ["a", "b"], ["c"], w=np.ones((1, 2))),
        r"dense vccs block 'D': w has shape \(1, 2\), expected \(2, 1\)",
    ),
    "dense flat array": (
        lambda: Dense("D", "vccs", ["a", "b", "c"], ["x"], w=[1.0, 2.0, 3.0]),
        r"dense vccs block 'D': w has shape \(3,\), expected \(3, 1\)",
    ),
    "sparse wrong shape": (
        lambda: Sparse("S", "bias", [["a", "b"]], I=np.ones(3)),
        r"sparse bias array 'S': I has shape \(3,\), expected \(2,\)",
    ),
    "sparse wrong number of node lists": (
        lambda: Sparse("S", "resistor", [["a"]], G=1.0),
        r"sparse resistor array 'S': give 2 node list\(s\), one per terminal \(a, b\)",
    ),
    "sparse ragged node lists": (
        lambda: Sparse("S", "resistor", [["a", "b"], ["c"]], G=1.0),
        r"sparse resistor array 'S': node lists have different lengths \[2, 1\]",
    ),
    "layer wrong shape": (lambda: Layer("h", 3, C=[1.0, 2.0]), r"'h': C has shape \(2,\), expected \(3,\)"),
    "layer of size 0": (lambda: Layer("h", 0), r"layer 'h': size must be a positive integer, got 0"),
    "empty circuit": (
        lambda: Circuit([]),
        r"circuit 'circuit' has no free nodes; declare at least one with `node NAME`",
    ),
    "only inputs": (lambda: Circuit([Input("x")], name="c1"), r"circuit 'c1' has no free nodes"),
    "output on an input": (
        lambda: Circuit([FreeNode("a"), Input("x"), Output("x")]),
        r"output 'x': x is an input; outputs must be free nodes",
    ),
    "output on an input layer": (
        lambda: Circuit([Layer("h", 2), InputLayer("x", 2), Output("x")]),
        r"output 'x': x is an input layer; outputs must be free nodes",
    ),
    "output on an unknown node": (lambda: Circuit([FreeNode("a"), Output("b")]), r"output 'b': unknown node"),
    "output twice": (lambda: Circuit([FreeNode("a"), Output("a"), Output("a")]), r"output 'a' is designated twice"),
    "layer target of the wrong shape": (
        lambda: Circuit([Layer("h", 3), Output("h", target=[1.0, 2.0])]),
        r"output 'h': target has shape \(2,\), expected \(3,\)",
    ),
    "name with a space": (lambda: FreeNode("a b"), r"node 'a b': invalid name 'a b' \(no spaces, '=' or '#'\)"),
    "name with '='": (lambda: Resistor("R", "a=1", "b", G=1.0), r"invalid name 'a=1'"),
    "not a circuit item": (lambda: Circuit([FreeNode("a"), 42]), r"cannot put 42 in a circuit \(type int\)"),
}


@pytest.mark.parametrize("make, match", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_raises_a_clear_error(make, match):
    with pytest.raises(CircuitError, match=match):
        make()


def test_circuit_get_unknown_name_suggests():
    c = Circuit([FreeNode("a"), Bias("bias1", "a", I=1.0)])
    with pytest.raises(KeyError, match=r"no item 'bias2'.*did you mean 'bias1'\?"):
        c.get("bias2")


def test_input_layer_value_of_wrong_shape():
    with pytest.raises(CircuitError, match=r"input layer 'x': value has shape \(2,\), expected \(3,\)"):
        InputLayer("x", 3, value=[1.0, 2.0])


def test_bad_array_entry_index_is_printed_plainly():
    with pytest.raises(CircuitError, match=r"got 0\.0 at index \(1,\)$"):
        Layer("h", 3, C=[1.0, 0.0, 1.0])


# -- singular circuits warn -------------------------------------------------------------------------------------------


def test_floating_pair_joined_by_a_resistor_warns():
    with pytest.warns(CircuitWarning) as record:
        Circuit([FreeNode("a", g=0.0), FreeNode("b", g=0.0), Resistor("R", "a", "b", G=1.0)])
    message = str(record[0].message)
    assert "'a'" in message and "'b'" in message and "singular" in message


def test_isolated_node_without_leak_warns():
    with pytest.warns(CircuitWarning) as record:
        Circuit([FreeNode("a", g=0.0), FreeNode("b"), Bias("B", "b", I=1.0)])
    message = str(record[0].message)
    assert "'a'" in message and "'b'" not in message and "singular" in message


def test_floating_layer_warns():
    with pytest.warns(CircuitWarning, match=r"'h\[0\]'"):
        Circuit([Layer("h", 2, g=0.0), Sparse("R", "resistor", [["h[0]"], ["h[1]"]], G=1.0)])


def test_grounded_circuits_do_not_warn(recwarn):
    # g = 0 nodes tied to a clamped input through resistors have a path to ground.
    Circuit(
        [
            Input("vin", 1.0),
            FreeNode("n1", g=0.0),
            FreeNode("n2", g=0.0),
            Resistor("R1", "vin", "n1", G=1.0),
            Resistor("R2", "n1", "n2", G=1.0),
        ]
    )
    Circuit([FreeNode("a", g=1.0), FreeNode("b", g=0.0), Resistor("R", "a", "b", G=1.0)])
    h, x = Layer("h", 2), InputLayer("x", 2)
    Circuit([h, x, Dense("W", "vccs", h, x, w=1.0)])
    assert not [w for w in recwarn if issubclass(w.category, CircuitWarning)]
