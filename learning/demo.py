"""``aeplab demo``: the tour of aeplab on embedded data, in about a minute.

1. the equations of a small non-reciprocal circuit, derived by sympy;
2. its settling, integrated with scipy (plot of voltages, residual, phase portrait);
3. a gradient check: AEP and Dyadic EP against the exact gradient, and the
   bias of VF, with the error-vs-β plot;
4. a layered network trained with AEP on the embedded MNIST digits.

Everything is written to one folder (``results.json`` and PNG figures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from circuits import atomic_write, parse_netlist
from simulator import compile_circuit, derive, settle
from simulator.plots import plot_phase_portrait, plot_settling

from .algorithms import compare, estimate, free_phase, reference_gradient
from .datasets import load_embedded
from .plots import beta_sweep, plot_beta_sweep, plot_history
from .train import TrainConfig, Trainer

__all__ = ["TWO_NEURONS", "run_demo"]

# The same circuit as examples/circuits/two_neurons.net (a test keeps them equal).
TWO_NEURONS = """\
# Two neurons with a non-reciprocal (one-way) transconductance h1 -> h2,
# a reciprocal energy coupling between them, and a clamped input driving h1.
input     x1  value=0.5
node      h1  C=1 g=1
node      h2  C=1 g=1
vccs      U1  h1 x1 w=1.2 act=tanh      # input drive into h1
vccs      W21 h2 h1 w=0.8 act=tanh      # current into h2 = w·tanh(v_h1)
coupling  K12 h1 h2 w=0.3 act=tanh      # Hopfield energy coupling
bias      b1  h1 I=0.1
bias      b2  h2 I=-0.05
output    h2  target=0.25
"""


def run_demo(
    out: str | Path = "aeplab-demo", epochs: int = 4, hidden: int = 100, seed: int = 0, progress: bool = True, say=print
) -> dict:
    """Run the demo and write its figures and ``results.json`` to ``out``.

    Parameters
    ----------
    out
        Output folder (created).
    epochs, hidden, seed
        Training of the layered 784-``hidden``-10 network on the embedded digits.
    progress
        Show progress bars.
    say
        Where to print the narrative (``print`` by default).

    Returns
    -------
    dict
        Everything written to ``results.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results: dict = {}

    say("── 1. Equations of motion (derived by sympy from the element laws) ──")
    circuit = parse_netlist(TWO_NEURONS, name="two_neurons")
    eq = derive(circuit)
    say(eq.text())
    say(f"non-reciprocal elements: {', '.join(circuit.nonreciprocal_elements)}   A = (J − Jᵀ)/2 = {eq.A.tolist()}")
    results["equations"] = {n: rhs for n, _, rhs in eq.lines()}
    results["nonreciprocal_elements"] = circuit.nonreciprocal_elements

    say("\n── 2. Settling (scipy solve_ivp, RK45, until ‖f‖∞ < 1e-9 A) ──")
    system = compile_circuit(circuit)
    res = settle(system, np.array([-0.8, 0.9]), method="ode", tol=1e-9, record=True)
    newton = settle(system, method="newton", tol=1e-12)
    plot_settling(res, system.nodes, path=out / "settling.png")
    plot_phase_portrait(system, res, path=out / "phase_portrait.png")
    state = dict(zip(system.nodes, res.state[0].tolist()))
    say(
        f"{res.message}; stationary state {state} (Newton agrees to "
        f"{np.max(np.abs(res.state - newton.state)):.1e} V); settled after {res.time:.2f} s"
    )
    results["settling"] = {
        "converged": res.all_converged,
        "state": state,
        "time_s": res.time,
        "residual_A": float(res.residual[0]),
    }

    say("\n── 3. Gradient check against the exact (implicit-differentiation) gradient ──")
    free = free_phase(system)
    ref = reference_gradient(system, free=free)
    trainable = [k for k in system.params if system.trainable[k]]
    ref.grads = {k: ref.grads[k] for k in trainable}
    checks = {}
    for name, beta in (("aep", 1e-3), ("dyadic", 1.0), ("vf", 1e-3)):
        nudging = "one-sided" if name == "dyadic" else "symmetric"
        c = compare(estimate(name, system, beta=beta, nudging=nudging, free=free), ref)
        checks[name] = {"beta": beta, **c}
        say(f"  {name:<7} β = {beta:<6g} relative error {c['rel_error']:.2e}   cosine {c['cosine']:.6f}")
    say("  (VF is biased here because the circuit is non-reciprocal; EP does not apply to it at all)")
    sweep = beta_sweep(system, ("vf", "aep", "dyadic"), betas=np.logspace(-3, -0.5, 6))
    plot_beta_sweep(sweep, path=out / "gradient_error_vs_beta.png", title="two neurons: gradient error vs β")
    results["gradient_check"] = checks
    results["beta_sweep_slopes"] = {k: v["slope"] for k, v in sweep.items()}

    say(f"\n── 4. Training a layered 784-{hidden}-10 network with AEP on the embedded MNIST digits ──")
    data = load_embedded()
    config = TrainConfig(model="layered", hidden=[hidden], algorithm="aep", epochs=epochs, seed=seed)
    trainer = Trainer(config, data, out=out / "training", progress=progress)
    trainer.fit()
    plot_history(
        {"layered AEP": trainer.history},
        path=out / "accuracy.png",
        title=f"embedded digits ({data.n_train} train / {data.n_test} test): test accuracy",
    )
    last = trainer.history[-1]
    say(
        f"after {epochs} epochs: test accuracy {100 * last['test_accuracy']:.1f}% "
        f"({np.mean([h['seconds'] for h in trainer.history]):.1f} s per epoch)"
    )
    results["training"] = {
        "config": config.to_dict(),
        "history": trainer.history,
        "test_accuracy": last["test_accuracy"],
    }
    results["seconds"] = time.perf_counter() - t_start
    atomic_write(out / "results.json", json.dumps(results, indent=2) + "\n")
    figures = sorted(p.name for p in out.glob("*.png"))
    say(f"\nWrote {out / 'results.json'} and {', '.join(figures)} to {out.resolve()}/ in {results['seconds']:.0f} s.")
    return results
