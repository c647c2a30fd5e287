"""SPICE export: ngspice, given the deck aeplab writes, computes what aeplab computes.

Stationary states (``.op``) agree with aeplab's Newton solution (tol 1e-12 A) to 1e-6 on the
example circuits, a random non-reciprocal network and circuits using every built-in law and a
user-defined element; a transient agrees with aeplab's ``ode`` trajectory; the nudged and AEP
learning-phase decks settle to aeplab's ``x_β``.  Tests that run ngspice are skipped, with the
reason shown, only when ngspice cannot be found.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from circuits import (
    VCCS,
    Bias,
    Circuit,
    CircuitError,
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
    read_netlist,
)
from circuits.element import NodeVoltage
from circuits.spice import (
    SpiceExportError,
    Transient,
    export_spice,
    spice_expression,
    spice_node_names,
    to_spice,
)
from learning.cli_spice import cmd_export_spice, register
from learning.phases import AEPPhase, NudgedPhase
from learning.spice_phases import aep_sources, export_phase, phase_deck
from simulator import compile_circuit, settle
from simulator.ngspice import (
    NgspiceConvergenceError,
    NgspiceError,
    NgspiceNotFound,
    find_ngspice,
    parse_raw,
    run_ngspice,
    spice_operating_point,
    spice_transient,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "circuits"
NGSPICE = shutil.which("ngspice")
needs_ngspice = pytest.mark.skipif(
    NGSPICE is None, reason="ngspice not found on PATH (install it with `apt-get install ngspice`)"
)


def _close(a, b, tol=1e-6):
    """Relative error ≤ tol, or absolute error ≤ tol near zero."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    err = np.abs(a - b) / np.maximum(1.0, np.abs(b))
    assert np.all(err <= tol), f"max error {err.max():.3g} > {tol:g}: {a} vs {b}"


def _newton(circuit, x0=None):
    res = settle(compile_circuit(circuit), x0, method="newton", tol=1e-12)
    assert res.all_converged, res.message
    return res.final[0]


# -- circuits -------------------------------------------------------------------------------


class _Diode(Element):
    """A user-defined element type: an exponential diode a → b (reads only its terminals)."""

    kind = "test_spice_diode"
    terminals = ("a", "b")
    parameters = (Parameter("Is", "A", "saturation current", 1e-3), Parameter("Vt", "V", "thermal voltage", 0.5))

    def currents(v, p, o):
        i = p["Is"] * (sp.exp((v["a"] - v["b"]) / p["Vt"]) - 1)
        return {"a": -i, "b": i}


class _Pump(Element):
    """A user-defined element pushing ``I (1 + v²) > 0`` into its node: no stationary state without a leak."""

    kind = "test_spice_pump"
    terminals = ("node",)
    parameters = (Parameter("I", "A", "pump current", 1.0),)

    def currents(v, p, o):
        return {"node": p["I"] * (1 + v["node"] ** 2)}


def random_network(n: int = 10, n_in: int = 3, seed: int = 0, gain: float = 0.8) -> Circuit:
    """A random non-reciprocal tanh network (layers, dense VCCS blocks), stable by construction.

    ``C ẋ = −x + W tanh(x) + U tanh(u) + b`` with ``‖W‖₂ = gain < 1`` (g = 1): a contraction,
    so the stationary state is unique and stable.
    """
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, n))
    W *= gain / np.linalg.norm(W, 2)
    U = rng.normal(size=(n, n_in))
    C = rng.uniform(0.5, 2.0, n)
    x, h = InputLayer("x", n_in, value=rng.uniform(-1, 1, n_in)), Layer("h", n, C=C, g=1.0)
    return Circuit(
        [
            x,
            h,
            Dense("W", "vccs", h, h, w=W, act="tanh"),
            Dense("U", "vccs", h, x, w=U, act="tanh"),
            *[Bias(f"b{i}", f"h[{i}]", I=float(b)) for i, b in enumerate(rng.normal(scale=0.2, size=n))],
            Output("h", target=rng.uniform(-0.5, 0.5, n)),
        ],
        name=f"random{n}",
    )


