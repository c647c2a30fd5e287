"""The example scripts a newcomer copies from run as written and print what they promise.

They run as ``python examples/NAME.py`` would, from the repository root, so that the
script's own folder leads ``sys.path`` (as it does for a user)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from test_cli import _env

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, f"examples/{script}"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quickstart():
    out = _run("quickstart.py")
    assert "C_a·dv_a/dt" in out and "non-reciprocal elements: ['Wax', 'Wba']" in out
    assert " converged " in out
    errors = dict(re.findall(r"(\w+): relative error (\S+)", out))
    assert float(errors["aep"]) < 1e-5 and float(errors["dyadic"]) < 1e-10
    assert float(errors["vf"]) > 1e-2  # VF's bias on a non-reciprocal circuit
    costs = [float(c) for c in re.findall(r"step \d+: cost (\S+)", out)]
    assert len(costs) >= 2 and costs[-1] < costs[0] / 2  # local AEP updates lower the cost


def test_custom_element():
    out = _run("custom_element.py")
    assert "'D': True" in out  # the diode's law is reciprocal (a two-terminal conductance)
    assert "D (diode): local" in out
    assert "S (spy): NON-LOCAL, reads n" in out
