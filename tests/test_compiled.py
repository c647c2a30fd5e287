"""Compiled kernels against the symbolic equations, finite differences and each other.

* every example netlist: ``f``, ``J`` and ``∂f/∂θ`` equal the sympy
  expressions of :func:`simulator.equations.derive`; ``jvp``, ``vjp`` and
  ``param_vjp`` equal finite differences;
* array forms (layers, dense and sparse blocks) equal the same network written
  element by element;
* float32, the non-reciprocal part ``antisym``, the non-separable fallback and
  the error messages for bad arguments.
"""

from __future__ import annotations

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
    Element,
    FreeNode,
    HalfCoupling,
    Input,
    InputLayer,
    Layer,
    Parameter,
    Resistor,
    Sparse,
    read_netlist,
)
from simulator import compile_circuit, derive

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "circuits").glob("*.net"))
BATCH = 4


def test_examples_exist():
    assert len(EXAMPLES) >= 4, EXAMPLES


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.stem)
def example(request):
    circuit = read_netlist(request.param)
    return circuit, compile_circuit(circuit), derive(circuit)


def _states(system, rng, batch=BATCH, scale=0.7):
    return scale * rng.standard_normal((batch, system.n))


def _inputs(system, rng, batch=BATCH):
    return system.input_values + 0.3 * rng.standard_normal((batch, system.n_inputs))


def _params_only(eq, expr):
    """``expr`` with parameters and capacitances numeric, inputs left symbolic."""
    return expr.xreplace({k: sp.Float(v) for k, v in eq.values.items() if k not in eq.inputs})


def _lambdify(eq, exprs):
    return sp.lambdify(list(eq.states) + list(eq.inputs), exprs, modules="numpy")


def _call(fn, x, u):
    """Evaluate a lambdified function row by row; returns an array (batch, ...)."""
    return np.array([np.array(fn(*x[b], *u[b]), dtype=float) for b in range(len(x))])


def _param_key(sym: sp.Symbol) -> str:
    """Symbolic parameter name ``w_W21`` → compiled key ``W21.w`` (scalar elements)."""
    param, _, element = sym.name.partition("_")
    return f"{element}.{param}"


# -- symbolic equality -------------------------------------------------------------
def test_f_equals_symbolic_rhs(example):
    circuit, system, eq = example
    rng = np.random.default_rng(1)
    x, u = _states(system, rng), _inputs(system, rng)
    rhs = _lambdify(eq, [_params_only(eq, eq.rhs[n]) for n in eq.nodes])
    np.testing.assert_allclose(system.bind(u).f(x), _call(rhs, x, u), rtol=1e-12, atol=1e-12)