def every_law() -> Circuit:
    """Every built-in law, several transfer functions (Piecewise included), and a user element."""
    return Circuit(
        [
            Input("u", 0.7),
            Input("Vref", -0.2),
            FreeNode("A", C=1, g=1),
            FreeNode("b.1", C=2, g=0.5),
            FreeNode("c[0]", C=1, g=0.0),
            FreeNode("d", C=0.5, g=2),
            VCCS("Wau", "A", "u", w=0.9, act="sigmoid"),
            VCCS("Wba", "b.1", "A", w=-0.7, act="hardsigmoid"),
            HalfCoupling("Hcb", "c[0]", "b.1", w=0.4, act="tanh"),
            Resistor("Rc", "c[0]", "Vref", G=0.8),
            Resistor("R0", "A", "d", G=0.0),
            Bias("Bd", "d", I=0.3, act="tanh"),
            _Diode("D1", "d", "c[0]", Is=2e-3, Vt=0.4),
            VCCS("Wdd", "d", "d", w=0.5, act="linear"),
            Output("d", target=0.1),
        ],
        name="every_law",
    )


# -- node names -----------------------------------------------------------------------------


def test_node_names_round_trip():
    names = ["h1", "H2", "h[3]", "h_3_", "out.0", "0", "gnd", "GND", "a-b", "x y"[:1], "h_3__2", "Ab", "ab"]
    m = spice_node_names(names)
    assert list(m.to_spice) == names
    spice = list(m.to_spice.values())
    assert len(set(spice)) == len(spice)
    for a, s in m.to_spice.items():
        assert re.fullmatch(r"[a-z0-9_]+", s) and s not in ("0", "gnd")
        assert m.aeplab(s) == a and m.aeplab(s.upper()) == a and m.spice(a) == s
    # valid names survive (lower-cased); others are sanitised deterministically
    assert m.spice("h1") == "h1" and m.spice("H2") == "h2" and m.spice("h_3_") == "h_3_"
    assert m.spice("h[3]") == "h_3__3"  # h_3_ and h_3__2 are taken by nodes that are valid as they are
    assert m.spice("out.0") == "out_0" and m.spice("0") == "n0" and m.spice("gnd") == "ngnd"
    assert m.spice("GND") == "ngnd_2" and m.spice("a-b") == "a_b"
    assert m.spice("Ab") == "ab" and m.spice("ab") == "ab_2"
    assert spice_node_names(names) == m  # deterministic
    assert spice_node_names(["h[3]"]).spice("h[3]") == "h_3_"
    with pytest.raises(SpiceExportError, match="duplicate"):
        spice_node_names(["a", "a"])
    with pytest.raises(KeyError):
        m.aeplab("nope")


