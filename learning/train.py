"""Training: minibatch epochs, local updates, metrics, atomic checkpoints, exact resume.

One training step on a minibatch ``(u, y)``:

1. bind the inputs and settle the free phase (``relax``: fixed steps ``dt``
   of the ``scheme`` (Euler or RK4), at most ``free_steps`` steps or until ``‖f‖∞ < tol``) → ``x₀``;
2. run the algorithm's learning phase(s) from ``x₀`` (``nudge_steps``);
3. every element group computes its own update from its own terminals
   (:mod:`learning.local`) and :class:`~learning.optim.SGD` applies it.

Phases that do not reach ``tol`` within their step budget are used as they
are — as a clocked analog emulator would — and counted: every epoch reports
the fraction of phases that converged.  A sample whose free or learning phase
did not settle within its budget is left out of the update (a device would not
learn from a measurement that never became stationary) and counted
(``dropped_samples``); an update whose estimate is not finite is skipped and
counted (``skipped_updates``).

Determinism: the model is initialised from ``seed`` and the minibatch order
of epoch ``e`` is drawn from ``(seed, e)``, so resuming from the checkpoint of
epoch ``e`` reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import json
import numbers
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from circuits import atomic_open, atomic_write
from simulator import compile_circuit, settle
from simulator.settle import SCHEMES

from .algorithms import ALGORITHMS, NotApplicable
from .datasets import Dataset, one_hot
from .models import build_model
from .optim import SGD

__all__ = ["MODEL_DEFAULTS", "TIED_LAYERED_DEFAULTS", "TrainConfig", "Trainer", "train"]


# Per-model defaults (see the README's notes on the MNIST experiment):
# layered — ρ = isru keeps each node's stationary stiffness within 4 /s (see
#   circuits/transfer.py); squared error on one-hot targets (cross-entropy
#   drives the outputs, and the h↔o feedback gain, without bound).  Budgets of
#   80 s (free) and 40 s (learning) of circuit time: trained networks have slow
#   modes; phases stop as soon as ‖f‖∞ < tol anyway.
#   Untied (VF, AEP, Dyadic): RK4 steps of 0.5 s.  Training drives eigenvalues
#   of C⁻¹J to about −1.2 ± 3.4i /s; the circuit still settles, but explicit
#   Euler then needs dt < 2|Re λ|/|λ|² ≈ 0.17 s (with Euler at 0.4 s the free
#   phase stopped settling at epoch 11 and AEP's accuracy fell from 96.9% to
#   11%); RK4's stability region reaches the imaginary axis.
#   Tied (EP): J is symmetric, its eigenvalues real, and Euler at 0.4 s is
#   stable while they lie in (−5, 0) /s: a third of RK4's evaluations.
# feedforward and rate — tanh, softmax cross-entropy on the output voltages;
#   with C = g = 1 an Euler step of 1 s solves each layer's leak exactly (the
#   rate network's h↔o feedback has slow modes: it gets larger step budgets).
MODEL_DEFAULTS = {
    "layered": {
        "act": "isru",
        "cost": "squared_error",
        "lr": lambda: {"default": 0.05},
        "scheme": "rk4",
        "dt": 0.5,
        "free_steps": 160,
        "nudge_steps": 80,
    },
    "feedforward": {
        "act": "tanh",
        "cost": "cross_entropy",
        "lr": lambda: {"default": 0.1},
        "scheme": "euler",
        "dt": 1.0,
        "free_steps": 10,
        "nudge_steps": 10,
    },
    "rate": {
        "act": "tanh",
        "cost": "cross_entropy",
        "lr": lambda: {"default": 0.05},
        "scheme": "euler",
        "dt": 1.0,
        "free_steps": 150,
        "nudge_steps": 75,
    },
}


# The tied layered network (EP's) relaxes along real eigenvalues only.
TIED_LAYERED_DEFAULTS = {"scheme": "euler", "dt": 0.4, "free_steps": 200, "nudge_steps": 100}


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved with every checkpoint).

    Attributes
    ----------
    model : {"layered", "feedforward", "rate"}
        See :mod:`learning.models`.  ``layered`` is tied (conservative) for
        EP and untied, initialised symmetric, for VF, AEP and Dyadic EP.
    hidden : list of int
        Hidden layer sizes.
    act : str
        Transfer function ρ (default per model, see ``MODEL_DEFAULTS``).
    algorithm : {"ep", "vf", "aep", "dyadic"}
    beta : float
        Nudging strength β.
    nudging : {"symmetric", "one-sided"}
    cost : {"squared_error", "cross_entropy"}
        Output cost on one-hot targets (default per model).
    epochs, batch_size, seed : int
    lr : dict
        Learning rate per element (``"W1"``, ``"b_h1"``, …) or ``"default"``
        (default per model).
    momentum : float
    scheme : {"euler", "rk4"}
        Integration scheme of the ``relax`` settling (default per model; the
        tied layered network, EP's, has its own, ``TIED_LAYERED_DEFAULTS``).
    dt : float
        Step (s) of the ``relax`` settling (default per model).
    free_steps, nudge_steps : int
        Step budgets of the free and learning phases (default per model; an
        RK4 step evaluates the currents four times).
    tol : float
        Residual (A) at which a phase stops early.
    init_gain : float
        Gain of the Glorot-uniform initialisation.
    dtype : {"float32", "float64"}
    eval_batch : int
        Batch size for evaluation.
    """

    model: str = "layered"
    hidden: list[int] = field(default_factory=lambda: [500])
    act: str | None = None
    algorithm: str = "aep"
    beta: float = 0.1
    nudging: str = "symmetric"
    cost: str | None = None
    epochs: int = 1
    batch_size: int = 100
    seed: int = 0
    lr: dict | None = None
    momentum: float = 0.9
    scheme: str | None = None
    dt: float | None = None
    free_steps: int | None = None
    nudge_steps: int | None = None
    tol: float = 1e-4
    init_gain: float = 1.0
    dtype: str = "float32"
    eval_batch: int = 1000

    def __post_init__(self):
        if self.model not in MODEL_DEFAULTS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODEL_DEFAULTS)}")
        defaults = dict(MODEL_DEFAULTS[self.model])
        if self.model == "layered" and self.algorithm == "ep":
            defaults.update(TIED_LAYERED_DEFAULTS)
        for key, value in defaults.items():
            if getattr(self, key) is None:
                setattr(self, key, value() if callable(value) else value)
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; valid: {', '.join(ALGORITHMS)}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be float64 or float32, got {self.dtype!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}")
        if self.nudging not in ("symmetric", "one-sided"):
            raise ValueError(f"nudging must be 'symmetric' or 'one-sided', got {self.nudging!r}")
        for name in ("epochs", "batch_size", "free_steps", "nudge_steps", "eval_batch"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("beta", "dt", "tol", "init_gain"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if isinstance(self.lr, (int, float)):
            self.lr = {"default": float(self.lr)}
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive layer sizes, got {self.hidden!r}")
        self.hidden = [int(h) for h in self.hidden]

    @property
    def model_name(self) -> str:
        if self.model == "layered":
            return "layered-tied" if self.algorithm == "ep" else "layered"
        return self.model

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(**d)


class Trainer:
    """Trains a model on a dataset with a local learning rule.

    Parameters
    ----------
    config
        The run's :class:`TrainConfig`.
    data
        A :class:`~learning.datasets.Dataset` (images in [0, 1], flattened).
    out
        Folder for ``config.json``, ``results.json`` and ``checkpoint.npz``
        (all written atomically after every epoch); ``None`` writes nothing.
    progress
        Show a progress bar with live loss and accuracy.
    """

    def __init__(self, config: TrainConfig, data: Dataset, out: str | Path | None = None, progress: bool = True):
        self.config = config
        self.data = data
        self.out = Path(out) if out is not None else None
        self.progress = progress
        sizes = [data.n_features, *config.hidden, int(max(data.y_train.max(), data.y_test.max())) + 1]
        self.circuit = build_model(config.model_name, sizes, act=config.act, seed=config.seed, gain=config.init_gain)
        self.system = compile_circuit(self.circuit, dtype=np.dtype(config.dtype), cost=config.cost)
        if config.algorithm == "ep" and not self.circuit.is_conservative:
            raise NotApplicable(
                f"EP needs a conservative model; {config.model!r} has non-reciprocal elements "
                f"{', '.join(self.circuit.nonreciprocal_elements[:5])} (use --model layered)"
            )
        self.optimizer = SGD(self.system, lr=config.lr, momentum=config.momentum)
        self.history: list[dict] = []
        self.epoch = 0
        self.n_classes = sizes[-1]
        # No eigenvalue check of each settled sample: relaxation only rests on an unstable
        # stationary point if it starts exactly there, and for a few hundred nodes the check
        # (one dense eigendecomposition per sample and phase) cost 3× the training itself.
        relax = {
            "method": "relax",
            "scheme": config.scheme,
            "dt": config.dt,
            "tol": config.tol,
            "check_stability": False,
        }
        self.free_options = {**relax, "max_steps": config.free_steps}
        self.nudge_options = {**relax, "max_steps": config.nudge_steps}

    # -- one minibatch ---------------------------------------------------------------
    def step(self, u: np.ndarray, labels: np.ndarray) -> dict:
        """One learning step on a minibatch; returns its free-phase loss, accuracy and convergence."""
        cfg, system = self.config, self.system
        y = one_hot(labels, self.n_classes, dtype=system.dtype)
        bound = system.bind(u)
        free = settle(bound, None, **self.free_options)
        x0 = free.final
        est = ALGORITHMS[cfg.algorithm](
            system,
            target=y,
            beta=cfg.beta,
            nudging=cfg.nudging,
            free=free,
            settle_options=self.nudge_options,
            bound=bound,
            drop_unsettled=True,
        )
        finite = all(np.all(np.isfinite(g)) for g in est.grads.values())
        if finite:
            self.optimizer.step(est.grads)
        # The free phase and every learning phase (the estimate's diagnostics list them all).
        phases = [d["converged"] for d in est.diagnostics.values() if isinstance(d, dict)]
        out = x0[:, system.outputs]
        return {
            "loss": float(np.mean(system.cost.value(out, y))),
            "correct": int(np.sum(system.cost.predict(out) == labels)),
            "converged": float(np.mean(phases)),
            "skipped": not finite,
            "dropped": est.diagnostics["dropped"],
        }

    # -- evaluation ------------------------------------------------------------------
    def evaluate(self, x: np.ndarray, labels: np.ndarray) -> dict:
        """Free-phase loss and accuracy on ``(x, labels)``."""
        system = self.system
        loss, correct, conv = 0.0, 0, 0.0
        bs = self.config.eval_batch
        for i in range(0, len(x), bs):
            u, lab = x[i : i + bs], labels[i : i + bs]
            res = settle(system.bind(u), None, **self.free_options)
            out = res.final[:, system.outputs]
            y = one_hot(lab, self.n_classes, dtype=system.dtype)
            loss += float(np.sum(system.cost.value(out, y)))
            correct += int(np.sum(system.cost.predict(out) == lab))
            conv += float(np.sum(res.converged))
        return {"loss": loss / len(x), "accuracy": correct / len(x), "converged": conv / len(x)}

    # -- epochs ----------------------------------------------------------------------
    def run_epoch(self) -> dict:
        cfg = self.config
        epoch = self.epoch + 1
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(self.data.n_train)
        x, labels = self.data.x_train.astype(self.system.dtype, copy=False), self.data.y_train
        n_batches = int(np.ceil(len(order) / cfg.batch_size))
        bar = _progress(n_batches, f"epoch {epoch}/{cfg.epochs} {cfg.algorithm}", self.progress)
        t0 = time.perf_counter()
        loss = correct = conv = 0.0
        seen = skipped = dropped = 0
        for b in range(n_batches):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            r = self.step(x[idx], labels[idx])
            seen += len(idx)
            loss += r["loss"] * len(idx)
            correct += r["correct"]
            conv += r["converged"]
            skipped += r["skipped"]
            dropped += r["dropped"]
            bar.update(1)
            bar.set_postfix(loss=f"{loss / seen:.4f}", acc=f"{100 * correct / seen:.2f}%")
        seconds = time.perf_counter() - t0
        bar.close()
        t1 = time.perf_counter()
        test = self.evaluate(self.data.x_test.astype(self.system.dtype, copy=False), self.data.y_test)
        record = {
            "epoch": epoch,
            "train_loss": loss / seen,
            "train_accuracy": correct / seen,
            "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
            "seconds": seconds,
            "eval_seconds": time.perf_counter() - t1,
            "converged": conv / n_batches,
            "test_converged": test["converged"],
            "skipped_updates": skipped,
            "dropped_samples": dropped,
        }
        self.epoch = epoch
        self.history.append(record)
        if self.out is not None:
            self.save()
        return record

    def fit(self) -> list[dict]:
        """Train until ``config.epochs``; returns the history."""
        while self.epoch < self.config.epochs:
            rec = self.run_epoch()
            if self.progress:
                print(
                    f"epoch {rec['epoch']}: train acc {100 * rec['train_accuracy']:.2f}%, "
                    f"test acc {100 * rec['test_accuracy']:.2f}%, {rec['seconds']:.1f} s, "
                    f"{100 * rec['converged']:.1f}% of phases converged",
                    flush=True,
                )
        return self.history

    # -- persistence -----------------------------------------------------------------
    def results(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {
            "config": self.config.to_dict(),
            "dataset": {"name": self.data.name, "n_train": self.data.n_train, "n_test": self.data.n_test},
            "model": self.circuit.name,
            "epochs_done": self.epoch,
            "test_accuracy": last.get("test_accuracy"),
            "history": self.history,
        }

    def save(self) -> None:
        """Write config, results and checkpoint to ``out`` atomically."""
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(self.out / "config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")
        arrays = {f"param/{k}": v for k, v in self.system.params.items()}
        arrays.update({f"velocity/{k}": v for k, v in self.optimizer.state_dict().items()})
        arrays["meta"] = np.array(
            json.dumps({"epoch": self.epoch, "history": self.history, "config": self.config.to_dict()})
        )
        with atomic_open(self.out / "checkpoint.npz", "wb") as fh:
            np.savez(fh, **arrays)
        # Results after the checkpoint: they never claim an epoch the checkpoint lacks.
        atomic_write(self.out / "results.json", json.dumps(self.results(), indent=2) + "\n")

    def load(self, path: str | Path) -> None:
        """Restore parameters, momentum, epoch and history from a checkpoint."""
        path = Path(path)
        if path.is_dir():
            path = path / "checkpoint.npz"
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
        with np.load(path, allow_pickle=False) as ck:
            meta = json.loads(str(ck["meta"]))
            saved = dict(meta["config"])
            saved.setdefault("scheme", "euler")  # checkpoints from before RK4 existed
            mine = self.config.to_dict()
            diff = [k for k in mine if k != "epochs" and saved.get(k) != mine[k]]
            if diff:
                raise ValueError(f"checkpoint {str(path)!r} was made with a different configuration: {diff}")
            params = {k[len("param/") :]: ck[k] for k in ck.files if k.startswith("param/")}
            velocity = {k[len("velocity/") :]: ck[k] for k in ck.files if k.startswith("velocity/")}
        self.system.set_params(params)
        self.optimizer.load_state_dict(velocity)
        self.epoch = int(meta["epoch"])
        self.history = list(meta["history"])


def train(
    config: TrainConfig,
    data: Dataset,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
) -> Trainer:
    """Train ``config`` on ``data`` (resuming from a checkpoint if given); returns the trainer."""
    trainer = Trainer(config, data, out=out, progress=progress)
    if resume is not None:
        trainer.load(resume)
    trainer.fit()
    return trainer


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
