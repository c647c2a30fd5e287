"""Errors and warnings raised while describing a circuit."""

from __future__ import annotations

import difflib

__all__ = ["CircuitError", "CircuitWarning", "did_you_mean"]


class CircuitError(ValueError):
    """A circuit description is invalid; the message names the culprit."""


class CircuitWarning(UserWarning):
    """A circuit is valid but probably not what was meant (e.g. singular)."""


def did_you_mean(name: str, candidates) -> str:
    """A ``"; did you mean 'x'?"`` suffix when a close candidate exists."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