def test_deck_structure_and_sign_convention():
    deck = to_spice(every_law(), tran=Transient(0.1, 1.0, {"A": 0.5}))
    text = deck.text
    assert text.splitlines()[0] == "aeplab circuit every_law"
    assert "*   b.1 -> b_1" in text and "*   c[0] -> c_0_" in text
    assert re.search(r"^Vu u 0 DC 0\.7$", text, re.M)
    assert re.search(r"^Cb_1 b_1 0 2\.0$", text, re.M)
    assert re.search(r"^Rg_b_1 b_1 0 2\.0$", text, re.M)  # R = 1/g
    assert not re.search(r"^Rg_c_0_", text, re.M)  # g = 0: no leak
    assert re.search(r"^Rrc c_0_ vref 1\.25$", text, re.M)  # R = 1/G
    assert not re.search(r"^Rr0 ", text, re.M)  # G = 0: omitted
    # behavioural sources push the current INTO the node: 'B 0 node I=...'
    assert "\nBwau_a 0 a I=0.9/(1 + exp(-V(u)))\n" in text
    assert "\nBwba_b_1 0 b_1 I=(-0.7)*(((V(a) < 0)) ? (0) : (((V(a) < 1)) ? (V(a)) : (1)))\n" in text
    assert "\nBhcb_c_0 0 c_0_ I=0.4*(1 - (tanh(V(c_0_))*tanh(V(c_0_))))*tanh(V(b_1))\n" in text
    assert "\nBd1_d 0 d I=-0.002*(exp((V(d) - V(c_0_))/0.4) - 1)\n" in text  # user-defined element
    assert "\nBd1_c_0 0 c_0_ I=0.002*(exp((V(d) - V(c_0_))/0.4) - 1)\n" in text
    assert "\nBbd_d 0 d I=0.3*(1 - (tanh(V(d))*tanh(V(d))))\n" in text
    assert ".ic V(a)=0.5 V(b_1)=0.0" in text and re.search(r"^\.tran 0\.1 1\.0 0 0\.1 uic$", text, re.M)
    assert "\n.print tran V(a) V(b_1) V(c_0_) V(d)\n" in text
    assert re.search(r"^\.op$", text, re.M) and text.rstrip().endswith(".end")
    assert deck.analyses == ("op", "tran") and deck.nodes.spice("c[0]") == "c_0_"


def test_printer():
    m = spice_node_names(["a", "b"])
    a, b = NodeVoltage("a"), NodeVoltage("b")
    assert spice_expression(a**2 / b**3, m) == "(V(a)*V(a))/(V(b)*V(b)*V(b))"
    assert spice_expression(1 / (a + 1) ** 2, m) == "(1/((V(a) + 1)*(V(a) + 1)))"
    assert spice_expression(1 / sp.sqrt(a + b), m) == "(1/sqrt(V(a) + V(b)))"
    assert spice_expression(sp.exp(2 * a) / a + sp.Heaviside(b), m) == "u(V(b)) + exp(2*V(a))/V(a)"
    assert spice_expression(sp.sqrt(a), m) == "sqrt(V(a))"
    assert spice_expression(a ** sp.Rational(3, 2), m) == "pow(V(a), 1.5)"
    assert spice_expression(sp.Max(a, b, 0), m).count("max(") == 2
    assert spice_expression(sp.log(a) + sp.Abs(b) + sp.sign(a), m) == "ln(V(a)) + abs(V(b)) + sgn(V(a))"
    assert spice_expression(sp.Rational(1, 3) * a, m) == "V(a)/3"
    assert spice_expression(sp.Rational(1, 3) + sp.pi * a, m) == "V(a)*3.141592653589793 + 0.3333333333333333"
    pw = sp.Piecewise((0, a < 0), (a, sp.And(a > 1, b < 1)), (1, True))
    assert spice_expression(pw, m) == "(((V(a) < 0)) ? (0) : ((((V(a) > 1) && (V(b) < 1))) ? (V(a)) : (1)))"
    assert spice_expression(sp.Piecewise((a, sp.Or(a < 0, sp.Not(b > 2)))), m) == (
        "((((V(b) <= 2) || (V(a) < 0))) ? (V(a)) : 0)"
    )
    with pytest.raises(SpiceExportError, match="erf"):
        spice_expression(sp.erf(a), m)
    with pytest.raises(SpiceExportError, match="has no value"):
        spice_expression(sp.Symbol("w") * a, m)
    with pytest.raises(SpiceExportError, match="not in this circuit"):
        spice_expression(NodeVoltage("zz"), m)


def test_export_writes_atomically(tmp_path):
    c = read_netlist(EXAMPLES / "two_neurons.net")
    path = tmp_path / "two.cir"
    text = export_spice(c, path)
    assert path.read_text() == text
    assert not [p for p in tmp_path.iterdir() if p.name != "two.cir"]  # no temporary file left


