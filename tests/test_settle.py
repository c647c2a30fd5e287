"""Settling: the three methods agree with each other and with an independent integration,
batches and warm starts work, and circuits that do not settle are reported as such."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import sympy as sp

from circuits import VCCS, Bias, Circuit, Element, FreeNode, Parameter, read_netlist
from simulator import METHODS, compile_circuit, derive, settle
from simulator.settle import ODE_METHODS

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "circuits").glob("*.net"))


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.stem)
def example(request):
    circuit = read_netlist(request.param)
    return circuit, compile_circuit(circuit)


@pytest.fixture(scope="module")
def two_neurons():
    return compile_circuit(read_netlist(next(p for p in EXAMPLES if p.stem == "two_neurons")))


@pytest.fixture(scope="module")
def settled(example):
    """Every method on every example, from zero, tol 1e-12 (computed once)."""
    circuit, system = example
    return {m: settle(system, method=m, tol=1e-12) for m in METHODS}


def _limit_cycle():
    """a, b with C = g = 1, self-excitation 2·tanh and a ±4·tanh rotation: a stable limit cycle
    around an unstable focus at the origin (eigenvalues of J there: 1 ± 4i)."""
    return compile_circuit(
        Circuit(
            [
                FreeNode("a", C=1, g=1),
                FreeNode("b", C=1, g=1),
                VCCS("Saa", "a", "a", w=2, act="tanh"),
                VCCS("Sbb", "b", "b", w=2, act="tanh"),
                VCCS("Wab", "a", "b", w=-4, act="tanh"),
                VCCS("Wba", "b", "a", w=4, act="tanh"),
            ],
            name="limit_cycle",
        )
    )


def _diverging():
    """One node with leak g = 1 and linear positive feedback w = 2: dv/dt = v."""
    return compile_circuit(Circuit([FreeNode("a", C=1, g=1), VCCS("F", "a", "a", w=2)], name="diverging"))


# -- stable circuits -----------------------------------------------------------------------
def test_all_methods_converge(example, settled):
    circuit, system = example
    for method, result in settled.items():
        assert result.all_converged, result.message
        assert result.method == method
        assert result.state.shape == (1, system.n)
        assert np.all(result.residual < 1e-12)
        np.testing.assert_array_equal(result.state, result.final)
        assert list(result.reason) == ["converged"]
        # the residual reported is the residual of the state returned
        np.testing.assert_allclose(np.max(np.abs(system.f(result.state))), result.residual[0], rtol=1e-9, atol=1e-15)


def test_methods_agree(example, settled):
    ref = settled["newton"].state
    for method in ("ode", "relax"):
        np.testing.assert_allclose(settled[method].state, ref, rtol=0, atol=1e-8, err_msg=method)


def test_newton_reports_stable_eigenvalues(example, settled):
    result = settled["newton"]
    assert result.max_real_eigenvalue is not None
    assert np.all(result.max_real_eigenvalue < 0)
    assert result.time is None
    assert settled["ode"].time > 0 and settled["relax"].time > 0


def _reference_integration(circuit, t_end):
    """Radau on the sympy equations (not the compiled kernels), from zero."""
    eq = derive(circuit)
    rate = sp.Matrix([eq.numeric(eq.rhs[n]) / eq.values[eq.capacitance[n]] for n in eq.nodes])
    F = sp.lambdify([eq.states], list(rate), modules="numpy")
    J = sp.lambdify([eq.states], rate.jacobian(eq.states), modules="numpy")
    sol = scipy.integrate.solve_ivp(
        lambda t, y: np.asarray(F(y), dtype=float),
        (0.0, t_end),
        np.zeros(len(eq.nodes)),
        method="Radau",
        rtol=1e-12,
        atol=1e-14,
        jac=lambda t, y: np.asarray(J(y), dtype=float),
    )
    assert sol.success, sol.message
    return sol.y[:, -1]


def test_methods_agree_with_independent_integration(example, settled):
    circuit, system = example
    state = settled["newton"].state
    # slowest decay rate at the stationary state sets how long to integrate: e^-60
    rates = np.linalg.eigvals(system.jacobian(state)[0] / system.capacitance[:, None]).real
    assert np.all(rates < 0)
    reference = _reference_integration(circuit, 60.0 / np.min(np.abs(rates)))
    for method, result in settled.items():
        np.testing.assert_allclose(result.state[0], reference, rtol=0, atol=1e-8, err_msg=method)


@pytest.mark.parametrize("method", METHODS)
def test_batched_inputs(example, method):
    circuit, system = example
    rng = np.random.default_rng(0)
    u = system.input_values + 0.3 * rng.standard_normal((3, system.n_inputs))
    batch = settle(system, method=method, tol=1e-11, inputs=u)
    assert batch.state.shape == (3, system.n)
    assert batch.all_converged, batch.message
    for b in range(3):
        single = settle(system, method="newton", tol=1e-12, inputs=u[b])
        np.testing.assert_allclose(batch.state[b], single.state[0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(system.f(batch.state, u), 0, atol=1e-11)
    # different inputs give different states: the batch is not one sample repeated
    assert np.max(np.abs(batch.state[0] - batch.state[1])) > 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_batched_start_states(two_neurons, method):
    x0 = np.array([[0.0, 0.0], [1.0, -1.0], [-2.0, 2.0]])
    result = settle(two_neurons, x0, method=method, tol=1e-11)
    assert result.all_converged, result.message
    np.testing.assert_allclose(result.state, np.repeat(result.state[:1], 3, axis=0), rtol=0, atol=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_converges_immediately(example, settled, method):
    circuit, system = example
    x_star = settled["newton"].state
    result = settle(system, x_star, method=method, tol=1e-11)
    assert result.all_converged, result.message
    assert result.steps == 0
    np.testing.assert_array_equal(result.state, x_star)


def test_one_dimensional_start_state(two_neurons):
    result = settle(two_neurons, np.array([0.1, 0.2]), method="newton")
    assert result.state.shape == (1, 2)
    assert result.all_converged


@pytest.mark.parametrize("ode_method", ["RK45", "RK23", "DOP853", "LSODA", "BDF", "Radau"])
def test_every_ode_method_converges(two_neurons, ode_method):
    assert ode_method in ODE_METHODS
    reference = settle(two_neurons, method="newton", tol=1e-13).state
    result = settle(two_neurons, method="ode", ode_method=ode_method, tol=1e-9)
    assert result.all_converged, result.message
    assert result.extra["ode_method"] == ode_method
    assert result.steps > 0
    np.testing.assert_allclose(result.state, reference, rtol=0, atol=1e-7)


def _stiff(c_fast):
    """A fast node (time constant ``c_fast`` s) coupled both ways to a slow one (1 s)."""
    return compile_circuit(
        Circuit(
            [
                FreeNode("fast", C=c_fast, g=1),
                FreeNode("slow", C=1, g=1),
                VCCS("d", "fast", "slow", w=0.5, act="tanh"),
                VCCS("e", "slow", "fast", w=0.3, act="tanh"),
            ]
        )
    )


@pytest.mark.parametrize("ode_method", ["BDF", "Radau", "LSODA"])
def test_stiff_circuit_with_implicit_methods(ode_method):
    system = _stiff(1e-2)
    newton = settle(system, method="newton", tol=1e-12)
    result = settle(system, np.array([1.0, -1.0]), method="ode", ode_method=ode_method, tol=1e-9)
    assert result.all_converged, result.message
    np.testing.assert_allclose(result.state, newton.state, rtol=0, atol=1e-8)


def test_stiff_circuit_settles_with_default_time_limit():
    system = _stiff(1e-3)
    result = settle(system, np.array([1.0, -1.0]), method="ode", ode_method="Radau")
    assert result.all_converged, result.message


# -- recorded trajectories --------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_record_trajectory_residual_decreases(method):
    # hopfield: a gradient flow, so every method makes steady progress from zero
    system = compile_circuit(read_netlist(next(p for p in EXAMPLES if p.stem == "hopfield")))
    kw = {"max_steps": 2000} if method == "relax" else {}  # record every Euler step
    result = settle(system, method=method, tol=1e-10, record=True, **kw)
    traj = result.trajectory
    assert result.all_converged, result.message
    T = len(traj.t)
    assert T >= 3
    assert traj.x.shape == (T, 1, system.n)
    assert traj.residual.shape == (T, 1)
    assert np.all(np.diff(traj.t) > 0)
    res = traj.residual[:, 0]
    assert res[-1] < 1e-10 < res[0]
    assert np.all(np.diff(res) <= 1e-12), np.diff(res).max()
    np.testing.assert_array_equal(traj.x[-1], result.final)
    np.testing.assert_allclose(traj.residual[-1], result.residual, rtol=1e-12)
    np.testing.assert_array_equal(traj.x[0], np.zeros((1, system.n)))


def test_no_trajectory_without_record(two_neurons):
    for method in METHODS:
        assert settle(two_neurons, method=method).trajectory is None


def test_relax_trajectory_ends_at_final_state(two_neurons):
    result = settle(two_neurons, method="relax", record=True)
    assert result.all_converged
    np.testing.assert_array_equal(result.trajectory.x[-1], result.final)
    assert result.trajectory.residual[-1, 0] < result.tol


# -- circuits that do not settle ----------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_limit_cycle_is_not_settled(method):
    system = _limit_cycle()
    result = settle(system, np.array([[0.1, 0.0], [0.0, -0.5], [1.0, 1.0]]), method=method)
    expected = "unstable" if method == "newton" else "oscillating"
    assert list(result.reason) == [expected] * 3, result.message
    assert not result.converged.any()
    assert np.all(np.isnan(result.state))
    assert np.all(np.isfinite(result.final))
    if method == "newton":
        # it finds the focus at the origin, and sees that the circuit leaves it (Re λ = 1)
        np.testing.assert_allclose(result.final, 0, atol=1e-8)
        np.testing.assert_allclose(result.max_real_eigenvalue, 1.0, rtol=1e-6)
    else:
        # it ends on the cycle, far from the origin, with a large residual
        assert np.all(np.max(np.abs(result.final), axis=1) > 1.0)
        assert np.all(result.residual > 0.1)


@pytest.mark.parametrize("method", ["ode", "relax"])
def test_limit_cycle_from_its_unstable_focus_is_not_settled(method):
    result = settle(_limit_cycle(), method=method)  # x0 = 0, the unstable focus
    assert not result.converged.any(), result.message


def test_limit_cycle_relax_from_saturated_start_is_oscillating():
    result = settle(_limit_cycle(), np.array([2.0, 2.0]), method="relax", max_steps=5000)
    assert list(result.reason) == ["oscillating"], result.message


def test_limit_cycle_newton_without_stability_check_converges():
    result = settle(_limit_cycle(), np.array([0.1, 0.0]), method="newton", check_stability=False)
    assert result.all_converged
    np.testing.assert_allclose(result.state, 0, atol=1e-8)


@pytest.mark.parametrize("method", ["ode", "relax"])
def test_diverging_circuit(method):
    result = settle(_diverging(), np.array([0.1]), method=method)
    assert result.reason[0] in ("diverged", "nonfinite"), result.message
    assert not result.converged[0]
    assert np.isnan(result.state[0, 0])


class _SqrtSink(Element):
    """A current ``−k√v`` out of ``a``: not real (NaN) for ``v < 0``."""

    kind = "sqrt_sink"
    terminals = ("a",)
    parameters = (Parameter("k", "A/V^0.5", "gain", 1.0),)

    def currents(v, p, o):
        return {"a": -p["k"] * sp.sqrt(v["a"])}


@pytest.mark.parametrize("method", METHODS)
def test_nonfinite_currents_at_the_start_are_reported_by_name(method):
    # C dv/dt = −v − √v + 2: v* = 1 from v = 0.5; from v = −0.5 the currents are NaN.
    system = compile_circuit(Circuit([FreeNode("a", C=1.0, g=1.0), _SqrtSink("S", "a"), Bias("b", "a", I=2.0)]))
    result = settle(system, np.array([[-0.5], [0.5]]), method=method, tol=1e-10)
    assert list(result.reason) == ["nonfinite", "converged"], result.message
    assert np.isnan(result.state[0, 0])
    assert result.state[1, 0] == pytest.approx(1.0, abs=1e-9)


def test_diverging_circuit_divergence_threshold():
    result = settle(_diverging(), np.array([0.1]), method="relax", divergence=10.0)
    assert result.reason[0] == "diverged"
    assert 10.0 < abs(result.final[0, 0]) < 100.0


def test_max_steps_reported():
    system = compile_circuit(read_netlist(next(p for p in EXAMPLES if p.stem == "hopfield")))
    result = settle(system, method="relax", max_steps=5, tol=1e-12)
    assert list(result.reason) == ["max_steps"]
    assert not result.all_converged and np.isnan(result.state).all()
    assert result.steps == 5
    newton = settle(system, method="newton", max_iterations=1, tol=1e-14)
    assert list(newton.reason) == ["max_iterations"]


def test_mixed_batch_reasons():
    """One sample sits on the unstable focus, one oscillates: each gets its own reason."""
    system = _limit_cycle()
    result = settle(system, np.array([[0.0, 0.0], [0.1, 0.0]]), method="relax")
    assert list(result.reason) == ["unstable", "oscillating"]
    np.testing.assert_array_equal(result.final[0], [0.0, 0.0])
    assert result.max_real_eigenvalue[0] > 0
    assert np.isnan(result.state).all()


def test_rk4_relax_agrees_with_newton(example, settled):
    _, system = example
    result = settle(system, method="relax", scheme="rk4", tol=1e-12)
    assert result.all_converged, result.message
    assert result.extra["scheme"] == "rk4"
    np.testing.assert_allclose(result.state, settled["newton"].state, rtol=0, atol=1e-8)


def _damped_rotation():
    """a, b with C = g = 1 and a ±3 S linear rotation: J = [[−1, 3], [−3, −1]],
    eigenvalues −1 ± 3i — stable, but explicit Euler needs dt < 2·1/10 = 0.2 s."""
    return compile_circuit(
        Circuit(
            [
                FreeNode("a", C=1, g=1),
                FreeNode("b", C=1, g=1),
                VCCS("Wab", "a", "b", w=3, act="linear"),
                VCCS("Wba", "b", "a", w=-3, act="linear"),
            ],
            name="damped_rotation",
        )
    )


def test_rk4_follows_damped_oscillations_that_euler_cannot():
    system = _damped_rotation()
    x0 = np.array([1.0, -1.0])
    euler = settle(system, x0, method="relax", dt=0.4, max_steps=2000, tol=1e-10)
    assert not euler.all_converged and euler.reason[0] in ("diverged", "oscillating", "nonfinite"), euler.message
    rk4 = settle(system, x0, method="relax", scheme="rk4", dt=0.4, max_steps=2000, tol=1e-10)
    assert rk4.all_converged, rk4.message
    np.testing.assert_allclose(rk4.state, 0.0, atol=1e-9)  # the only stationary point: J is invertible
    default = settle(system, x0, method="relax", scheme="rk4", tol=1e-10)  # dt from the spectral radius
    assert default.all_converged and default.extra["dt"] <= 1 / np.sqrt(10) + 1e-9


# -- bad arguments ----------------------------------------------------------------------------------
def test_unknown_method(two_neurons):
    with pytest.raises(ValueError, match="unknown settling method 'euler'; valid: ode, relax, newton"):
        settle(two_neurons, method="euler")


def test_unknown_relax_scheme(two_neurons):
    with pytest.raises(ValueError, match="unknown relax scheme 'midpoint'; valid: euler, rk4"):
        settle(two_neurons, method="relax", scheme="midpoint")


def test_unknown_ode_method(two_neurons):
    with pytest.raises(ValueError, match="unknown ode_method 'rk4'; valid: RK45"):
        settle(two_neurons, method="ode", ode_method="rk4")


@pytest.mark.parametrize("tol", [0.0, -1e-8, np.nan, np.inf])
def test_bad_tol(two_neurons, tol):
    with pytest.raises(ValueError, match="tol must be a positive number"):
        settle(two_neurons, tol=tol)


@pytest.mark.parametrize("dt", [-0.1, 0.0, np.nan])
def test_bad_dt(two_neurons, dt):
    with pytest.raises(ValueError, match="dt must be a positive number of seconds"):
        settle(two_neurons, method="relax", dt=dt)


def test_bad_t_max(two_neurons):
    with pytest.raises(ValueError, match="t_max must be a positive number of seconds"):
        settle(two_neurons, method="ode", t_max=-1.0)


@pytest.mark.parametrize("shape", [(3,), (1, 3), (2, 1), (1, 1, 2)])
def test_bad_start_state_shape(two_neurons, shape):
    with pytest.raises(ValueError, match=r"x0 must have shape \(batch, 2\) or \(2,\)"):
        settle(two_neurons, np.zeros(shape))


def test_start_batch_must_match_input_batch(two_neurons):
    with pytest.raises(ValueError, match="x0 has batch 2 but the inputs have batch 3"):
        settle(two_neurons, np.zeros((2, 2)), inputs=np.zeros((3, 1)))


def test_inputs_only_with_compiled_system(two_neurons):
    with pytest.raises(ValueError, match="inputs= is only accepted with a CompiledSystem"):
        settle(two_neurons.bind(), inputs=np.zeros(1))


def test_not_a_dynamics():
    with pytest.raises(TypeError, match="cannot settle"):
        settle(object())
