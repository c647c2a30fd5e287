"""The paper's MNIST experiment (Scurria et al. 2026), reproduced with aeplab.

784-500-10 networks, symmetric initialisation of forward/backward couplings:

* layered Hopfield network: EP on the tied (conservative) model, VF and AEP
  on the untied model;
* feedforward network: AEP and Dyadic EP (exact gradients) and VF (which
  cannot train the hidden layer: for a feedforward J, J⁻¹ℓ' vanishes there).

Test accuracy after 1 epoch (mean ± std over ``--seeds`` seeds) and after
``--epochs`` epochs (over the first ``--long-seeds`` seeds).  Learning
rates are the trainer's per-model defaults unless ``--lr`` gives others.
Writes ``results.md``, ``results.json`` (the table and every run's
per-epoch record) and ``accuracy.png`` to ``--out``.  Every
run checkpoints after each epoch into its own folder, and a rerun resumes
unfinished runs and skips finished ones, so the script can be interrupted;
``--report`` writes the table from the epochs finished so far (the long
runs that finished, or if none has, those under way at the last epoch they
all reached).

    python examples/mnist_paper.py --data-dir PATH/TO/MNIST --seeds 10 --long-seeds 3 --epochs 20 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# Run as a script, this folder leads sys.path, and its netlist folder circuits/ would
# then shadow the circuits package (an editable install resolves packages last).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

RUNS = [
    ("layered", "ep"),
    ("layered", "vf"),
    ("layered", "aep"),
    ("feedforward", "aep"),
    ("feedforward", "dyadic"),
    ("feedforward", "vf"),
]


def run_one(job: dict) -> dict:
    """Train one (model, algorithm, seed) to ``epochs``, resuming if possible."""
    from learning.datasets import load_dataset
    from learning.train import TrainConfig, Trainer

    out = Path(job["out"])
    results = out / "results.json"
    if results.exists():
        done = json.loads(results.read_text())
        if done["epochs_done"] >= job["epochs"]:
            return done
    data = load_dataset("mnist", job["data_dir"], train_size=job["train_size"], test_size=job["test_size"])
    config = TrainConfig(
        model=job["model"],
        algorithm=job["algorithm"],
        seed=job["seed"],
        epochs=job["epochs"],
        hidden=[job["hidden"]],
        lr=job.get("lr"),
    )
    trainer = Trainer(config, data, out=out, progress=False)
    if (out / "checkpoint.npz").exists():
        trainer.load(out)
    trainer.fit()
    print(
        f"done {job['model']} {job['algorithm']} seed {job['seed']}: "
        f"{100 * trainer.history[-1]['test_accuracy']:.2f}% after {trainer.epoch} epochs",
        flush=True,
    )
    return trainer.results()


def _stats(values: list[float]) -> dict:
    import numpy as np

    a = 100 * np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def summarise(results: list[dict], epochs: int, out: Path) -> dict:
    """Results table (Markdown + JSON) and accuracy-vs-epoch figure."""
    from circuits import atomic_write
    from learning.plots import plot_history

    table, curves = {}, {}
    for model, algorithm in RUNS:
        runs = [r for r in results if r["config"]["model"] == model and r["config"]["algorithm"] == algorithm]
        if not runs:
            continue
        one = [r["history"][0]["test_accuracy"] for r in runs]
        # The long runs that finished; if none has yet (see --report), those under way
        # at the last epoch they all reached.
        long_runs = [r for r in runs if r["config"]["epochs"] >= epochs]
        finished = [r for r in long_runs if len(r["history"]) >= epochs]
        long_runs = finished or long_runs
        reached = epochs if finished else min((len(r["history"]) for r in long_runs), default=0)
        long = [r["history"][reached - 1]["test_accuracy"] for r in long_runs]
        secs = [h["seconds"] for r in runs for h in r["history"]]
        label = f"{model} {algorithm.upper()}"
        table[label] = {
            "model": model,
            "algorithm": algorithm,
            "epoch1": _stats(one),
            f"epoch{epochs}": _stats(long) if long and reached == epochs else None,
            "long": {"epoch": reached, **_stats(long)} if long else None,
            "seconds_per_epoch": sum(secs) / len(secs),
            "lr": runs[0]["config"]["lr"],
        }
        curves[label] = [r["history"][:reached] for r in long_runs]
    lines = [
        f"| network | algorithm | test acc. after 1 epoch (%) | test acc. after {epochs} epochs (%) | s/epoch |",
        "|---|---|---|---|---|",
    ]
    for row in table.values():
        e1 = row["epoch1"]
        eL = row["long"]
        long = f"{eL['mean']:.2f} ± {eL['std']:.2f} (n={eL['n']})" if eL else "—"
        if eL and eL["epoch"] < epochs:
            long += f", at epoch {eL['epoch']}: unfinished"
        lines.append(
            f"| {row['model']} | {row['algorithm'].upper()} | {e1['mean']:.2f} ± {e1['std']:.2f} "
            f"(n={e1['n']}) | {long} | {row['seconds_per_epoch']:.0f} |"
        )
    markdown = "\n".join(lines) + "\n"
    # Every run's own per-epoch record goes with the table: the table can be checked,
    # and rebuilt, without the run folders.
    keep = ("epoch", "train_accuracy", "test_accuracy", "seconds", "converged", "dropped_samples")
    runs = [
        {
            "model": r["config"]["model"],
            "algorithm": r["config"]["algorithm"],
            "seed": r["config"]["seed"],
            "epochs_done": len(r["history"]),
            "history": [{k: h[k] for k in keep if k in h} for h in r["history"]],
        }
        for r in sorted(results, key=lambda r: (r["config"]["model"], r["config"]["algorithm"], r["config"]["seed"]))
    ]
    document = {"epochs": epochs, "table": table, "runs": runs}
    atomic_write(out / "results.md", markdown)
    atomic_write(out / "results.json", json.dumps(document, indent=2) + "\n")
    curves = {k: v for k, v in curves.items() if v}
    if curves:
        plot_history(curves, path=out / "accuracy.png", title="MNIST 784-500-10: test accuracy (mean ± std over seeds)")
    return {"markdown": markdown, "table": table, "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with the four MNIST IDX files (plain or .gz)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds for the 1-epoch numbers (default 10)")
    parser.add_argument("--long-seeds", type=int, default=3, help="seeds trained for --epochs (default 3)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--train-size", type=int, default=None, help="subset of the training set (default all)")
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--only", nargs="+", default=None, help="runs to do, e.g. layered:aep feedforward:vf")
    parser.add_argument(
        "--lr",
        nargs="+",
        default=None,
        metavar="RATE|ELEMENT=RATE",
        help="learning rates for every run (default per model), e.g. W1=0.3 default=0.1; use with --only",
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one BLAS thread each)")
    parser.add_argument("--out", default="runs/paper")
    parser.add_argument("--report", action="store_true", help="train nothing: summarise the runs found in --out so far")
    args = parser.parse_args(argv)
    if args.long_seeds > args.seeds:
        parser.error("--long-seeds cannot exceed --seeds")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = RUNS if args.only is None else [tuple(r.split(":")) for r in args.only]
    lr = None
    if args.lr is not None:
        from learning.optim import parse_learning_rates

        try:
            lr = parse_learning_rates(args.lr)
        except ValueError as err:
            parser.error(str(err))
    jobs = []
    for seed in range(args.seeds):
        for model, algorithm in runs:
            jobs.append(
                {
                    "model": model,
                    "algorithm": algorithm,
                    "seed": seed,
                    "hidden": args.hidden,
                    "epochs": args.epochs if seed < args.long_seeds else 1,
                    "data_dir": args.data_dir,
                    "train_size": args.train_size,
                    "test_size": args.test_size,
                    "lr": lr,
                    "out": str(out / f"{model}-{algorithm}-s{seed}"),
                }
            )
    # Long runs first, so that the slowest work starts early.
    jobs.sort(key=lambda j: (-j["epochs"], j["seed"]))
    if args.report:
        found = [Path(j["out"]) / "results.json" for j in jobs]
        results = [json.loads(p.read_text()) for p in found if p.exists()]
        results = [r for r in results if r["history"]]
        if not results:
            parser.error(f"no finished epoch under {str(out)!r} yet")
    elif args.jobs > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(run_one, jobs))
    else:
        results = [run_one(j) for j in jobs]
    summary = summarise(results, args.epochs, out)
    print(summary["markdown"])
    print(f"wrote {out / 'results.md'}, {out / 'results.json'} and {out / 'accuracy.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