def test_bad_arguments():
    c = read_netlist(EXAMPLES / "feedforward.net")
    with pytest.raises(ValueError, match="unknown phase 'learn'; valid: free, nudged, aep"):
        phase_deck(c, "learn")
    for beta in (0, -0.1, float("nan"), "x"):
        with pytest.raises(ValueError, match="beta must be a positive number"):
            phase_deck(c, "nudged", beta=beta)
    with pytest.raises(ValueError, match="unknown cost"):
        phase_deck(c, "nudged", beta=0.1, cost="hinge")
    with pytest.raises(ValueError, match="2 entries"):
        phase_deck(c, "nudged", beta=0.1, target=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="x0 must be 5 finite voltages"):
        phase_deck(c, "aep", beta=0.1, x0=[0.0, 1.0])
    nt = read_netlist(EXAMPLES / "two_neurons.net")
    with pytest.raises(ValueError, match="no outputs"):
        phase_deck(Circuit([FreeNode("a")]), "nudged", beta=0.1)
    with pytest.raises(SpiceExportError, match="step and stop must be positive"):
        to_spice(nt, tran=Transient(-1, 1))
    with pytest.raises(SpiceExportError, match="nothing to simulate"):
        to_spice(nt, op=False)
    with pytest.raises(SpiceExportError, match="expected shape \\(2,\\)"):
        to_spice(nt, nodeset=[1.0])
    with pytest.raises(SpiceExportError, match="not an input"):
        to_spice(nt, inputs={"h1": 1.0})
    assert isinstance(SpiceExportError("x"), CircuitError)


def test_missing_ngspice(monkeypatch, tmp_path):
    deck = to_spice(read_netlist(EXAMPLES / "two_neurons.net"))
    with pytest.raises(NgspiceNotFound, match="apt-get install ngspice"):
        run_ngspice(deck, executable="ngspice-not-installed-here")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("AEPLAB_NGSPICE", raising=False)
    with pytest.raises(NgspiceNotFound, match="ngspice was not found"):
        find_ngspice()
    with pytest.raises(NgspiceNotFound):
        spice_operating_point(read_netlist(EXAMPLES / "two_neurons.net"))


def test_parse_ascii_raw():
    raw = (
        b"Title: t\nDate: x\nPlotname: Operating Point\nFlags: real\nNo. Variables: 2\nNo. Points: 1\n"
        b"Variables:\n\t0\tv(a)\tvoltage\n\t1\ti(v1)\tcurrent\nValues:\n0\t\t1.5e-01\n\t-2.0e+00\n"
    )
    (plot,) = parse_raw(raw)
    assert plot.name == "Operating Point" and plot.variables == ["v(a)", "i(v1)"]
    np.testing.assert_array_equal(plot.data, [[0.15, -2.0]])


# -- ngspice against aeplab: stationary states ----------------------------------------------


@needs_ngspice
@pytest.mark.parametrize("name", ["resistor_network", "hopfield", "feedforward", "two_neurons"])
def test_op_matches_aeplab_on_examples(name):
    circuit = read_netlist(EXAMPLES / f"{name}.net")
    _close(spice_operating_point(circuit), _newton(circuit))


@needs_ngspice
def test_op_matches_aeplab_on_random_nonreciprocal_network():
    circuit = random_network(n=10, seed=3)
    assert not circuit.is_conservative
    deck = to_spice(circuit)
    assert deck.nodes.spice("h[3]") == "h_3_"
    res = run_ngspice(deck)
    assert set(res.op) == set(circuit.free_nodes) | set(circuit.clamped_nodes)  # keyed by aeplab names
    _close(res.op_state(), _newton(circuit))
    np.testing.assert_allclose([res.op[n] for n in circuit.clamped_nodes], circuit.input_values, rtol=1e-12)


@needs_ngspice
def test_op_matches_aeplab_on_every_law_and_user_element():
    circuit = every_law()
    _close(spice_operating_point(circuit), _newton(circuit))
    # overriding the inputs
    u = np.array([-0.4, 0.3])
    system = compile_circuit(circuit)
    ref = settle(system, inputs=u, method="newton", tol=1e-12)
    _close(spice_operating_point(circuit, inputs=u), ref.final[0])


