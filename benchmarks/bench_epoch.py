"""Seconds per training epoch, and their ratio to the bare matrix products the epoch needs.

For each (model, algorithm) this trains one epoch of the MNIST experiment
configuration (784-500-10, batch 100, the trainer's defaults) and records the
shape of every matrix product the dense blocks perform.  It then replays
those products with plain numpy on arrays of the same shapes and dtype (best
of several repeats per distinct shape, times the number of calls) and prints

    epoch seconds / bare matrix-product seconds

measured in the same run.  The rest of the epoch is elementwise work (ρ(v),
ρ'(v), leaks, the Euler updates) and Python overhead; evaluation on the test
set is not part of the epoch here.

Run:  python benchmarks/bench_epoch.py --data-dir PATH/TO/MNIST [--train-size N] [--runs layered:aep ...]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from functools import partial

import numpy as np
from bench_kernels import best

from learning.datasets import load_dataset
from learning.train import TrainConfig, Trainer
from simulator import kernels

RUNS = ["layered:aep", "layered:ep", "layered:vf", "feedforward:aep", "feedforward:dyadic", "feedforward:vf"]


class MatmulLog:
    """Wraps the dense-term products to count them by operand shapes."""

    def __init__(self):
        self.calls: Counter = Counter()
        self._orig = {}

    def __enter__(self):
        log = self.calls

        def wrap(name):
            orig = getattr(kernels.DenseTerm, name)

            def wrapped(term, a, b):
                res = orig(term, a, b)
                if not np.isscalar(a) and not np.isscalar(b):
                    left, right = _operands(name, term, a, b)
                    log[(left.shape, right.shape, left.dtype.str, _layout(left), _layout(right))] += 1
                return res

            self._orig[name] = orig
            setattr(kernels.DenseTerm, name, wrapped)

        for name in ("mm", "mm_back", "outer"):
            wrap(name)
        return self

    def __exit__(self, *exc):
        for name, orig in self._orig.items():
            setattr(kernels.DenseTerm, name, orig)


def _operands(name, term, a, b):
    rows = term.out == "rows"
    if name == "mm":
        return a, (b.T if rows else b)
    if name == "mm_back":
        return a, (b if rows else b.T)
    return (a.T, b) if rows else (b.T, a)  # outer(b=a_arg, a=b_arg): see DenseTerm.outer


def _layout(x: np.ndarray) -> str:
    return "C" if x.flags.c_contiguous else "F"


def replay(calls: Counter) -> float:
    """Seconds the logged products take with plain numpy (best of several repeats per shape)."""
    rng = np.random.default_rng(0)
    total = 0.0
    for (sa, sb, dt, la, lb), count in calls.items():
        a = rng.random(sa).astype(dt)
        b = rng.random(sb).astype(dt)
        a = np.asfortranarray(a) if la == "F" else a
        b = np.asfortranarray(b) if lb == "F" else b
        total += count * best(partial(np.matmul, a, b), repeat=5)
    return total


def _epoch(config: TrainConfig, data) -> float:
    """Seconds of one training epoch (the minibatch steps only) from a fresh model."""
    trainer = Trainer(config, data, progress=False)
    x = data.x_train.astype(trainer.system.dtype)
    order = np.random.default_rng([config.seed, 1]).permutation(data.n_train)
    t0 = time.perf_counter()
    for b in range(0, len(order), config.batch_size):
        idx = order[b : b + config.batch_size]
        trainer.step(x[idx], data.y_train[idx])
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--train-size", type=int, default=None, help="training digits (default all 60000)")
    parser.add_argument("--runs", nargs="+", default=RUNS, help="model:algorithm pairs")
    args = parser.parse_args(argv)
    data = load_dataset("mnist", args.data_dir, train_size=args.train_size, test_size=1000)
    print(f"one epoch on {data.n_train} MNIST digits, 784-500-10, batch 100 (trainer defaults, float32)\n")
    print(f"{'model':<12}{'algorithm':<10}{'epoch (s)':>10}{'matmuls (s)':>13}{'ratio':>8}{'products':>10}")
    for run in args.runs:
        model, algorithm = run.split(":")
        config = TrainConfig(model=model, algorithm=algorithm, epochs=1)
        seconds = _epoch(config, data)
        # The same (deterministic) epoch again, its products logged: the log's own
        # overhead stays out of the timed epoch.
        with MatmulLog() as log:
            _epoch(config, data)
        bare = replay(log.calls)
        n = sum(log.calls.values())
        print(f"{model:<12}{algorithm:<10}{seconds:>10.1f}{bare:>13.2f}{seconds / bare:>8.1f}{n:>10}", flush=True)


if __name__ == "__main__":
    main()
