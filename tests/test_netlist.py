"""Netlist text: exact round-trips, clear errors with line numbers, atomic writes."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from circuits import (
    VCCS,
    Bias,
    Circuit,
    CircuitError,
    CircuitWarning,
    Coupling,
    Dense,
    FreeNode,
    HalfCoupling,
    Input,
    InputLayer,
    Layer,
    Output,
    Resistor,
    Sparse,
    atomic_open,
    atomic_write,
    format_netlist,
    parse_netlist,
    read_netlist,
    write_netlist,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "circuits"
EXAMPLE_NETLISTS = sorted(EXAMPLES.glob("*.net"))


def test_examples_are_found():
    names = {p.name for p in EXAMPLE_NETLISTS}
    assert {"two_neurons.net", "hopfield.net", "resistor_network.net", "feedforward.net"} <= names


# -- round trips ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_NETLISTS, ids=[p.name for p in EXAMPLE_NETLISTS])
def test_example_round_trip(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CircuitWarning)  # the examples are well-posed circuits
        circuit = read_netlist(path)
    assert circuit.name == path.stem
    text = format_netlist(circuit)
    again = parse_netlist(text, name=circuit.name)
    assert again == circuit
    assert format_netlist(again) == text
    assert text.startswith(f"# {path.stem}\n")
    # Same structure as the source file, element by element.
    assert again.free_nodes == circuit.free_nodes
    assert again.clamped_nodes == circuit.clamped_nodes
    assert again.outputs == circuit.outputs
    np.testing.assert_array_equal(again.targets, circuit.targets)
    np.testing.assert_array_equal(again.input_values, circuit.input_values)


@pytest.mark.parametrize("path", EXAMPLE_NETLISTS, ids=[p.name for p in EXAMPLE_NETLISTS])
def test_example_write_read_round_trip(path, tmp_path):
    circuit = read_netlist(path)
    out = tmp_path / path.name
    write_netlist(circuit, out)
    assert read_netlist(out) == circuit
    assert out.read_text(encoding="utf-8") == format_netlist(circuit)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind


PRECISE = [0.1 + 0.2, 1e-300, -3.141592653589793, 5e-324, 1 / 3, 2.0**-1074 * 3, 1.7976931348623157e308, -0.0]


def test_round_trip_keeps_full_float_precision():
    items = [Input("x", PRECISE[2]), FreeNode("a", C=PRECISE[1], g=PRECISE[0]), FreeNode("b", C=PRECISE[6], g=0.0)]
    items += [VCCS(f"W{k}", "a", "x", w=w, act="tanh") for k, w in enumerate(PRECISE)]
    items += [
        Resistor("R", "a", "b", G=PRECISE[3]),
        Coupling("K", "a", "b", w=PRECISE[4], act="sigmoid"),
        HalfCoupling("H", "b", "a", w=PRECISE[5], act="hardsigmoid"),
        Bias("B", "b", I=PRECISE[7]),
        Output("b", target=PRECISE[4]),
    ]
    circuit = Circuit(items, name="precise")
    text = format_netlist(circuit)
    again = parse_netlist(text, name="precise")
    assert again == circuit
    assert format_netlist(again) == text
    for k, w in enumerate(PRECISE):
        assert again.get(f"W{k}").params["w"] == w
    assert again.get("W0").params["w"] != 0.3  # 0.1 + 0.2 is not 0.3, and must stay so
    assert "w=0.30000000000000004" in text
    assert again.get("a").params["C"] == 1e-300
    assert again.get("x").value == -3.141592653589793
    assert np.signbit(again.get("B").params["I"])  # -0.0 keeps its sign
    assert again.targets[0] == 1 / 3


def test_equality_detects_a_changed_value():
    text = (EXAMPLES / "two_neurons.net").read_text(encoding="utf-8")
    circuit = parse_netlist(text)
    changed = parse_netlist(text.replace("w=0.8", "w=0.8000000000000002"))
    assert changed != circuit
    assert format_netlist(changed) != format_netlist(circuit)


def test_parse_accepts_comments_blank_lines_and_options():
    circuit = parse_netlist(
        """
        # leading comment

        input  x  value=0.5      # trailing comment
        node   h                 # defaults C=1 g=1
        vccs   W  h x w=2 act=tanh
        output h
        """,
        name="small",
    )
    assert circuit.name == "small"
    assert circuit.free_nodes == ["h"] and circuit.clamped_nodes == ["x"]
    assert circuit.get("h").params == {"C": 1.0, "g": 1.0}
    assert circuit.get("W") == VCCS("W", "h", "x", w=2.0, act="tanh")
    assert circuit.outputs == ["h"] and np.isnan(circuit.targets).all()


# -- errors -----------------------------------------------------------------------------------------------------------

HEADER = "node a\nnode b\n"  # lines 1 and 2; the line under test is line 3

BAD_NETLISTS = {
    "unknown node": (
        HEADER + "resistor R a bb G=1\n",
        r"<netlist>:3: resistor 'R': unknown node 'bb'.*declare it with `node bb` or `input bb`",
    ),
    "unknown node, did you mean": (
        "node hidden1\nnode out\nvccs W out hiden1 w=1\n",
        r"<netlist>:3: vccs 'W': unknown node 'hiden1'; did you mean 'hidden1'\?",
    ),
    "input then free node": (
        "input a\n\nnode a\n",
        r"<netlist>:3: node 'a' is declared both as input \(line 1\) and as free node",
    ),
    "free node then input": (
        HEADER + "input a value=1\n",
        r"<netlist>:3: node 'a' is declared both as free node \(line 1\) and as input",
    ),
    "node declared twice": (HEADER + "node b\n", r"<netlist>:3: node 'b' is declared twice \(first on line 2\)"),
    "C = 0": (HEADER + "node c C=0\n", r"<netlist>:3: node 'c': C must be > 0 \(capacitance to ground\), got 0\.0"),
    "C < 0": (HEADER + "node c C=-1e-3\n", r"<netlist>:3: node 'c': C must be > 0.*got -0\.001"),
    "negative leak": (HEADER + "node c g=-1\n", r"<netlist>:3: node 'c': g must be ≥ 0.*got -1\.0"),
    "w=nan": (HEADER + "vccs W a b w=nan\n", r"<netlist>:3: vccs 'W': w must be finite, got nan"),
    "w=inf": (HEADER + "vccs W a b w=inf\n", r"<netlist>:3: vccs 'W': w must be finite, got inf"),
    "g=-inf": (HEADER + "node c g=-inf\n", r"<netlist>:3: node 'c': g must be finite, got -inf"),
    "overflow": (HEADER + "resistor R a b G=1e400\n", r"<netlist>:3: resistor 'R': G must be finite, got 1e400"),
    "value=nan": (HEADER + "input x value=nan\n", r"<netlist>:3: input 'x': value must be finite"),
    "target=inf": (HEADER + "output a target=inf\n", r"<netlist>:3: output 'a': target must be finite"),
    "not a number": (HEADER + "vccs W a b w=abc\n", r"<netlist>:3: vccs 'W': w='abc' is not a number"),
    "unknown kind": (
        HEADER + "resistr R a b G=1\n",
        r"<netlist>:3: unknown element kind 'resistr'; did you mean 'resistor'\?; valid: .*input.*vccs",
    ),
    "act=tnah": (
        HEADER + "vccs W a b w=1 act=tnah\n",
        r"<netlist>:3: vccs 'W': unknown act 'tnah'; did you mean 'tanh'\?; valid: .*linear.*tanh",
    ),
    "unknown key": (
        HEADER + "vccs W a b w=1 gain=2\n",
        r"<netlist>:3: vccs 'W': unknown key 'gain'; valid keys for vccs: act, w",
    ),
    "unknown key, did you mean": (
        HEADER + "vccs W a b w=1 actt=tanh\n",
        r"<netlist>:3: vccs 'W': unknown key 'actt'; did you mean 'act'\?; valid keys for vccs: act, w",
    ),
    "unknown key on a node": (HEADER + "node c cap=2\n", r"<netlist>:3: node 'c': unknown key 'cap'; valid keys: C, g"),
    "too few nodes": (HEADER + "vccs W a w=1\n", r"<netlist>:3: vccs 'W': needs 2 node\(s\) \(out, in\), got 1"),
    "too many nodes": (HEADER + "bias B a b I=1\n", r"<netlist>:3: bias 'B': needs 1 node\(s\) \(node\), got 2"),
    "node with nodes": (HEADER + "node c a\n", r"<netlist>:3: node 'c': takes no nodes besides its name, got a"),
    "missing parameter": (HEADER + "resistor R a b\n", r"<netlist>:3: resistor 'R': missing required parameter G"),
    "empty value": (HEADER + "vccs W a b w=\n", r"<netlist>:3: vccs 'W': malformed `w=` \(expected key=value\)"),
    "empty key": (HEADER + "vccs W a b =1\n", r"<netlist>:3: vccs 'W': malformed `=1` \(expected key=value\)"),
    "key twice": (HEADER + "vccs W a b w=1 w=2\n", r"<netlist>:3: vccs 'W': key 'w' given twice"),
    "node after keys": (HEADER + "vccs W a w=1 b\n", r"<netlist>:3: vccs 'W': node 'b' after key=value pairs"),
    "missing name": (HEADER + "node\n", r"<netlist>:3: node: missing name \(expected `node NAME \.\.\.`\)"),
    "key instead of name": (HEADER + "resistor G=1\n", r"<netlist>:3: resistor: missing name"),
    "output on unknown node": (HEADER + "output c\n", r"<netlist>:3: output 'c': unknown node 'c'"),
    "output on an input": (
        HEADER + "input x\noutput x\n",
        r"output 'x': x is an input \(line 3\); outputs must be free nodes",
    ),
    "duplicate element names": (
        HEADER + "resistor R a b G=1\nresistor R b a G=2\n",
        r"duplicate name 'R' \(first used on line 3\)",
    ),
    "empty netlist": ("# nothing here\n\n", r"<netlist>: circuit 'circuit' has no free nodes; declare at least one"),
    "only inputs": ("input x\n", r"has no free nodes; declare at least one with `node NAME`"),
}


@pytest.mark.parametrize("text, match", list(BAD_NETLISTS.values()), ids=list(BAD_NETLISTS))
def test_bad_netlist_raises_a_clear_error(text, match):
    with pytest.raises(CircuitError, match=match):
        parse_netlist(text)


@pytest.mark.parametrize(
    "text, match",
    [
        (HEADER + "resistor R a b G=1\nresistor R b a G=2\n", r"<netlist>:4: .*duplicate name 'R'"),
        (HEADER + "input x\noutput x\n", r"<netlist>:4: output 'x': x is an input"),
    ],
    ids=["duplicate name", "output on input"],
)
def test_netlist_errors_found_by_the_circuit_name_the_line(text, match):
    with pytest.raises(CircuitError, match=match):
        parse_netlist(text)


def test_error_names_the_source_file(tmp_path):
    path = tmp_path / "bad.net"
    path.write_text("node a\nvccs W a b w=1\n", encoding="utf-8")
    with pytest.raises(CircuitError, match=rf"^{re.escape(str(path))}:2: vccs 'W': unknown node 'b'"):
        read_netlist(path)


def test_reading_a_missing_file_names_the_path(tmp_path):
    path = tmp_path / "missing" / "nowhere.net"
    with pytest.raises(FileNotFoundError, match=rf"netlist '{re.escape(str(path))}' does not exist"):
        read_netlist(path)


def test_floating_nodes_in_a_netlist_warn():
    with pytest.warns(CircuitWarning, match=r"'a'.*'b'"):
        parse_netlist("node a g=0\nnode b g=0\nresistor R a b G=1\n")


@pytest.mark.parametrize(
    "item",
    [
        Layer("h", 2),
        InputLayer("u", 2),
        Dense("D", "vccs", ["a"], ["a"], w=1.0),
        Sparse("S", "bias", [["a"]], I=1.0),
    ],
    ids=["Layer", "InputLayer", "Dense", "Sparse"],
)
def test_arrays_cannot_be_written_to_a_netlist(item, tmp_path):
    circuit = Circuit([FreeNode("a"), item])
    kind = type(item).__name__
    match = rf"{kind} '{item.name}' cannot be written to a netlist.*build arrays in Python"
    with pytest.raises(CircuitError, match=match):
        format_netlist(circuit)
    path = tmp_path / "arrays.net"
    with pytest.raises(CircuitError):
        write_netlist(circuit, path)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file


# -- atomic writes ----------------------------------------------------------------------------------------------------


def test_atomic_write_writes_text_and_bytes(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic_write(path, b"\x00\x01binary")
    assert path.read_bytes() == b"\x00\x01binary"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old contents", encoding="utf-8")
    with pytest.raises(RuntimeError, match="writer died"), atomic_open(path) as fh:
        fh.write("new contents, half writ")
        fh.flush()
        raise RuntimeError("writer died")
    assert path.read_text(encoding="utf-8") == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_atomic_write_failure_in_the_write_itself(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old contents", encoding="utf-8")
    with pytest.raises(TypeError):
        atomic_write(path, 12345)  # neither text nor bytes: the write fails midway
    assert path.read_text(encoding="utf-8") == "old contents"
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_atomic_write_failure_without_an_old_file(tmp_path):
    path = tmp_path / "new.txt"
    with pytest.raises(KeyboardInterrupt), atomic_open(path, "wb") as fh:
        fh.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_open_rejects_other_modes(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"), atomic_open(tmp_path / "x", "a"):
        pass
    assert list(tmp_path.iterdir()) == []