# -- ngspice against aeplab: transient ------------------------------------------------------


@needs_ngspice
def test_transient_matches_aeplab_ode_trajectory():
    circuit = random_network(n=8, seed=1)
    system = compile_circuit(circuit)
    x0 = np.random.default_rng(7).uniform(-1.5, 1.5, system.n)
    res = settle(system, x0, method="ode", tol=1e-9, record=True)
    assert res.all_converged
    t_ref, x_ref = res.trajectory.t, res.trajectory.x[:, 0, :]
    stop = float(t_ref[-1])
    t, x = spice_transient(circuit, x0, step=stop / 2000, stop=stop)
    assert t[0] == 0 and t[-1] == pytest.approx(stop) and np.allclose(x[0], x0)
    mine = np.stack([np.interp(t_ref, t, x[:, k]) for k in range(system.n)], axis=1)
    signal_range = x_ref.max() - x_ref.min()
    assert np.max(np.abs(mine - x_ref)) <= 1e-3 * signal_range
    _close(x[-1], _newton(circuit), tol=1e-6)  # and it ends at the stationary state


# -- learning phases ------------------------------------------------------------------------


def _phase_reference(circuit, phase, beta, cost="squared_error"):
    system = compile_circuit(circuit, cost=cost)
    bound = system.bind()
    x0 = settle(system, method="newton", tol=1e-12).final
    y = system.targets[None, :]
    dyn = AEPPhase(bound, y, beta, x0) if phase == "aep" else NudgedPhase(bound, y, beta)
    ref = settle(dyn, x0, method="newton", tol=1e-12)
    assert ref.all_converged, ref.message
    return x0[0], ref.final[0], bound


@needs_ngspice
@pytest.mark.parametrize("name", ["feedforward", "two_neurons", "random"])
def test_aep_phase_deck_settles_to_aeplab_x_beta(name):
    circuit = random_network(n=8, seed=5) if name == "random" else read_netlist(EXAMPLES / f"{name}.net")
    beta = 0.5
    x0, x_beta, _ = _phase_reference(circuit, "aep", beta)
    assert np.max(np.abs(x_beta - x0)) > 1e-2  # the phase moves the state: the test means something
    deck = phase_deck(circuit, "aep", beta=beta)  # x0 settled by aeplab
    _close(run_ngspice(deck).op_state(), x_beta)
    _close(deck.meta["x0"], x0)


@needs_ngspice
@pytest.mark.parametrize("cost", ["squared_error", "cross_entropy"])
def test_nudged_phase_deck_settles_to_aeplab(cost):
    circuit = random_network(n=8, seed=2)
    if cost == "cross_entropy":
        items = [i for i in circuit.items if not isinstance(i, Output)]
        circuit = Circuit([*items, Output("h", target=np.eye(8)[2])], name="random_ce")
    x0, x_beta, _ = _phase_reference(circuit, "nudged", 0.3, cost=cost)
    assert np.max(np.abs(x_beta - x0)) > 1e-3
    text = export_phase(circuit, "nudged", beta=0.3, x0=x0, cost=cost)
    deck = phase_deck(circuit, "nudged", beta=0.3, x0=x0, cost=cost)
    assert text == deck.text
    _close(run_ngspice(deck).op_state(), x_beta)


