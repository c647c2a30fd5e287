"""Transfer functions ρ(v): the nonlinearity of a transconductance or coupling.

A transfer function maps a node voltage (V) to a dimensionless activation.
Each is a sympy expression in one symbol, so every derivative the simulator
and the learning rules need is derived, not hand-written.  Register your own
with :func:`register_transfer`.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

__all__ = ["TRANSFER_FUNCTIONS", "register_transfer", "transfer", "transfer_names"]

_v = sp.Symbol("v", real=True)

TRANSFER_FUNCTIONS: dict[str, sp.Expr] = {
    "linear": _v,
    "tanh": sp.tanh(_v),
    "sigmoid": 1 / (1 + sp.exp(-_v)),
    # Inverse square root unit v/√(1+v²): like tanh (odd, slope 1 at 0, range
    # ±1) with algebraic tails.  In the gated Hopfield model the stationary
    # Jacobian −1 + ρ''(v)·v/ρ'(v) = −1 − 3v²/(1+v²) stays within [−4, −1]
    # however strong the drive, so fixed-step relaxation stays stable.
    "isru": _v / sp.sqrt(1 + _v**2),
    # clip(v, 0, 1), the hard sigmoid of Scellier & Bengio (2017).
    "hardsigmoid": sp.Piecewise((0, _v < 0), (_v, _v < 1), (1, True)),
}


def register_transfer(name: str, law: Callable[[sp.Symbol], sp.Expr]) -> None:
    """Register a transfer function under ``name``.

    Parameters
    ----------
    name
        Name used in netlists (``act=name``); letters, digits and ``_``.
    law
        Callable taking a real sympy symbol (the voltage, V) and returning a
        sympy expression of that symbol alone.
    """
    if not name.isidentifier():
        raise ValueError(f"transfer function name {name!r} must be an identifier")
    if name in TRANSFER_FUNCTIONS:
        raise ValueError(f"transfer function {name!r} is already registered")
    expr = sp.sympify(law(_v))
    extra = expr.free_symbols - {_v}
    if extra:
        raise ValueError(
            f"transfer function {name!r} depends on {sorted(map(str, extra))}; it may depend on its argument only"
        )
    TRANSFER_FUNCTIONS[name] = expr


def transfer_names() -> list[str]:
    """Names of the registered transfer functions."""
    return sorted(TRANSFER_FUNCTIONS)


def transfer(name: str) -> Callable[[sp.Expr], sp.Expr]:
    """Return ρ for ``name`` as a callable on sympy expressions.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the valid names.
    """
    try:
        expr = TRANSFER_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown transfer function {name!r}; valid: {', '.join(transfer_names())}") from None
    return lambda arg: expr.subs(_v, arg)
