"""Training: exact resume, atomic checkpoints, learning on (reduced) MNIST, configuration,
the SGD optimiser, the model builders and the embedded data.

Everything runs on tiny networks and a few hundred digits, except the reduced-MNIST
checks (2,000 digits, one epoch, a few seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from circuits import parse_netlist, read_netlist
from learning.algorithms import NotApplicable, estimate
from learning.datasets import load_dataset, load_embedded
from learning.demo import TWO_NEURONS
from learning.models import build_model, feedforward, layered, rate
from learning.optim import SGD
from learning.train import MODEL_DEFAULTS, TrainConfig, Trainer, train
from simulator import compile_circuit, settle

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "circuits"
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not MNIST.is_dir(), reason=f"the real MNIST files are not available (looked in {MNIST})"
)

# History fields that measure wall-clock time, hence differ between two identical runs.
TIMINGS = ("seconds", "eval_seconds")


@pytest.fixture(scope="module")
def small():
    """300 training and 100 test digits of the embedded set (class-balanced, deterministic)."""
    return load_embedded().subset(train_size=300, test_size=100)


@pytest.fixture(scope="module")
def mnist2000():
    return load_dataset("mnist", MNIST, train_size=2000, test_size=1000)


def _config(**kw) -> TrainConfig:
    kw.setdefault("hidden", [16])
    kw.setdefault("batch_size", 50)
    return TrainConfig(**kw)


def _untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMINGS} for h in history]


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


# -- exact resume --------------------------------------------------------------------------


@pytest.mark.parametrize("model,algorithm", [("layered", "aep"), ("feedforward", "dyadic")])
def test_resume_reproduces_the_uninterrupted_run(small, tmp_path, model, algorithm):
    full = Trainer(_config(model=model, algorithm=algorithm, epochs=2), small, progress=False)
    full.fit()

    first = Trainer(_config(model=model, algorithm=algorithm, epochs=1), small, out=tmp_path, progress=False)
    first.fit()
    assert (tmp_path / "checkpoint.npz").is_file()

    resumed = Trainer(_config(model=model, algorithm=algorithm, epochs=2), small, progress=False)
    resumed.load(tmp_path)
    assert resumed.epoch == 1
    resumed.fit()

    assert resumed.epoch == full.epoch == 2
    assert set(resumed.system.params) == set(full.system.params)
    for k, v in full.system.params.items():
        assert np.array_equal(resumed.system.params[k], v), k
    for k, v in full.optimizer.velocity.items():
        assert np.array_equal(resumed.optimizer.velocity[k], v), k
    assert len(resumed.history) == len(full.history) == 2
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        a = np.array([h[key] for h in full.history])
        b = np.array([h[key] for h in resumed.history])
        assert np.array_equal(a, b), key
    assert _untimed(resumed.history) == _untimed(full.history)


def test_train_function_resumes_and_refuses_a_different_configuration(small, tmp_path):
    train(_config(model="feedforward", epochs=1), small, out=tmp_path, progress=False)
    t = train(_config(model="feedforward", epochs=2), small, out=tmp_path, resume=tmp_path, progress=False)
    assert t.epoch == 2 and [h["epoch"] for h in t.history] == [1, 2]
    assert json.loads((tmp_path / "results.json").read_text())["epochs_done"] == 2
    other = Trainer(_config(model="feedforward", epochs=2, seed=1), small, progress=False)
    with pytest.raises(ValueError, match="different configuration.*seed"):
        other.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        other.load(tmp_path / "nowhere")


# -- atomic checkpoints ----------------------------------------------------------------------


def test_checkpoints_and_results_are_written_atomically(small, tmp_path, monkeypatch):
    config = _config(model="feedforward", algorithm="aep", epochs=3)
    trainer = Trainer(config, small, out=tmp_path, progress=False)
    for epoch in (1, 2):
        trainer.run_epoch()
        results = json.loads((tmp_path / "results.json").read_text())
        assert results["epochs_done"] == epoch and len(results["history"]) == epoch
        assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()
        with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as ck:
            assert json.loads(str(ck["meta"]))["epoch"] == epoch
            for k, v in trainer.system.params.items():
                assert np.array_equal(ck[f"param/{k}"], v), k
        assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "config.json", "results.json"]

    before = (tmp_path / "checkpoint.npz").read_bytes()
    params_after_epoch_2 = trainer.system.get_params()

    def crash(file, *args, **kwargs):  # a crash half-way through writing the checkpoint
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="simulated"):
        trainer.run_epoch()
    monkeypatch.undo()

    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert _temp_files(tmp_path) == []
    json.loads((tmp_path / "results.json").read_text())  # still parses
    fresh = Trainer(config, small, progress=False)
    fresh.load(tmp_path)
    assert fresh.epoch == 2 and len(fresh.history) == 2
    for k, v in params_after_epoch_2.items():
        assert np.array_equal(fresh.system.params[k], v), k


# -- learning ----------------------------------------------------------------------------------


@needs_mnist
def test_reduced_mnist_feedforward_aep_learns(mnist2000):
    assert (mnist2000.n_train, mnist2000.n_test) == (2000, 1000)
    trainer = Trainer(TrainConfig(model="feedforward", algorithm="aep", hidden=[64]), mnist2000, progress=False)
    trainer.fit()
    last = trainer.history[-1]
    assert last["test_accuracy"] >= 0.80, last
    assert last["skipped_updates"] == 0 and last["converged"] == 1.0


@needs_mnist
@pytest.mark.parametrize(
    "algorithm,lr,below",
    [("vf", None, 0.75), ("aep", 0.0, 0.3)],
    ids=["vf-cannot-train-the-hidden-layer", "lr-0-control"],
)
def test_reduced_mnist_broken_gradients_do_clearly_worse(mnist2000, algorithm, lr, below):
    extra = {} if lr is None else {"lr": {"default": lr}}
    config = TrainConfig(model="feedforward", algorithm=algorithm, hidden=[64], **extra)
    trainer = Trainer(config, mnist2000, progress=False)
    trainer.fit()
    assert trainer.history[-1]["test_accuracy"] < below, trainer.history[-1]


def test_layered_aep_learns_the_embedded_digits():
    data = load_embedded()
    trainer = Trainer(TrainConfig(model="layered", algorithm="aep", hidden=[32], epochs=2), data, progress=False)
    trainer.fit()
    assert not trainer.circuit.is_conservative
    assert trainer.history[-1]["test_accuracy"] > 0.6, trainer.history


@pytest.fixture(scope="module")
def mnist20000():
    return load_dataset("mnist", MNIST, train_size=20000, test_size=2000)


@pytest.mark.slow
@needs_mnist
def test_layered_784_500_10_aep_beats_vf_and_matches_ep(mnist20000):
    """The paper's layered comparison on a third of the data, 2 epochs: EP on the tied network,
    VF and AEP on the untied one (initialised symmetric).  AEP's exact gradient learns as well as
    EP's; VF's biased one falls clearly behind."""
    accuracy = {}
    for algorithm in ("ep", "vf", "aep"):
        trainer = Trainer(
            TrainConfig(model="layered", algorithm=algorithm, hidden=[500], epochs=2), mnist20000, progress=False
        )
        trainer.fit()
        accuracy[algorithm] = trainer.history[-1]["test_accuracy"]
    print(accuracy)
    assert accuracy["aep"] >= 0.90, accuracy
    assert accuracy["aep"] >= accuracy["ep"] - 0.02, accuracy
    assert accuracy["aep"] >= accuracy["vf"] + 0.03, accuracy


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"model": "transformer"}, "unknown model"),
        ({"algorithm": "backprop"}, "unknown algorithm"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": -2}, "epochs"),
        ({"beta": 0.0}, "beta"),
        ({"beta": -0.1}, "beta"),
        ({"dtype": "float16"}, "dtype"),
        ({"dtype": "int32"}, "dtype"),
        ({"hidden": []}, "hidden"),
        ({"nudging": "sideways"}, "nudging"),
        ({"scheme": "midpoint"}, "scheme"),
    ],
)
def test_train_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_ep_is_refused_on_non_conservative_models(small):
    untied = compile_circuit(layered([4, 3, 2], tied=False))
    with pytest.raises(NotApplicable, match="non-reciprocal"):
        estimate("ep", untied, inputs=np.full(4, 0.5), target=np.zeros(2), beta=0.1)
    for model in ("feedforward", "rate"):
        with pytest.raises(NotApplicable, match="conservative"):
            Trainer(_config(model=model, algorithm="ep"), small, progress=False)


def test_layered_with_ep_builds_the_tied_model(small):
    ep = Trainer(_config(model="layered", algorithm="ep"), small, progress=False)
    assert ep.config.model_name == "layered-tied"
    assert ep.circuit.is_conservative is True
    assert "B1.w" not in ep.system.params
    aep = Trainer(_config(model="layered", algorithm="aep"), small, progress=False)
    assert aep.config.model_name == "layered"
    assert aep.circuit.is_conservative is False


@pytest.mark.parametrize("model", sorted(MODEL_DEFAULTS))
def test_per_model_defaults(model):
    config = TrainConfig(model=model)
    for key, value in MODEL_DEFAULTS[model].items():
        expected = value() if callable(value) else value
        assert getattr(config, key) == expected, key
    # the default learning-rate dict is not shared between configurations
    config.lr["default"] = 123.0
    assert TrainConfig(model=model).lr != config.lr


def test_explicit_settings_override_the_model_defaults():
    config = TrainConfig(model="feedforward", act="isru", cost="squared_error", dt=0.25, free_steps=7, lr=0.3)
    assert (config.act, config.cost, config.dt, config.free_steps) == ("isru", "squared_error", 0.25, 7)
    assert config.lr == {"default": 0.3}
    assert config.nudge_steps == MODEL_DEFAULTS["feedforward"]["nudge_steps"]
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown config keys"):
        TrainConfig.from_dict({**config.to_dict(), "learning_rate": 1})


# -- SGD ------------------------------------------------------------------------------------------


@pytest.fixture
def ff_system():
    return compile_circuit(feedforward([4, 3, 2], seed=1))


def test_sgd_per_layer_learning_rates(ff_system):
    opt = SGD(ff_system, lr={"W1": 0.5, "W2.w": 0.2, "b_o": 0.7, "b_o.I": 0.3, "default": 0.01})
    assert opt.lr == {"W1.w": 0.5, "W2.w": 0.2, "b_h1.I": 0.01, "b_o.I": 0.3}  # parameter name beats element name
    before = ff_system.get_params()
    grads = {k: np.ones_like(v) for k, v in ff_system.params.items() if ff_system.trainable[k]}
    version = ff_system.version
    opt.step(grads)
    assert ff_system.version > version
    for k, eta in opt.lr.items():
        np.testing.assert_allclose(ff_system.params[k], before[k] - eta, rtol=0, atol=1e-15)
    for k in ("h1.C", "h1.g", "o.C", "o.g"):  # not trainable: untouched
        assert np.array_equal(ff_system.params[k], before[k])
    assert SGD(ff_system, lr=0.05).lr == dict.fromkeys(opt.lr, 0.05)


def test_sgd_momentum_and_missing_gradients(ff_system):
    opt = SGD(ff_system, lr=0.1, momentum=0.5)
    w0 = ff_system.params["W1.w"].copy()
    b0 = ff_system.params["b_h1.I"].copy()
    g = np.full_like(w0, 2.0)
    opt.step({"W1.w": g})
    opt.step({"W1.w": g})
    np.testing.assert_allclose(ff_system.params["W1.w"], w0 - 0.1 * 2.0 * (2 + 0.5), atol=1e-14)
    assert np.array_equal(ff_system.params["b_h1.I"], b0)


def test_sgd_missing_rate_names_the_parameter(ff_system):
    with pytest.raises(KeyError, match=r"b_o\.I"):
        SGD(ff_system, lr={"W1": 0.1, "W2": 0.1, "b_h1": 0.1})
    with pytest.raises(ValueError, match="learning rate"):
        SGD(ff_system, lr={"default": -0.1})
    with pytest.raises(KeyError, match="no parameter"):
        SGD(ff_system, lr=0.1, params=["W9.w"])
    # A misspelt or untrained name is an error, not silently the default rate.
    with pytest.raises(KeyError, match=r"\['W3'\].*valid: .*W1, W1\.w, W2"):
        SGD(ff_system, lr={"W3": 0.1, "default": 0.05})
    with pytest.raises(KeyError, match=r"\['h1\.C'\]"):
        SGD(ff_system, lr={"h1.C": 0.1, "default": 0.05})


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_sgd_momentum_outside_unit_interval(ff_system, momentum):
    with pytest.raises(ValueError, match="momentum"):
        SGD(ff_system, lr=0.1, momentum=momentum)


def test_sgd_keeps_a_conductance_nonnegative():
    system = compile_circuit(read_netlist(EXAMPLES / "resistor_network.net"))
    opt = SGD(system, lr=1.0)
    assert opt._domain["R1.G"] == "nonnegative"
    opt.step({"R1.G": np.array(10.0), "R2.G": np.array(-0.25), "R3.G": np.array(0.05)})
    assert system.params["R1.G"] == 0.0  # 1 − 10, clipped at the domain's edge
    assert system.params["R2.G"] == pytest.approx(0.75)
    assert system.params["R3.G"] == pytest.approx(0.2)


def test_sgd_state_dict_round_trip(ff_system):
    opt = SGD(ff_system, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    opt.step({k: rng.normal(size=v.shape) for k, v in ff_system.params.items() if ff_system.trainable[k]})
    state = opt.state_dict()
    assert set(state) == set(opt.params) and any(np.any(v != 0) for v in state.values())
    state_copy = {k: v.copy() for k, v in state.items()}
    opt.step({k: np.ones_like(v) for k, v in state.items()})  # the saved state is a copy
    for k in state:
        assert np.array_equal(state[k], state_copy[k])
    other = SGD(compile_circuit(feedforward([4, 3, 2], seed=1)), lr=0.1, momentum=0.9)
    other.load_state_dict(state)
    for k in state:
        assert np.array_equal(other.velocity[k], state[k])
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict({"W1.w": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict({"W7.w": np.zeros((3, 4))})


# -- models ---------------------------------------------------------------------------------------


def _with_random_biases(system, rng):
    system.set_params({k: rng.normal(scale=0.3, size=v.shape) for k, v in system.params.items() if k.startswith("b_")})
    return system.get_params()


def test_feedforward_stationary_state_is_the_mlp_forward_pass():
    rng = np.random.default_rng(3)
    system = compile_circuit(feedforward([5, 4, 3, 2], seed=2))
    p = _with_random_biases(system, rng)
    u = rng.uniform(0, 1, size=(7, 5))
    res = settle(system.bind(u), None, method="newton", tol=1e-12)
    assert res.all_converged
    h1 = np.tanh(u) @ p["W1.w"].T + p["b_h1.I"]
    h2 = np.tanh(h1) @ p["W2.w"].T + p["b_h2.I"]
    o = np.tanh(h2) @ p["W3.w"].T + p["b_o.I"]
    expected = np.concatenate([h1, h2, o], axis=1)
    assert system.nodes[:4] == [f"h1[{i}]" for i in range(4)] and system.nodes[-2:] == ["o[0]", "o[1]"]
    np.testing.assert_allclose(res.final, expected, rtol=0, atol=1e-10)


def test_layered_tied_is_conservative_and_untied_is_not():
    tied = layered([6, 4, 3], tied=True, seed=5)
    untied = layered([6, 4, 3], tied=False, seed=5)
    assert tied.is_conservative and not tied.nonreciprocal_elements
    assert not untied.is_conservative and "B2" in untied.nonreciprocal_elements
    t, u = compile_circuit(tied), compile_circuit(untied)
    assert np.array_equal(u.params["B2.w"], u.params["W2.w"].T)  # symmetric initialisation
    assert np.array_equal(u.params["W2.w"], t.params["W2.w"])
    random = compile_circuit(layered([6, 4, 3], tied=False, init="random", seed=5))
    assert not np.allclose(random.params["B2.w"], random.params["W2.w"].T)
    # with B = Wᵀ both have the same vector field
    rng = np.random.default_rng(0)
    x, inp = rng.normal(size=(5, 7)), rng.uniform(0, 1, size=(5, 6))
    np.testing.assert_allclose(u.f(x, inp), t.f(x, inp), atol=1e-12)


def test_layered_equations():
    rng = np.random.default_rng(1)
    system = compile_circuit(layered([5, 4, 3], act="tanh", tied=False, init="random", seed=4))
    p = _with_random_biases(system, rng)
    u, x = rng.uniform(0, 1, size=(6, 5)), rng.normal(size=(6, 7))
    h, o = x[:, :4], x[:, 4:]
    rho, drho = np.tanh, lambda v: 1 - np.tanh(v) ** 2
    fh = -h + drho(h) * (rho(u) @ p["W1.w"].T + rho(o) @ p["B2.w"].T + p["b_h1.I"])
    fo = -o + drho(o) * (rho(h) @ p["W2.w"].T + p["b_o.I"])
    np.testing.assert_allclose(system.f(x, u), np.concatenate([fh, fo], axis=1), atol=1e-12)


def test_rate_model_equations():
    rng = np.random.default_rng(2)
    circuit = rate([5, 4, 3], act="tanh", init="random", seed=4)
    assert not circuit.is_conservative
    system = compile_circuit(circuit)
    p = _with_random_biases(system, rng)
    u, x = rng.uniform(0, 1, size=(6, 5)), rng.normal(size=(6, 7))
    h, o = x[:, :4], x[:, 4:]
    fh = -h + np.tanh(u) @ p["W1.w"].T + np.tanh(o) @ p["B2.w"].T + p["b_h1.I"]
    fo = -o + np.tanh(h) @ p["W2.w"].T + p["b_o.I"]
    np.testing.assert_allclose(system.f(x, u), np.concatenate([fh, fo], axis=1), atol=1e-12)
    sym = compile_circuit(rate([5, 4, 3], seed=4))
    assert np.array_equal(sym.params["B2.w"], sym.params["W2.w"].T)


@pytest.mark.parametrize("sizes", [[784], [], [784, 0, 10], [784, -3, 10], [784, 2.5, 10], [10, "5"]])
@pytest.mark.parametrize("builder", [layered, rate, feedforward])
def test_bad_sizes_raise(builder, sizes):
    with pytest.raises(ValueError, match="sizes"):
        builder(sizes)


def test_bad_model_options_raise():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer", [4, 2])
    with pytest.raises(ValueError, match="init"):
        layered([4, 3, 2], tied=False, init="orthogonal")
    with pytest.raises(ValueError, match="init"):
        rate([4, 3, 2], init="orthogonal")


# -- data -------------------------------------------------------------------------------------------


def test_embedded_digits():
    data = load_embedded()
    assert (data.n_train, data.n_test, data.n_features) == (3000, 1000, 784)
    assert data.x_train.shape == (3000, 784) and data.x_test.shape == (1000, 784)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert set(np.unique(data.y_train)) == set(range(10)) == set(np.unique(data.y_test))


def test_demo_circuit_matches_the_example_netlist():
    from_file = read_netlist(EXAMPLES / "two_neurons.net")
    from_demo = parse_netlist(TWO_NEURONS, name=from_file.name)
    assert from_demo == from_file
    assert parse_netlist(TWO_NEURONS.replace("w=0.8", "w=0.9"), name=from_file.name) != from_file