def test_aep_sources_match_aeplab_correction():
    """The deck's AEP currents, evaluated at a state x, equal AEPPhase.correction(x)."""
    circuit = random_network(n=8, seed=4)
    x0, _, bound = _phase_reference(circuit, "aep", 0.1)
    phase = AEPPhase(bound, bound.system.targets[None, :], 0.1, x0[None, :])
    x = x0 + np.random.default_rng(0).normal(scale=0.3, size=len(x0))
    total = np.zeros(len(x0))
    subs = {NodeVoltage(n): v for n, v in zip(circuit.free_nodes, x)}
    for src in aep_sources(circuit, x0):
        total[circuit.node_index[src.node]] += float(src.current.xreplace(subs))
        # locality: each correction flows into, and reads, only its own element's terminals
        i, j = map(int, re.fullmatch(r"aep_W\[(\d+),(\d+)\]_h\[\d+\]", src.label).groups())
        terminals = {f"h[{i}]", f"h[{j}]"}
        assert src.node in terminals and {v.node for v in src.current.free_symbols} <= terminals
    np.testing.assert_allclose(total, phase.correction(x[None, :])[0], rtol=1e-10, atol=1e-12)
    assert not aep_sources(read_netlist(EXAMPLES / "hopfield.net"), np.zeros(4))  # conservative: none


# -- errors from ngspice --------------------------------------------------------------------


@needs_ngspice
def test_ngspice_nonconvergence_is_reported():
    circuit = Circuit([FreeNode("a", C=1, g=0.0), _Pump("P", "a", I=1.0)], name="pump")
    with pytest.raises(NgspiceConvergenceError, match="did not converge") as info:
        spice_operating_point(circuit, options={"itl1": 50})
    assert info.value.log


@needs_ngspice
def test_ngspice_failure_shows_its_message():
    bad = "bad deck\nV1 a 0 DC 1\nB1 0 b I=nosuchfunction(V(a))\nR1 b 0 1\n.op\n.end\n"
    with pytest.raises(NgspiceError) as info:
        run_ngspice(bad)
    assert "no such function 'nosuchfunction'" in str(info.value)  # ngspice's own words
    assert not isinstance(info.value, NgspiceConvergenceError)


# -- command line ---------------------------------------------------------------------------


def _parser():
    parser = argparse.ArgumentParser(prog="aeplab")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    return parser


def test_cli_prints_deck(capsys):
    args = _parser().parse_args(["export-spice", str(EXAMPLES / "hopfield.net")])
    assert args.func is cmd_export_spice
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("aeplab circuit hopfield, free phase") and ".op" in out


def test_cli_writes_file_and_json(tmp_path, capsys):
    path = tmp_path / "ff_aep.cir"
    args = _parser().parse_args(
        [
            "export-spice",
            str(EXAMPLES / "feedforward.net"),
            "-o",
            str(path),
            "--phase",
            "aep",
            "--beta",
            "0.2",
            "--tran",
            "5",
            "--json",
        ]
    )
    assert cmd_export_spice(args) == 0
    out = json.loads(capsys.readouterr().out)
    text = path.read_text()
    assert out["file"] == str(path) and out["phase"] == "aep" and out["beta"] == 0.2
    assert out["analyses"] == ["op", "tran"] and out["nodes"]["h1"] == "h1"
    assert "Baep_w2_11_o1" in text and "Bnudge_o1" in text and ".tran 0.005 5.0 0 0.005 uic" in text


@needs_ngspice
def test_cli_run(capsys):
    args = _parser().parse_args(
        ["export-spice", str(EXAMPLES / "two_neurons.net"), "--phase", "nudged", "--beta", "0.5", "--run", "--json"]
    )
    assert cmd_export_spice(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ngspice"]["max_abs_diff"] < 1e-6 and out["ngspice"]["aeplab_converged"]


def test_cli_bad_input(capsys):
    parser = _parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["export-spice", "x.net", "--beta", "0"])
    assert "must be a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["export-spice", "x.net", "--phase", "learn"])
    ns = argparse.Namespace(netlist=str(EXAMPLES / "two_neurons.net"), phase="learn", beta=0.1)
    with pytest.raises(ValueError, match="unknown phase"):
        cmd_export_spice(ns)
    ns = argparse.Namespace(netlist=str(EXAMPLES / "two_neurons.net"), phase="aep", beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        cmd_export_spice(ns)
    with pytest.raises(FileNotFoundError):
        cmd_export_spice(argparse.Namespace(netlist="no/such.net", phase="free", beta=0.1))
