"""The ``aeplab export-spice`` command: a netlist (and a learning phase) as an ngspice deck.

::

    aeplab export-spice NETLIST [-o FILE] [--phase free|nudged|aep] [--beta B]
                        [--cost squared_error|cross_entropy] [--tran T] [--step DT]
                        [--run] [--json]

Without ``-o`` the deck goes to standard output.  ``--tran T`` adds a
transient of ``T`` seconds (output step ``--step``, default ``T/1000``)
starting from 0 V for the free phase and from the settled free state for the
learning phases.  ``--run`` also runs ngspice and prints its stationary state
(``.op``), next to aeplab's for comparison.  ``--json`` prints one JSON
object (the deck, the node-name map, and the results of ``--run``).

:func:`register` adds the subcommand to an ``argparse`` sub-parser set;
:func:`cmd_export_spice` is its handler (returns the exit status).
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

__all__ = ["cmd_export_spice", "register"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def cmd_export_spice(args: argparse.Namespace) -> int:
    """Handle ``aeplab export-spice``; see the module documentation.

    Raises
    ------
    CircuitError, ValueError, FileNotFoundError, RuntimeError
        Bad netlist or option, free phase that does not settle, ngspice
        missing or failing (``--run``); ``aeplab``'s ``main`` prints them as
        one line and exits with status 2.
    """
    from circuits import read_netlist

    from .cli import print_json
    from .spice_phases import PHASES, phase_deck

    phase = getattr(args, "phase", "free")
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")
    beta = getattr(args, "beta", 1e-3)
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"--beta must be a positive number, got {beta!r}")
    circuit = read_netlist(args.netlist)
    tran = None
    if getattr(args, "tran", None) is not None:
        stop = float(args.tran)
        step = float(args.step) if getattr(args, "step", None) is not None else stop / 1000
        if not (stop > 0 and step > 0):
            raise ValueError(f"--tran and --step must be positive seconds, got {stop!r}, {step!r}")
        tran = (step, stop)
    cost = getattr(args, "cost", "squared_error")
    deck = phase_deck(circuit, phase, beta=beta, cost=cost, tran=tran)
    out: dict = {
        "circuit": circuit.name,
        "phase": phase,
        "beta": beta if phase != "free" else None,
        "cost": cost if phase != "free" else None,
        "analyses": list(deck.analyses),
        "nodes": deck.nodes.to_spice,
    }
    output = getattr(args, "output", None)
    if output:
        deck.write(output)
        out["file"] = output
    else:
        out["deck"] = deck.text
    if getattr(args, "run", False):
        out["ngspice"] = _run(circuit, deck, phase, beta, cost)
    if getattr(args, "json", False):
        print_json(out)
        return 0
    if output:
        print(f"wrote {output}: {circuit.name}, {phase} phase ({', '.join('.' + a for a in deck.analyses)})")
        renamed = {a: s for a, s in deck.nodes.to_spice.items() if a != s}
        if renamed:
            print("renamed nodes (aeplab -> SPICE): " + ", ".join(f"{a} -> {s}" for a, s in renamed.items()))
    else:
        sys.stdout.write(deck.text)
    if "ngspice" in out:
        r = out["ngspice"]
        print(f"* ngspice .op ({r['wall_time']:.3g} s) vs aeplab (newton): max |difference| {r['max_abs_diff']:.3g} V")
        for node, v in r["op"].items():
            print(f"*   v_{node} = {v:.12g} V   (aeplab {r['aeplab'][node]:.12g} V)")
    return 0


def _run(circuit, deck, phase: str, beta: float, cost: str) -> dict:
    """Run the deck with ngspice and settle the same phase with aeplab."""
    from simulator import compile_circuit, settle
    from simulator.ngspice import run_ngspice

    from .phases import AEPPhase, NudgedPhase

    result = run_ngspice(deck)
    system = compile_circuit(circuit, cost=cost)
    bound = system.bind()
    if phase == "free":
        dyn, start = system, None
    else:
        x0 = deck.meta["x0"][None, :]
        y = system.targets[None, :]
        dyn = NudgedPhase(bound, y, beta) if phase == "nudged" else AEPPhase(bound, y, beta, x0)
        start = x0
    ref = settle(dyn, start, method="newton", tol=1e-12)
    mine = result.op_state()
    return {
        "op": dict(zip(system.nodes, mine)),
        "aeplab": dict(zip(system.nodes, ref.final[0])),
        "aeplab_converged": bool(ref.converged[0]),
        "max_abs_diff": float(np.max(np.abs(mine - ref.final[0]))),
        "wall_time": result.wall_time,
    }


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``export-spice`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "export-spice",
        help="write a netlist (free, nudged or AEP learning phase) as an ngspice deck",
        description="Write a circuit as an ngspice deck: capacitors, leaks and resistors as R/C, every other "
        "element as behavioural current sources from its law; learning phases add the nudging and the "
        "AEP corrections as sources.",
    )
    p.add_argument("netlist")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the deck here (default: stdout)")
    p.add_argument("--phase", choices=("free", "nudged", "aep"), default="free", help="which phase (default free)")
    p.add_argument("--beta", type=_positive, default=1e-3, help="nudging strength β > 0 (default 1e-3)")
    p.add_argument("--cost", choices=("squared_error", "cross_entropy"), default="squared_error")
    p.add_argument("--tran", type=_positive, default=None, metavar="T", help="add a transient of T seconds")
    p.add_argument("--step", type=_positive, default=None, metavar="DT", help="transient output step (default T/1000)")
    p.add_argument("--run", action="store_true", help="also run ngspice and compare its .op with aeplab")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_export_spice)
    return p