def test_f_at_circuit_inputs_equals_numeric_rhs(example):
    circuit, system, eq = example
    x = _states(system, np.random.default_rng(2))
    rhs = sp.lambdify(eq.states, [eq.numeric(eq.rhs[n]) for n in eq.nodes], modules="numpy")
    expected = np.array([np.array(rhs(*row), dtype=float) for row in x])
    np.testing.assert_allclose(system.f(x), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(system.bind().f(x[0]), expected[0], rtol=1e-12, atol=1e-12)


def test_jacobian_equals_symbolic(example):
    circuit, system, eq = example
    rng = np.random.default_rng(3)
    x, u = _states(system, rng), _inputs(system, rng)
    jac = _lambdify(eq, _params_only(eq, eq.jacobian))
    J = system.bind(u).jacobian(x)
    assert J.shape == (BATCH, system.n, system.n)
    np.testing.assert_allclose(J, _call(jac, x, u), rtol=1e-12, atol=1e-12)


def test_param_vjp_equals_symbolic(example):
    circuit, system, eq = example
    rng = np.random.default_rng(4)
    x, u = _states(system, rng), _inputs(system, rng)
    w = rng.standard_normal(x.shape)
    got = system.bind(u).param_vjp(x, w)
    derivs = eq.param_derivatives()
    assert derivs, "every example has parameters"
    for sym, column in derivs.items():
        key = _param_key(sym)
        assert key in got, (key, sorted(got))
        fn = _lambdify(eq, [_params_only(eq, c) for c in column])
        expected = np.sum(w * _call(fn, x, u))
        np.testing.assert_allclose(got[key], expected, rtol=1e-12, atol=1e-12, err_msg=key)


# -- finite differences ----------------------------------------------------------------
def test_jvp_vjp_match_finite_differences(example):
    circuit, system, eq = example
    rng = np.random.default_rng(5)
    x, u = _states(system, rng), _inputs(system, rng)
    bound = system.bind(u)
    v, w = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    eps = 1e-6
    fd = (bound.f(x + eps * v) - bound.f(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(bound.jvp(x, v), fd, rtol=1e-7, atol=1e-8)
    # vjp: <w, J v> = <Jᵀ w, v> for every v; check against FD of the scalar <w, f>.
    grad = np.empty_like(x)
    for i in range(system.n):
        e = np.zeros_like(x)
        e[:, i] = eps
        grad[:, i] = np.sum(w * (bound.f(x + e) - bound.f(x - e)), axis=1) / (2 * eps)
    np.testing.assert_allclose(bound.vjp(x, w), grad, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(np.sum(w * bound.jvp(x, v)), np.sum(bound.vjp(x, w) * v), rtol=1e-12, atol=1e-12)


def _fd_param_vjp(system, x, u, w, eps=1e-6):
    """``Σ_batch wᵀ ∂f/∂θ`` by central differences, perturbing via ``set_params``."""
    base = system.get_params()
    out = {}
    for key, value in base.items():
        grad = np.zeros(value.shape)
        for idx in np.ndindex(value.shape):
            vals = []
            for sign in (1, -1):
                p = value.copy()
                p[idx] += sign * eps
                system.set_params({key: p})
                vals.append(np.sum(w * system.bind(u).f(x)))
            grad[idx] = (vals[0] - vals[1]) / (2 * eps)
        system.set_params({key: value})
        out[key] = grad
    return out


def test_param_vjp_matches_finite_differences(example):
    circuit, system, eq = example
    rng = np.random.default_rng(6)
    x, u = _states(system, rng), _inputs(system, rng)
    w = rng.standard_normal(x.shape)
    got = system.bind(u).param_vjp(x, w)
    expected = _fd_param_vjp(system, x, u, w)
    assert set(got) == set(expected) == set(system.params)
    for key in expected:
        assert got[key].shape == system.params[key].shape, key
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-7, atol=1e-8, err_msg=key)


def test_kernels_do_not_change_parameters(example):
    circuit, system, eq = example
    before = system.get_params()
    rng = np.random.default_rng(7)
    x = _states(system, rng)
    system.param_vjp(x, rng.standard_normal(x.shape))
    system.jacobian(x)
    for key, value in before.items():
        np.testing.assert_array_equal(system.params[key], value)


# -- array forms against the element-by-element network ---------------------------------
N_X, N_H, N_O = 2, 3, 2


def _layered_values(seed=11):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.uniform(-1, 1, N_X),
        "Ch": rng.uniform(0.5, 2, N_H),
        "gh": rng.uniform(0.5, 1.5, N_H),
        "Co": rng.uniform(0.5, 2, N_O),
        "go": rng.uniform(0.5, 1.5, N_O),
        "W1": rng.normal(size=(N_H, N_X)),  # vccs h <- x, tanh
        "H2": rng.normal(size=(N_O, N_H)),  # halfcoupling o <- h, tanh
        "K": rng.normal(size=(N_H, N_O)),  # coupling h - o, sigmoid
        "R": rng.uniform(0.1, 1, (N_O, N_X)),  # resistor o - x
        "Rho": rng.uniform(0.1, 1, (N_H, N_O)),  # resistor h - o
        "bh": rng.normal(size=N_H),  # bias on h, linear
        "bo": rng.normal(size=N_O),  # bias on o, tanh
    }


def _layered_arrays(val):
    x = InputLayer("x", N_X, value=val["x"])
    h = Layer("h", N_H, C=val["Ch"], g=val["gh"])
    o = Layer("o", N_O, C=val["Co"], g=val["go"])
    return Circuit(
        [
            x,
            h,
            o,
            Dense("W1", VCCS, h, x, w=val["W1"], act="tanh"),
            Dense("H2", HalfCoupling, o, h, w=val["H2"], act="tanh"),
            Dense("K", Coupling, h, o, w=val["K"], act="sigmoid"),
            Dense("R", Resistor, o, x, G=val["R"]),
            Dense("Rho", "resistor", h, o, G=val["Rho"]),
            Sparse("bh", Bias, [h], I=val["bh"]),
            Sparse("bo", Bias, [o], I=val["bo"], act="tanh"),
        ],
        name="arrays",
    )


def _layered_elements(val):
    """The same network, one element at a time; returns the circuit and key mapping."""
    items, keys = [], {}
    h = [f"h[{i}]" for i in range(N_H)]
    o = [f"o[{i}]" for i in range(N_O)]
    x = [f"x[{j}]" for j in range(N_X)]
    items += [Input(x[j], val["x"][j]) for j in range(N_X)]
    for nodes, C, g, layer in ((h, val["Ch"], val["gh"], "h"), (o, val["Co"], val["go"], "o")):
        for i, node in enumerate(nodes):
            items.append(FreeNode(node, C=C[i], g=g[i]))
            keys[f"{node}.C"] = (f"{layer}.C", (i,))
            keys[f"{node}.g"] = (f"{layer}.g", (i,))

    def dense(name, cls, rows, cols, param, values, **opts):
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                items.append(cls(f"{name}_{i}_{j}", r, c, **{param: values[i, j]}, **opts))
                keys[f"{name}_{i}_{j}.{param}"] = (f"{name}.{param}", (i, j))

    dense("W1", VCCS, h, x, "w", val["W1"], act="tanh")
    dense("H2", HalfCoupling, o, h, "w", val["H2"], act="tanh")
    dense("K", Coupling, h, o, "w", val["K"], act="sigmoid")
    dense("R", Resistor, o, x, "G", val["R"])
    dense("Rho", Resistor, h, o, "G", val["Rho"])
    for name, nodes, act in (("bh", h, "linear"), ("bo", o, "tanh")):
        for i, node in enumerate(nodes):
            items.append(Bias(f"{name}_{i}", node, I=val[name][i], act=act))
            keys[f"{name}_{i}.I"] = (f"{name}.I", (i,))
    return Circuit(items, name="elements"), keys


@pytest.fixture(scope="module")
def layered():
    val = _layered_values()
    arrays = compile_circuit(_layered_arrays(val))
    elements_circuit, keys = _layered_elements(val)
    elements = compile_circuit(elements_circuit)
    return arrays, elements, keys


def _map_back(grads, keys, like):
    """Element-by-element gradients → the array parameters' shapes."""
    out = {k: np.full(v.shape, np.nan) for k, v in like.items()}
    for key, g in grads.items():
        array_key, idx = keys[key]
        out[array_key][idx] = g
    return out


def test_layered_network_uses_dense_groups(layered):
    arrays, elements, keys = layered
    forms = {g.name: g.form for g in arrays.groups}
    for name in ("W1", "H2", "K", "R", "Rho"):
        assert forms[name] == "dense", forms
    assert arrays.nodes == elements.nodes == [*(f"h[{i}]" for i in range(N_H)), *(f"o[{i}]" for i in range(N_O))]
    assert arrays.inputs == elements.inputs
    np.testing.assert_array_equal(arrays.capacitance, elements.capacitance)
    assert sorted(keys) == sorted(elements.params)


def test_layered_arrays_equal_elements(layered):
    arrays, elements, keys = layered
    rng = np.random.default_rng(12)
    x = rng.normal(size=(5, arrays.n))
    u = rng.uniform(-1, 1, (5, arrays.n_inputs))
    v, w = rng.normal(size=x.shape), rng.normal(size=x.shape)
    A, E = arrays.bind(u), elements.bind(u)
    np.testing.assert_allclose(A.f(x), E.f(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.jvp(x, v), E.jvp(x, v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.vjp(x, w), E.vjp(x, w), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.jacobian(x), E.jacobian(x), rtol=1e-12, atol=1e-12)
    lin_a, lin_e = A.linearize(x), E.linearize(x)
    np.testing.assert_allclose(lin_a.antisym(v), lin_e.antisym(v), rtol=1e-12, atol=1e-12)
    ga = A.param_vjp(x, w)
    ge = _map_back(E.param_vjp(x, w), keys, arrays.params)
    assert set(ga) == set(ge)
    for key in ga:
        assert not np.isnan(ge[key]).any(), key
        np.testing.assert_allclose(ga[key], ge[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_layered_default_and_single_inputs(layered):
    arrays, elements, keys = layered
    rng = np.random.default_rng(13)
    x = rng.normal(size=(3, arrays.n))
    np.testing.assert_allclose(arrays.f(x), elements.f(x), rtol=1e-12, atol=1e-12)
    u = rng.uniform(-1, 1, arrays.n_inputs)  # one input vector broadcast over the batch
    np.testing.assert_allclose(arrays.f(x, u), elements.f(x, u), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(arrays.f(x, u), arrays.f(x, np.tile(u, (3, 1))), rtol=1e-12, atol=1e-12)


def test_layered_param_vjp_matches_finite_differences(layered):
    arrays, elements, keys = layered
    rng = np.random.default_rng(14)
    x = rng.normal(size=(3, arrays.n))
    u = rng.uniform(-1, 1, (3, arrays.n_inputs))
    w = rng.normal(size=x.shape)
    got = arrays.param_vjp(x, w, inputs=u)
    expected = _fd_param_vjp(arrays, x, u, w)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-7, atol=1e-8, err_msg=key)


def test_layered_parameter_update_seen_after_rebind(layered):
    arrays, elements, keys = layered
    rng = np.random.default_rng(15)
    x = rng.normal(size=(2, arrays.n))
    old = arrays.get_params()
    try:
        new_w = rng.normal(size=(N_H, N_X))
        arrays.set_params({"W1.w": new_w})
        elements.set_params({f"W1_{i}_{j}.w": new_w[i, j] for i in range(N_H) for j in range(N_X)})
        np.testing.assert_allclose(arrays.f(x), elements.f(x), rtol=1e-12, atol=1e-12)
    finally:
        arrays.set_params(old)
        elements.set_params({k: old[a][idx] for k, (a, idx) in keys.items()})


def test_float32_close_to_float64():
    val = _layered_values()
    c64 = compile_circuit(_layered_arrays(val))
    c32 = compile_circuit(_layered_arrays(val), dtype=np.float32)
    rng = np.random.default_rng(16)
    x = rng.normal(size=(4, c64.n))
    u = rng.uniform(-1, 1, (4, c64.n_inputs))
    w = rng.normal(size=x.shape)
    b64, b32 = c64.bind(u), c32.bind(u)
    for name, a, b in (
        ("f", b64.f(x), b32.f(x)),
        ("jvp", b64.jvp(x, w), b32.jvp(x, w)),
        ("vjp", b64.vjp(x, w), b32.vjp(x, w)),
        ("jacobian", b64.jacobian(x), b32.jacobian(x)),
    ):
        assert b.dtype == np.float32, name
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.max(np.abs(a)), err_msg=name)
    g64, g32 = b64.param_vjp(x, w), b32.param_vjp(x, w)
    for key in g64:
        assert g32[key].dtype == np.float32, key
        np.testing.assert_allclose(
            g32[key], g64[key], rtol=1e-5, atol=1e-5 * np.max(np.abs(g64[key])) + 1e-7, err_msg=key
        )


# -- non-reciprocal part ------------------------------------------------------------------
def test_antisym_equals_dense_jacobian_difference(example):
    circuit, system, eq = example
    rng = np.random.default_rng(17)
    x, u = _states(system, rng), _inputs(system, rng)
    v = rng.standard_normal(x.shape)
    bound = system.bind(u)
    J = bound.jacobian(x)
    expected = np.einsum("bij,bj->bi", J - J.transpose(0, 2, 1), v)
    np.testing.assert_allclose(bound.linearize(x).antisym(v), expected, rtol=1e-12, atol=1e-12)
    if circuit.is_conservative:
        assert np.all(bound.linearize(x).antisym(v) == 0)
        np.testing.assert_allclose(J, J.transpose(0, 2, 1), rtol=1e-12, atol=1e-14)


def test_antisym_of_nonreciprocal_circuit_is_nonzero():
    circuit = read_netlist(next(p for p in EXAMPLES if p.stem == "two_neurons"))
    system = compile_circuit(circuit)
    assert not circuit.is_conservative
    x = np.array([[0.3, -0.2]])
    out = system.bind().linearize(x).antisym(np.array([[1.0, 0.0]]))
    assert np.max(np.abs(out)) > 0.1


def test_antisym_exactly_zero_for_reciprocal_elements_only():
    val = _layered_values()
    h, x = Layer("h", N_H, C=val["Ch"], g=val["gh"]), InputLayer("x", N_X, value=val["x"])
    circuit = Circuit(
        [
            x,
            h,
            Dense("K", Coupling, h, x, w=val["W1"], act="tanh"),
            Sparse("Khh", Coupling, [["h[0]", "h[1]"], ["h[1]", "h[2]"]], w=[0.4, -0.7], act="sigmoid"),
            Resistor("R01", "h[0]", "h[2]", G=0.3),
            Sparse("b", Bias, [h], I=val["bh"], act="tanh"),
        ]
    )
    assert circuit.is_conservative
    system = compile_circuit(circuit)
    rng = np.random.default_rng(18)
    xs = rng.normal(size=(4, system.n))
    v = rng.normal(size=xs.shape)
    lin = system.bind(rng.uniform(-1, 1, (4, N_X))).linearize(xs)
    np.testing.assert_array_equal(lin.antisym(v), np.zeros_like(v))
    J = lin.dense()
    np.testing.assert_allclose(J, J.transpose(0, 2, 1), rtol=1e-12, atol=1e-14)


# -- a dense block whose law does not separate ----------------------------------------------
class TanhProduct(Element):
    """Test element: ``i_a = w·tanh(v_a·v_b)``, nothing into ``b`` (does not separate)."""

    kind = "test_tanhproduct"
    terminals = ("a", "b")
    parameters = (Parameter("w", "A", "strength", trainable=True),)

    def currents(v, p, o):
        return {"a": p["w"] * sp.tanh(v["a"] * v["b"])}


def test_nonseparable_dense_block_falls_back_and_agrees():
    rng = np.random.default_rng(19)
    W = rng.normal(size=(N_H, N_O))
    h, o, x = Layer("h", N_H), Layer("o", N_O), InputLayer("x", N_X, value=[0.2, -0.4])
    arrays = compile_circuit(
        Circuit(
            [
                x,
                h,
                o,
                Dense("T", TanhProduct, h, o, w=W),
                Dense("Tx", TanhProduct, o, x, w=W[:N_O, :N_X]),
            ]
        )
    )
    assert {g.name: g.form for g in arrays.groups}["T"] == "edge"
    items = [x, h, o]
    for i in range(N_H):
        for j in range(N_O):
            items.append(TanhProduct(f"T_{i}_{j}", f"h[{i}]", f"o[{j}]", w=W[i, j]))
    for i in range(N_O):
        for j in range(N_X):
            items.append(TanhProduct(f"Tx_{i}_{j}", f"o[{i}]", f"x[{j}]", w=W[i, j]))
    elements = compile_circuit(Circuit(items))
    xs = rng.normal(size=(3, arrays.n))
    u = rng.uniform(-1, 1, (3, N_X))
    v = rng.normal(size=xs.shape)
    A, E = arrays.bind(u), elements.bind(u)
    np.testing.assert_allclose(A.f(xs), E.f(xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.jacobian(xs), E.jacobian(xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.vjp(xs, v), E.vjp(xs, v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.linearize(xs).antisym(v), E.linearize(xs).antisym(v), rtol=1e-12, atol=1e-12)
    ga, ge = A.param_vjp(xs, v), E.param_vjp(xs, v)
    assert ga["T.w"].shape == (N_H, N_O)
    for i in range(N_H):
        for j in range(N_O):
            np.testing.assert_allclose(ga["T.w"][i, j], ge[f"T_{i}_{j}.w"], rtol=1e-12, atol=1e-12)
    for i in range(N_O):
        for j in range(N_X):
            np.testing.assert_allclose(ga["Tx.w"][i, j], ge[f"Tx_{i}_{j}.w"], rtol=1e-12, atol=1e-12)
    # and against the law itself
    expected = np.zeros_like(xs)
    expected[:, :N_H] += np.einsum("ij,bij->bi", W, np.tanh(xs[:, :N_H, None] * xs[:, None, N_H:]))
    expected[:, N_H:] += np.einsum("ij,bij->bi", W[:N_O, :N_X], np.tanh(xs[:, N_H:, None] * u[:, None, :]))
    expected[:, :N_H] -= xs[:, :N_H]  # leaks, g = 1
    expected[:, N_H:] -= xs[:, N_H:]
    np.testing.assert_allclose(A.f(xs), expected, rtol=1e-12, atol=1e-12)


def test_dense_block_with_mixed_free_and_clamped_rows_falls_back():
    rng = np.random.default_rng(20)
    W = rng.normal(size=(2, 2))
    items = [Input("x0", 0.3), FreeNode("a"), FreeNode("b")]
    arrays = compile_circuit(Circuit(items + [Dense("D", VCCS, ["a", "x0"], ["a", "b"], w=W, act="tanh")]))
    rows, cols = ["a", "x0"], ["a", "b"]
    elements = compile_circuit(
        Circuit(
            items
            + [VCCS(f"D{i}{j}", r, c, w=W[i, j], act="tanh") for i, r in enumerate(rows) for j, c in enumerate(cols)]
        )
    )
    xs = rng.normal(size=(3, 2))
    np.testing.assert_allclose(arrays.f(xs), elements.f(xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(arrays.jacobian(xs), elements.jacobian(xs), rtol=1e-12, atol=1e-12)


# -- bad arguments ----------------------------------------------------------------------------
@pytest.fixture()
def two():
    return compile_circuit(read_netlist(next(p for p in EXAMPLES if p.stem == "two_neurons")))


@pytest.mark.parametrize("shape", [(3,), (2, 3), (1, 1), (2, 2, 2), ()])
def test_wrong_state_shape(two, shape):
    with pytest.raises(ValueError, match=r"state must have shape \(batch, 2\)"):
        two.f(np.zeros(shape))


def test_state_batch_must_match_input_batch(two):
    bound = two.bind(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="does not match the input batch"):
        bound.f(np.zeros((2, 2)))


@pytest.mark.parametrize("shape", [(2,), (3, 2), (1, 1, 1), (0,)])
def test_wrong_input_shape(two, shape):
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 1\)"):
        two.bind(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_inputs(two, bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        two.bind(np.array([[0.1], [bad]]))


def test_vector_of_wrong_length(two):
    lin = two.bind().linearize(np.zeros(2))
    with pytest.raises(ValueError, match="2 entries per sample"):
        lin.jvp(np.zeros(3))
    with pytest.raises(ValueError, match="2 entries per sample"):
        lin.vjp(np.zeros((1, 1)))


def test_set_params_wrong_shape(two):
    with pytest.raises(ValueError, match=r"'W21.w': shape \(2,\), expected \(\)"):
        two.set_params({"W21.w": [0.1, 0.2]})


def test_set_params_unknown_name(two):
    with pytest.raises(KeyError, match="no parameter 'W12.w'"):
        two.set_params({"W12.w": 0.1})


def test_set_params_changes_f_and_stale_bound_raises(two):
    x = np.array([[0.3, -0.2]])
    bound = two.bind()
    before = bound.f(x)
    two.set_params({"W21.w": 2.0})
    for call in (lambda: bound.f(x), lambda: bound.jvp(x, x), lambda: bound.linearize(x)):
        with pytest.raises(RuntimeError, match="parameters changed"):
            call()
    after = two.bind().f(x)
    np.testing.assert_allclose(after[0, 1] - before[0, 1], (2.0 - 0.8) * np.tanh(0.3), rtol=1e-12)
    np.testing.assert_allclose(after[0, 0], before[0, 0], rtol=1e-12)


def test_touch_invalidates_bound(two):
    bound = two.bind()
    two.touch()
    with pytest.raises(RuntimeError, match="parameters changed"):
        bound.f(np.zeros(2))


def test_bad_dtype():
    circuit = read_netlist(next(p for p in EXAMPLES if p.stem == "two_neurons"))
    with pytest.raises(ValueError, match="float32 or float64"):
        compile_circuit(circuit, dtype=np.int64)


def test_stale_linearization_raises():
    h, x = Layer("h", 2), InputLayer("x", 2, value=[0.3, -0.5])
    system = compile_circuit(
        Circuit(
            [
                x,
                h,
                Dense("W", VCCS, h, h, w=[[0.1, 0.2], [0.3, 0.4]], act="tanh"),
                VCCS("V", "h[0]", "h[1]", w=0.5, act="tanh"),
            ]
        )
    )
    xs = np.array([[0.5, -0.2]])
    lin = system.bind().linearize(xs)
    system.set_params({"W.w": np.array([[1.0, 2.0], [3.0, 4.0]]), "V.w": 2.0})
    with pytest.raises(RuntimeError, match="parameters changed"):
        lin.dense()


# -- energy of conservative circuits -----------------------------------------------------------------------------------
@pytest.mark.parametrize("netlist", ["hopfield", "resistor_network"])
def test_currents_are_minus_the_energy_gradient(netlist):
    """For a conservative circuit f = −∂E/∂x, and the compiled ∂E/∂θ matches finite differences."""
    system = compile_circuit(read_netlist(next(p for p in EXAMPLES if p.stem == netlist)))
    bound = system.bind()
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.5, (3, system.n))
    eps = 1e-6
    grad = np.empty_like(x)
    for j in range(system.n):
        d = np.zeros_like(x)
        d[:, j] = eps
        grad[:, j] = (bound.energy(x + d) - bound.energy(x - d)) / (2 * eps)
    np.testing.assert_allclose(bound.f(x), -grad, rtol=0, atol=1e-8)
    dE = bound.energy_param_grad(x)
    key = next(k for k in system.params if system.trainable[k])
    old = float(system.params[key])
    values = []
    for sign in (1, -1):
        system.set_params({key: old + sign * eps})
        values.append(system.bind().energy(x).sum())
    system.set_params({key: old})
    np.testing.assert_allclose(dE[key], (values[0] - values[1]) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_energy_needs_energy_laws():
    system = compile_circuit(read_netlist(next(p for p in EXAMPLES if p.stem == "two_neurons")))
    with pytest.raises(ValueError, match="stated by their currents only"):
        system.bind().energy(np.zeros(system.n))
