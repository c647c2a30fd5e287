"""Settling figures: returned as Figures, saved on request, clear errors."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from circuits import VCCS, Circuit, FreeNode, read_netlist
from simulator import compile_circuit, settle
from simulator.plots import plot_phase_portrait, plot_residual, plot_settling, plot_voltages

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "circuits"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two():
    return compile_circuit(read_netlist(EXAMPLES / "two_neurons.net"))


@pytest.fixture(scope="module")
def three():
    return compile_circuit(read_netlist(EXAMPLES / "resistor_network.net"))


@pytest.fixture(scope="module")
def recorded(two):
    return {m: settle(two, method=m, record=True, max_steps=2000) for m in ("ode", "relax", "newton")}


@pytest.fixture(scope="module")
def unrecorded(two):
    return settle(two, method="newton")


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def _line_data(fig: Figure):
    return [line.get_ydata() for ax in fig.axes for line in ax.get_lines()]


# -- voltages --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ode", "relax", "newton"])
def test_plot_voltages(two, recorded, method, tmp_path):
    result = recorded[method]
    path = tmp_path / f"v_{method}.png"
    fig = plot_voltages(result, two.nodes, path=path)
    assert isinstance(fig, Figure)
    assert _is_png(path)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == two.nodes
    np.testing.assert_array_equal(lines[1].get_ydata(), result.trajectory.x[:, 0, 1])
    np.testing.assert_array_equal(lines[0].get_xdata(), result.trajectory.t)
    assert "V" in ax.get_ylabel()
    assert ax.get_xlabel() == ("Newton iteration" if method == "newton" else "time (s)")


def test_plot_voltages_selects_nodes_and_draws_into_given_axes(two, recorded):
    fig = Figure()
    ax = fig.add_subplot()
    out = plot_voltages(recorded["ode"], two.nodes, nodes=["h2"], ax=ax)
    assert out is fig
    assert [ln.get_label() for ln in ax.get_lines()] == ["h2"]
    out = plot_voltages(recorded["ode"], nodes=[0])
    assert [ln.get_label() for ln in out.axes[0].get_lines()] == ["x[0]"]


def test_plot_voltages_bad_arguments(two, recorded):
    with pytest.raises(ValueError, match="unknown node 'h9'"):
        plot_voltages(recorded["ode"], two.nodes, nodes=["h9"])
    with pytest.raises(ValueError, match="names has 3 entries but the result has 2 free nodes"):
        plot_voltages(recorded["ode"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="sample must be an integer in"):
        plot_voltages(recorded["ode"], two.nodes, sample=1)


# -- residual -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ode", "relax", "newton"])
def test_plot_residual(recorded, method, tmp_path):
    result = recorded[method]
    path = tmp_path / f"r_{method}.png"
    fig = plot_residual(result, path=path)
    assert isinstance(fig, Figure)
    assert _is_png(path)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    curve, tol_line = ax.get_lines()
    res = result.trajectory.residual[:, 0]
    np.testing.assert_array_equal(curve.get_ydata(), np.where(res > 0, res, np.nan))
    np.testing.assert_array_equal(curve.get_xdata(), result.trajectory.t)
    assert tol_line.get_linestyle() == "--"
    np.testing.assert_array_equal(tol_line.get_ydata(), [result.tol, result.tol])


def test_plot_residual_masks_exact_zeros(two):
    x_star = settle(two, method="newton", tol=1e-14).state
    result = settle(two, x_star, method="ode", record=True)  # already settled: one point
    fig = plot_residual(result)
    assert isinstance(fig, Figure)
    ydata = fig.axes[0].get_lines()[0].get_ydata()
    assert np.all(np.isnan(ydata) | (ydata > 0))


# -- settling (two panels) ------------------------------------------------------------------------
def test_plot_settling(two, recorded, tmp_path):
    path = tmp_path / "settling.png"
    fig = plot_settling(recorded["ode"], two.nodes, path)
    assert isinstance(fig, Figure)
    assert _is_png(path)
    top, bottom = fig.axes
    assert [ln.get_label() for ln in top.get_lines()] == two.nodes
    assert bottom.get_yscale() == "log"
    assert "converged" in fig.get_suptitle()


def test_plot_settling_of_batched_result(two, tmp_path):
    result = settle(two, method="relax", inputs=np.array([[0.2], [-0.5]]), record=True, max_steps=2000)
    fig = plot_settling(result, two.nodes, sample=1)
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(), result.trajectory.x[:, 1, 0])


def test_pdf_and_svg(two, recorded, tmp_path):
    for ext, magic in ((".pdf", b"%PDF"), (".svg", b"<?xml")):
        path = tmp_path / f"s{ext}"
        plot_residual(recorded["newton"], path=path)
        assert path.read_bytes()[: len(magic)] == magic


# -- phase portrait ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ode", "relax", "newton"])
def test_plot_phase_portrait(two, recorded, method, tmp_path):
    path = tmp_path / f"pp_{method}.png" if method == "ode" else None  # streamplots are slow to save
    fig = plot_phase_portrait(two, recorded[method], path=path)
    assert isinstance(fig, Figure)
    assert path is None or _is_png(path)
    (ax,) = fig.axes
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "trajectory" in labels and "start" in labels
    end = next(ln for ln in ax.get_lines() if ln.get_label().startswith("end"))
    np.testing.assert_allclose([end.get_xdata()[0], end.get_ydata()[0]], recorded[method].final[0])
    assert end.get_label() == "end (converged)"
    # the trajectory fits in the default limits
    x = recorded[method].trajectory.x[:, 0]
    lo, hi = ax.get_xlim()
    assert lo < x[:, 0].min() and x[:, 0].max() < hi


def test_phase_portrait_field_without_result(two, tmp_path):
    path = tmp_path / "field.png"
    fig = plot_phase_portrait(two, inputs=[0.3], xlim=(-1, 1), ylim=(-0.5, 1.5), density=12, kind="quiver", path=path)
    assert _is_png(path)
    (ax,) = fig.axes
    assert ax.get_xlim() == (-1, 1) and ax.get_ylim() == (-0.5, 1.5)
    (quiver,) = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    assert quiver.U.size == 12 * 12
    # the arrows are C⁻¹ f evaluated on the grid, with these inputs
    gx, gy = np.meshgrid(np.linspace(-1, 1, 12), np.linspace(-0.5, 1.5, 12))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    expected = two.f(grid, [0.3]) / two.capacitance
    np.testing.assert_allclose(quiver.U.ravel(), expected[:, 0])
    np.testing.assert_allclose(quiver.V.ravel(), expected[:, 1])


def test_phase_portrait_of_limit_cycle(tmp_path):
    system = compile_circuit(
        Circuit(
            [
                FreeNode("a"),
                FreeNode("b"),
                VCCS("Saa", "a", "a", w=2, act="tanh"),
                VCCS("Sbb", "b", "b", w=2, act="tanh"),
                VCCS("Wab", "a", "b", w=-4, act="tanh"),
                VCCS("Wba", "b", "a", w=4, act="tanh"),
            ]
        )
    )
    result = settle(system, np.array([0.1, 0.0]), method="relax", record=True, max_steps=2000)
    assert result.reason[0] == "oscillating"
    fig = plot_phase_portrait(system, result, kind="quiver", path=tmp_path / "cycle.png")
    assert _is_png(tmp_path / "cycle.png")
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert "end (oscillating)" in labels
    assert "$f_{a}$ = 0" in labels and "$f_{b}$ = 0" in labels


def test_phase_portrait_accepts_bound_system(two, recorded):
    fig = plot_phase_portrait(two.bind([0.5]), recorded["newton"], density=8)
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="inputs= cannot be given with a bound system"):
        plot_phase_portrait(two.bind(), inputs=[0.1])


def test_phase_portrait_needs_two_nodes(three):
    result = settle(three, method="newton", record=True)
    with pytest.raises(ValueError, match="exactly 2 free nodes; this one has 3"):
        plot_phase_portrait(three)
    with pytest.raises(ValueError, match="exactly 2 free nodes"):
        plot_phase_portrait(three, result)


def test_phase_portrait_bad_arguments(two, recorded):
    with pytest.raises(ValueError, match="density must be an integer"):
        plot_phase_portrait(two, density=1)
    with pytest.raises(ValueError, match="kind must be 'stream' or 'quiver'"):
        plot_phase_portrait(two, kind="arrows")
    with pytest.raises(ValueError, match="xlim must be two finite numbers"):
        plot_phase_portrait(two, xlim=(1, -1))
    with pytest.raises(ValueError, match=r"inputs must have shape"):
        plot_phase_portrait(two, inputs=[0.1, 0.2])


# -- results without a trajectory ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda r, s: plot_voltages(r, s.nodes),
        lambda r, s: plot_residual(r),
        lambda r, s: plot_settling(r, s.nodes),
        lambda r, s: plot_phase_portrait(s, r),
    ],
    ids=["voltages", "residual", "settling", "phase_portrait"],
)
def test_no_trajectory(two, unrecorded, call, tmp_path):
    with pytest.raises(ValueError, match="no trajectory; settle with record=True"):
        call(unrecorded, two)


def test_not_a_result():
    with pytest.raises(TypeError, match="expected a SettleResult"):
        plot_voltages(np.zeros((3, 2)))
