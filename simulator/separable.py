"""Separable decomposition of a two-terminal law, for dense blocks.

A dense block of elements between row nodes ``r`` and column nodes ``c`` is
fast when each element's current is a sum of separable terms

    i_r = Σ_k  c_k · w_k · a_k(v_c) · b_k(v_r)

with ``w_k`` one of the element's own parameters, appearing linearly: the
block's current into all rows is then ``Σ_k c_k b_k(v_r) ⊙ (W_k a_k(v_c))``,
one matrix product per distinct ``(w_k, a_k)``.  This module finds that form
symbolically; a law that does not separate returns ``None`` and the compiler
falls back to broadcasting over all element pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

__all__ = ["SeparableTerm", "separate"]


@dataclass(frozen=True)
class SeparableTerm:
    """``param · drive(v_in) · gain(v_out)``: one product term of a current.

    ``drive`` depends only on the voltage of the *other* terminal (the one the
    current does not flow into), ``gain`` only on the voltage of the terminal
    receiving the current.  Constant factors are folded into ``gain``.
    """

    param: str
    drive: sp.Expr
    gain: sp.Expr


def _split_product(term: sp.Expr, v_out: sp.Symbol, v_in: sp.Symbol, params: set[sp.Symbol]):
    """Return (param, drive, gain) for one product, or None if it mixes."""
    param, drive, gain = None, sp.Integer(1), sp.Integer(1)
    for factor in sp.Mul.make_args(term):
        syms = factor.free_symbols
        ps = syms & params
        if ps:
            if factor in params and param is None:
                param = factor
                continue
            return None
        if syms <= {v_in}:
            drive *= factor
        elif syms <= {v_out}:
            gain *= factor
        else:
            return None
    if param is None:
        return None
    # Move constants into gain so drives match across terms.
    const, rest = drive.as_independent(v_in, as_Add=False)
    return param, rest, gain * const


def separate(expr: sp.Expr, v_out: sp.Symbol, v_in: sp.Symbol, params) -> list[SeparableTerm] | None:
    """Decompose the current ``expr`` flowing into the ``v_out`` terminal.

    Parameters
    ----------
    expr
        The current into the ``v_out`` terminal.
    v_out, v_in
        Voltage symbols of the receiving and the other terminal.
    params
        The element's parameter symbols.

    Returns
    -------
    list of SeparableTerm or None
        Terms whose sum is ``expr`` (terms sharing ``param`` and ``drive`` are
        merged into one), or ``None`` when ``expr`` is not a sum of products
        linear in exactly one parameter.
    """
    params = set(params)
    expr = sp.sympify(expr)
    if expr == 0:
        return []
    found: dict[tuple, sp.Expr] = {}
    pending = list(sp.Add.make_args(expr))
    expanded = set()
    while pending:
        term = pending.pop()
        split = _split_product(term, v_out, v_in, params)
        if split is None:
            if term in expanded:
                return None
            more = sp.Add.make_args(sp.expand(term))
            expanded.update(more)
            pending.extend(more)
            continue
        param, drive, gain = split
        key = (param, drive)
        found[key] = found.get(key, sp.Integer(0)) + gain
    # Factoring and expanding are identities, so the terms sum to expr exactly.
    return [SeparableTerm(str(p), d, g) for (p, d), g in found.items() if sp.simplify(g) != 0]
