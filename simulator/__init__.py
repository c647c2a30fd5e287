"""What a circuit *does*: equations of motion, compiled kernels, settling, plots.

Sign convention: currents positive into a node; ``C dv/dt = f(v)``.
"""

from .compiled import Bound, CompiledSystem, Linearization, compile_circuit
from .costs import COSTS, Cost, CrossEntropy, SquaredError, get_cost
from .equations import Equations, derive
from .settle import METHODS, SettleResult, Trajectory, settle, time_scale

__all__ = [
    "Bound",
    "COSTS",
    "CompiledSystem",
    "Cost",
    "CrossEntropy",
    "Equations",
    "Linearization",
    "METHODS",
    "SettleResult",
    "SquaredError",
    "Trajectory",
    "compile_circuit",
    "derive",
    "get_cost",
    "settle",
    "time_scale",
]
