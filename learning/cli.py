"""The ``aeplab`` command line.

::

    aeplab derive NETLIST [--latex | --json] [--numeric]
    aeplab settle NETLIST [--method ode|relax|newton] [--tol T] [--plot FILE] [--json]
    aeplab gradcheck NETLIST [--beta B] [--algorithms ...] [--json] [--plot FILE]
    aeplab locality NETLIST [--json]
    aeplab train ... ; aeplab demo [--out DIR]
    aeplab export-spice NETLIST [-o FILE] [--phase free|nudged|aep] [--beta B]

Errors in the input (bad netlist, unknown option) print one line naming the
problem and exit with status 2.  ``settle`` exits with 1 when a sample did not
settle; ``gradcheck`` exits with 1 when an applicable algorithm failed or its
learning phase did not settle (the others are still reported).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def print_json(obj) -> None:
    """Print ``obj`` as strict JSON (NaN and infinities become null)."""
    print(json.dumps(_jsonable(obj), indent=2, allow_nan=False))


def _load(path: str):
    from circuits import read_netlist

    return read_netlist(path)


# -- derive ------------------------------------------------------------------------


def cmd_derive(args) -> int:
    from simulator import derive

    circuit = _load(args.netlist)
    eq = derive(circuit)
    if args.json:
        print_json(eq.to_dict())
        return 0
    if args.latex:
        print(eq.latex(numeric=args.numeric))
        return 0
    print(f"Circuit {circuit.name}: {len(eq.nodes)} free node(s), {len(circuit.clamped_nodes)} input(s)")
    if circuit.clamped_nodes:
        print("Inputs: " + ", ".join(f"{n} = {v:g} V" for n, v in zip(circuit.clamped_nodes, circuit.input_values)))
    print("\nEquations of motion (C dv/dt = Σ currents into the node; A, V, S, F, s):")
    for _, lhs, rhs in eq.lines("text", numeric=args.numeric):
        print(f"  {lhs} = {rhs}")
    print("\nElements:")
    for name, rec in eq.reciprocal.items():
        print(f"  {name:<12} {'reciprocal' if rec else 'NON-RECIPROCAL'}")
    if eq.expandable and not circuit.arrays:
        for name in eq.nonreciprocal_elements:
            ends, A = eq.nonreciprocal_part(name)
            print(f"\nNon-reciprocal part of {name} over ({', '.join(ends)}): (J_e − J_eᵀ)/2 =")
            for row in A.tolist():
                print("  [" + ", ".join(str(a) for a in row) + "]")
        print("\nCircuit: A = (J − Jᵀ)/2 over (" + ", ".join(eq.nodes) + ") =")
        for row in eq.A.tolist():
            print("  [" + ", ".join(str(a) for a in row) + "]")
        print("Conservative (A ≡ 0): " + ("yes" if circuit.is_conservative else "no"))
    if not args.numeric:
        print(
            "\nParameter values: "
            + ", ".join(f"{k} = {v:g}" for k, v in eq.values.items() if not str(k).startswith("v_"))
        )
    return 0


# -- settle ------------------------------------------------------------------------


def cmd_settle(args) -> int:
    from simulator import compile_circuit, settle

    circuit = _load(args.netlist)
    system = compile_circuit(circuit)
    x0 = None
    if args.x0 is not None:
        x0 = np.array([float(v) for v in args.x0.split(",")])
    res = settle(system, x0, method=args.method, tol=args.tol, record=bool(args.plot), dt=args.dt, scheme=args.scheme)
    out = {
        "circuit": circuit.name,
        "method": res.method,
        "converged": bool(res.all_converged),
        "state": {n: (float(v) if res.all_converged else None) for n, v in zip(system.nodes, res.final[0])},
        "final": {n: float(v) for n, v in zip(system.nodes, res.final[0])},
        "residual": float(res.residual[0]),
        "tol": args.tol,
        "steps": res.steps,
        "time": res.time,
    }
    if not res.all_converged:
        out["reason"] = str(res.reason[0])
    if res.max_real_eigenvalue is not None:
        out["max_real_eigenvalue"] = float(res.max_real_eigenvalue[0])
    if args.plot:
        from simulator.plots import plot_phase_portrait, plot_settling

        plot_settling(res, system.nodes, path=args.plot)
        out["plot"] = args.plot
        if system.n == 2:
            phase = str(Path(args.plot).with_suffix("")) + "_phase" + Path(args.plot).suffix
            plot_phase_portrait(system, res, path=phase)
            out["phase_portrait"] = phase
    if args.json:
        print_json(out)
    else:
        status = "settled" if res.all_converged else f"did NOT settle ({out['reason']})"
        print(f"{circuit.name}: {status} by {res.method} — residual {out['residual']:.3g} A (tol {args.tol:g})")
        label = "stationary state" if res.all_converged else "last state reached (not stationary)"
        print(f"{label}:")
        for n, v in out["final"].items():
            print(f"  v_{n} = {v:.10g} V")
        if res.time is not None:
            print(f"simulated time {res.time:.4g} s, {res.steps} steps/evaluations")
        for key in ("plot", "phase_portrait"):
            if key in out:
                print(f"wrote {out[key]}")
    return 0 if res.all_converged else 1


# -- gradcheck ---------------------------------------------------------------------

ALGORITHM_NAMES = ("ep", "vf", "aep", "dyadic")


def _gradcheck(system, algorithms, beta, nudging):
    from learning.algorithms import (
        NotApplicable,
        compare,
        estimate,
        finite_difference_gradient,
        free_phase,
        reference_gradient,
    )

    free = free_phase(system)
    ref = reference_gradient(system, free=free)
    trainable = [k for k in system.params if system.trainable[k]]
    ref.grads = {k: ref.grads[k] for k in trainable}
    fd = finite_difference_gradient(system, params=trainable)
    results = {}
    for name in algorithms:
        try:
            est = estimate(name, system, beta=beta, nudging="one-sided" if name == "dyadic" else nudging, free=free)
        except NotApplicable as err:
            results[name] = {"applicable": False, "reason": str(err)}
            continue
        except (RuntimeError, np.linalg.LinAlgError) as err:
            # One algorithm failing (e.g. a learning phase that diverges) does not hide the others.
            results[name] = {"applicable": True, "failed": True, "reason": f"{type(err).__name__}: {err}"}
            continue
        phases = {k: d for k, d in est.diagnostics.items() if isinstance(d, dict) and "converged" in d}
        unsettled = {k: d["reasons"] for k, d in phases.items() if d["converged"] < 1.0}
        results[name] = {
            "applicable": True,
            "failed": False,
            "beta": beta,
            "nudging": est.nudging,
            "settled": not unsettled,
            **({"unsettled_phases": unsettled} if unsettled else {}),
            **compare(est, ref),
        }
    return ref, fd, compare(ref, fd), results


def cmd_gradcheck(args) -> int:
    from simulator import compile_circuit

    circuit = _load(args.netlist)
    system = compile_circuit(circuit)
    algorithms = args.algorithms or list(ALGORITHM_NAMES)
    ref, fd, ref_vs_fd, results = _gradcheck(system, algorithms, args.beta, args.nudging)
    out = {
        "circuit": circuit.name,
        "beta": args.beta,
        "reference": {k: np.atleast_1d(v) for k, v in ref.grads.items()},
        "reference_vs_finite_differences": ref_vs_fd,
        "algorithms": results,
    }
    if args.plot:
        from learning.plots import beta_sweep, plot_beta_sweep

        sweep = beta_sweep(system, algorithms, nudging=args.nudging)
        plot_beta_sweep(sweep, path=args.plot, title=f"{circuit.name}: error of the gradient estimate vs β")
        out["plot"] = args.plot
        out["beta_sweep"] = sweep
    # Exit status 1 when an algorithm that applies failed or its learning phase did not settle.
    status = int(any(r["applicable"] and (r["failed"] or not r["settled"]) for r in results.values()))
    if args.json:
        print_json(out)
        return status
    print(
        f"Gradient check: {circuit.name} ({system.n} free nodes, {len(ref.grads)} trainable parameters), "
        f"β = {args.beta:g}"
    )
    print(
        f"reference (implicit differentiation) vs central finite differences: rel. error {ref_vs_fd['rel_error']:.2e}"
    )
    print(f"\n{'algorithm':<10}{'nudging':<12}{'rel. error':>12}{'cosine':>12}")
    for name, r in results.items():
        if not r["applicable"]:
            print(f"{name:<10}{'—':<12}  not applicable: {r['reason']}")
        elif r["failed"]:
            print(f"{name:<10}{'—':<12}  failed: {r['reason']}")
        else:
            line = f"{name:<10}{r['nudging']:<12}{r['rel_error']:>12.2e}{r['cosine']:>12.8f}"
            if not r["settled"]:
                line += (
                    "  (learning phase did not settle: "
                    + "; ".join(f"{k}: {', '.join(v)}" for k, v in r["unsettled_phases"].items())
                    + ")"
                )
            print(line)
    if args.plot:
        print(f"\nwrote {args.plot}")
    return status


# -- locality ----------------------------------------------------------------------


def cmd_locality(args) -> int:
    from learning.locality import check_locality

    circuit = _load(args.netlist)
    reports = check_locality(circuit)
    if args.json:
        print_json(
            {
                "circuit": circuit.name,
                "all_local": all(r.local for r in reports),
                "elements": [r.to_dict() for r in reports],
            }
        )
        return 0 if all(r.local for r in reports) else 1
    print(f"Locality of the learning rules in {circuit.name} (x0: free state, s: response (x_β − x0)/β, dx: x − x0)")
    for r in reports:
        verdict = "local" if r.local else f"NON-LOCAL: reads {', '.join(r.reads_outside)} (not a terminal)"
        print(f"\n{r.element} ({r.kind}, terminals {', '.join(r.terminals)}): {verdict}")
        for p, expr in r.update.items():
            print(f"  update   g_{p} = {expr}")
        for node, expr in r.correction.items():
            print(f"  AEP correction into {node}: {expr}")
    bad = [r.element for r in reports if not r.local]
    print("\nAll updates local." if not bad else f"\nNon-local elements: {', '.join(bad)}")
    return 0 if not bad else 1


# -- train -------------------------------------------------------------------------


def cmd_train(args) -> int:
    from learning.datasets import load_dataset
    from learning.optim import parse_learning_rates
    from learning.train import TrainConfig, Trainer

    if args.dataset == "mnist" and args.data_dir is None:
        raise ValueError("--dataset mnist needs --data-dir (a folder with the four MNIST IDX files, plain or .gz)")
    data = load_dataset(
        args.dataset, args.data_dir, train_size=args.train_size, test_size=args.test_size, seed=args.seed
    )
    overrides = {
        k: getattr(args, k)
        for k in ("act", "cost", "scheme", "dt", "free_steps", "nudge_steps")
        if getattr(args, k) is not None
    }
    if args.lr is not None:
        overrides["lr"] = parse_learning_rates(args.lr)
    config = TrainConfig(
        model=args.model,
        hidden=args.hidden,
        algorithm=args.algorithm,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        beta=args.beta,
        nudging=args.nudging,
        momentum=args.momentum,
        dtype=args.dtype,
        **overrides,
    )
    trainer = Trainer(config, data, out=args.out, progress=not (args.quiet or args.json))
    if args.resume:
        trainer.load(args.resume)
    trainer.fit()
    results = trainer.results()
    if args.json:
        print_json(results)
    else:
        last = trainer.history[-1]
        print(
            f"{data.name}: {config.model_name} {config.algorithm.upper()}, {trainer.epoch} epochs — "
            f"test accuracy {100 * last['test_accuracy']:.2f}%"
        )
        if args.out:
            print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'checkpoint.npz'}")
    return 0


def cmd_demo(args) -> int:
    from learning.demo import run_demo

    run_demo(args.out, epochs=args.epochs, progress=not args.quiet)
    return 0


# -- main --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aeplab", description="Analog circuits that learn: equations, settling, exact local learning."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("derive", help="print the equations of motion derived from a netlist")
    p.add_argument("netlist")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--latex", action="store_true", help="print LaTeX")
    g.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--numeric", action="store_true", help="substitute parameter values")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("settle", help="settle a netlist to its stationary state")
    p.add_argument("netlist")
    p.add_argument("--method", choices=("ode", "relax", "newton"), default="ode")
    p.add_argument("--tol", type=float, default=1e-8, help="residual tolerance ‖f‖∞ in A (default 1e-8)")
    p.add_argument("--dt", type=float, default=None, help="step in s for --method relax")
    p.add_argument("--scheme", choices=("euler", "rk4"), default="euler", help="scheme for --method relax")
    p.add_argument("--x0", default=None, help="start state, comma-separated volts (default zeros)")
    p.add_argument("--plot", default=None, metavar="FILE", help="save voltages and residual vs time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_settle)

    p = sub.add_parser("gradcheck", help="compare EP, VF, AEP and Dyadic EP with the exact gradient")
    p.add_argument("netlist")
    p.add_argument("--beta", type=float, default=1e-3, help="nudging strength β (default 1e-3)")
    p.add_argument("--nudging", choices=("symmetric", "one-sided"), default="symmetric")
    p.add_argument("--algorithms", nargs="+", choices=ALGORITHM_NAMES, default=None)
    p.add_argument("--plot", default=None, metavar="FILE", help="save relative error vs β (log-log)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("locality", help="check symbolically that every update is local")
    p.add_argument("netlist")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_locality)

    p = sub.add_parser("train", help="train a network on MNIST or the embedded digits with a local rule")
    p.add_argument("--dataset", choices=("mnist", "embedded"), default="embedded")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files (plain or .gz)")
    p.add_argument("--model", choices=("layered", "feedforward", "rate"), default="layered")
    p.add_argument("--hidden", type=int, nargs="+", default=[500], help="hidden layer sizes")
    p.add_argument("--algorithm", choices=ALGORITHM_NAMES, default="aep")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-size", type=int, default=None, help="use a class-balanced subset")
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beta", type=float, default=0.1, help="nudging strength β (default 0.1)")
    p.add_argument("--nudging", choices=("symmetric", "one-sided"), default="symmetric")
    p.add_argument(
        "--lr",
        nargs="+",
        default=None,
        metavar="RATE|ELEMENT=RATE",
        help="learning rate for all parameters, or per element, e.g. W1=0.1 W2=0.05 default=0.05 (default per model)",
    )
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--act", default=None, help="transfer function (default per model)")
    p.add_argument("--cost", choices=("squared_error", "cross_entropy"), default=None)
    p.add_argument("--scheme", choices=("euler", "rk4"), default=None, help="relaxation scheme (default per model)")
    p.add_argument("--dt", type=float, default=None, help="relaxation step in s (default per model)")
    p.add_argument("--free-steps", type=int, default=None)
    p.add_argument("--nudge-steps", type=int, default=None)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--out", default=None, help="folder for results.json and checkpoint.npz")
    p.add_argument("--resume", default=None, help="checkpoint (or run folder) to continue from")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="the main job: equations, settling, gradient check, training (about a minute)")
    p.add_argument("--out", default="aeplab-demo", help="output folder (default ./aeplab-demo)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    from learning.cli_spice import register

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from circuits import CircuitError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except (CircuitError, ValueError, KeyError, OSError, RuntimeError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"aeplab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
