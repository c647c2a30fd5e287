"""How a circuit *learns*: phases, gradient estimates, local updates, training.

The algorithms of ALGORITHMS.md — the exact reference gradient, EP, VF, AEP
and Dyadic EP — work on any compiled system (:mod:`learning.algorithms`);
every element group computes its own update from its own terminals
(:mod:`learning.local`), which :mod:`learning.locality` checks symbolically.
"""

from .algorithms import (
    ALGORITHMS,
    Estimate,
    NotApplicable,
    aep,
    compare,
    dyadic,
    ep,
    estimate,
    finite_difference_gradient,
    free_phase,
    reference_gradient,
    vf,
)
from .locality import check_locality
from .models import build_model, feedforward, layered, rate
from .train import TrainConfig, Trainer, train

__all__ = [
    "ALGORITHMS",
    "Estimate",
    "NotApplicable",
    "TrainConfig",
    "Trainer",
    "aep",
    "build_model",
    "check_locality",
    "compare",
    "dyadic",
    "ep",
    "estimate",
    "feedforward",
    "finite_difference_gradient",
    "free_phase",
    "layered",
    "rate",
    "reference_gradient",
    "train",
    "vf",
]
