"""Run ngspice on a deck and read its results back as numpy arrays.

:func:`run_ngspice` writes the deck (less its ``.print`` lines) into a temporary folder, runs
``ngspice -b -r out.raw deck.cir`` (batch mode, binary raw file), and parses
the operating point (``.op``) and the transient waveforms (``.tran``) into an
:class:`NgspiceResult` keyed by aeplab node names (V; time in s).

Errors are specific:

* :class:`NgspiceNotFound`: no ngspice executable (``apt-get install ngspice``);
* :class:`NgspiceConvergenceError`: ngspice ran but an analysis did not
  converge (no operating point, time step too small, …);
* :class:`NgspiceError`: anything else ngspice reported (its messages shown).

The executable is ``ngspice`` on ``PATH`` unless ``executable=`` or the
environment variable ``AEPLAB_NGSPICE`` names another.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from circuits import Circuit
from circuits.spice import Deck, Transient, to_spice

__all__ = [
    "NgspiceConvergenceError",
    "NgspiceError",
    "NgspiceNotFound",
    "NgspiceResult",
    "RawPlot",
    "find_ngspice",
    "parse_raw",
    "run_ngspice",
    "spice_operating_point",
    "spice_transient",
]


class NgspiceNotFound(RuntimeError):
    """The ngspice executable cannot be found."""


class NgspiceError(RuntimeError):
    """ngspice failed; ``log`` holds everything it printed."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class NgspiceConvergenceError(NgspiceError):
    """ngspice ran, but an analysis did not converge."""


_CONVERGENCE = re.compile(
    r"(no convergence|iteration limit|timestep too small|singular matrix|gmin stepping failed|"
    r"source stepping failed|transient op failed|dc solution failed|did not converge)",
    re.IGNORECASE,
)


_PRINT = re.compile(r"^\.print\b.*(\n|$)", re.IGNORECASE | re.MULTILINE)
_OPTRAN = re.compile(r"transient op started", re.IGNORECASE)


def find_ngspice(executable: str | None = None) -> str:
    """The path of the ngspice executable.

    Parameters
    ----------
    executable
        A name on ``PATH`` or a path; default ``$AEPLAB_NGSPICE`` or ``ngspice``.

    Raises
    ------
    NgspiceNotFound
        With how to install it.
    """
    name = executable or os.environ.get("AEPLAB_NGSPICE") or "ngspice"
    path = shutil.which(name)
    if path is None:
        raise NgspiceNotFound(
            f"ngspice was not found (looked for {name!r} on PATH). Install it, e.g. "
            "`apt-get install ngspice` (Debian/Ubuntu), `brew install ngspice` (macOS), "
            "or pass executable= / set AEPLAB_NGSPICE to its path."
        )
    return path


@dataclass
class RawPlot:
    """One analysis from an ngspice raw file.

    Attributes
    ----------
    name : str
        ngspice's plot name, e.g. ``"Operating Point"``, ``"Transient Analysis"``.
    variables : list of str
        Vector names as ngspice writes them (``time``, ``v(node)``, ``i(vsrc)``).
    data : ndarray (points, variables)
    """

    name: str
    variables: list[str]
    data: np.ndarray

    def vector(self, name: str) -> np.ndarray:
        return self.data[:, self.variables.index(name)]


def parse_raw(raw: bytes) -> list[RawPlot]:
    """Parse an ngspice raw file (binary or ASCII, real data) into its plots."""
    plots, pos = [], 0
    while pos < len(raw):
        header: dict[str, str] = {}
        names: list[str] = []
        while True:
            end = raw.find(b"\n", pos)
            if end < 0:
                if raw[pos:].strip():
                    raise NgspiceError("truncated ngspice raw file")
                return plots
            line = raw[pos:end].decode("latin-1")
            pos = end + 1
            if not line.strip():
                continue
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "Variables":
                nvar = int(header["No. Variables"])
                if value.strip():  # first variable on the same line
                    names.append(value.split()[1].lower())
                while len(names) < nvar:
                    end = raw.index(b"\n", pos)
                    fields = raw[pos:end].decode("latin-1").split()
                    pos = end + 1
                    if fields:
                        names.append(fields[1].lower())
                continue
            if key in ("Binary", "Values"):
                npts = int(header["No. Points"])
                flags = header.get("Flags", "real").lower()
                if "complex" in flags:
                    raise NgspiceError("complex (AC) raw data is not supported")
                nvar = len(names)
                if key == "Binary":
                    size = 8 * npts * nvar
                    data = np.frombuffer(raw[pos : pos + size], dtype="<f8").reshape(npts, nvar).copy()
                    pos += size
                else:
                    values: list[float] = []
                    while len(values) < npts * nvar:
                        end = raw.find(b"\n", pos)
                        end = len(raw) if end < 0 else end
                        fields = raw[pos:end].decode("latin-1").split()
                        pos = end + 1
                        if not fields:
                            continue
                        values.append(float(fields[-1]))
                    data = np.array(values).reshape(npts, nvar)
                plots.append(RawPlot(header.get("Plotname", ""), names, data))
                break
            header[key] = value.strip()
    return plots


@dataclass
class NgspiceResult:
    """What ngspice computed, keyed by aeplab node names.

    Attributes
    ----------
    op : dict or None
        Node → stationary voltage (V) from ``.op``, free and clamped nodes.
    time : ndarray or None
        Transient time points (s), starting at 0 (the initial state is
        prepended when ngspice omits it, as it does with ``uic``).
    tran : dict
        Node → voltage waveform (V) on ``time``.
    currents : dict
        Branch currents ngspice reports (``i(vx1)`` …), per analysis
        ``{"op": {...}, "tran": {...}}`` (A; SPICE convention: into the
        source's positive terminal).
    log : str
        ngspice's output.
    wall_time : float
        Seconds for the whole ngspice run (start-up, parsing, analyses).
    analysis_time : float or None
        ngspice's own "Total analysis time" (s), when it reports it.
    nodes : list of str
        The free nodes of the circuit, in state order.
    """

    op: dict[str, float] | None
    time: np.ndarray | None
    tran: dict[str, np.ndarray]
    currents: dict[str, dict]
    log: str
    wall_time: float
    analysis_time: float | None
    nodes: list[str] = field(default_factory=list)

    def op_state(self, nodes: list[str] | None = None) -> np.ndarray:
        """Stationary voltages (V) of ``nodes`` (default: the free nodes, in state order)."""
        if self.op is None:
            raise ValueError("this deck had no .op analysis")
        return np.array([self.op[n] for n in (nodes or self.nodes)])

    def tran_states(self, nodes: list[str] | None = None) -> np.ndarray:
        """Transient voltages ``(len(time), len(nodes))`` (V)."""
        if self.time is None:
            raise ValueError("this deck had no .tran analysis")
        return np.stack([self.tran[n] for n in (nodes or self.nodes)], axis=1)


def _tail(log: str, lines: int = 25) -> str:
    keep = [ln for ln in log.splitlines() if ln.strip()]
    return "\n".join(keep[-lines:])


def _errors(log: str) -> list[str]:
    return [ln.strip() for ln in log.splitlines() if re.search(r"\berror\b", ln, re.IGNORECASE)]


def run_ngspice(
    deck: Deck | str,
    *,
    executable: str | None = None,
    timeout: float = 120.0,
    workdir: str | os.PathLike | None = None,
) -> NgspiceResult:
    """Run ngspice in batch mode on ``deck`` and parse its results.

    Parameters
    ----------
    deck
        A :class:`~circuits.spice.Deck` (results keyed by aeplab names) or
        deck text (results keyed by SPICE names).
    executable
        ngspice executable; see :func:`find_ngspice`.
    timeout
        Seconds before ngspice is stopped.
    workdir
        Keep the deck, raw file and log in this folder instead of a
        temporary one.

    Returns
    -------
    NgspiceResult

    Raises
    ------
    NgspiceNotFound, NgspiceConvergenceError, NgspiceError
    """
    exe = find_ngspice(executable)
    text = deck.text if isinstance(deck, Deck) else str(deck)
    text = _PRINT.sub("", text)  # results come from the raw file; printed tables only cost time
    with tempfile.TemporaryDirectory(prefix="aeplab-ngspice-") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cir, raw = folder / "deck.cir", folder / "out.raw"
        cir.write_text(text, encoding="utf-8")
        if raw.exists():
            raw.unlink()
        env = {**os.environ, "SPICE_ASCIIRAWFILE": "0"}
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [exe, "-b", "-r", str(raw), str(cir)],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired as err:
            out = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            raise NgspiceError(f"ngspice did not finish within {timeout:g} s", out) from None
        wall = time.perf_counter() - start
        log = (proc.stdout or "") + (proc.stderr or "")
        if workdir is not None:
            (folder / "ngspice.log").write_text(log, encoding="utf-8")
        plots = parse_raw(raw.read_bytes()) if raw.exists() else []
    return _result(deck, plots, log, wall, proc.returncode)


def _result(deck, plots: list[RawPlot], log: str, wall: float, rc: int) -> NgspiceResult:
    wanted = deck.analyses if isinstance(deck, Deck) else ()
    if not isinstance(deck, Deck):
        low = deck.lower()
        wanted = tuple(a for a, key in (("op", "\n.op"), ("tran", "\n.tran")) if key in low)
    by_name = {p.name.lower(): p for p in plots}
    op_plot = by_name.get("operating point")
    tran_plot = by_name.get("transient analysis")
    missing = [a for a, p in (("op", op_plot), ("tran", tran_plot)) if a in wanted and p is None]
    if isinstance(deck, Deck) and tran_plot is not None and deck.transient is not None:
        t = tran_plot.vector("time")
        if len(t) == 0 or t[-1] < float(deck.transient.stop) * (1 - 1e-9):
            missing.append("tran")
    errors = _errors(log)
    if "op" in wanted and op_plot is not None and _OPTRAN.search(log):
        raise NgspiceConvergenceError(
            "ngspice did not converge to an operating point: Newton iteration, gmin stepping and source "
            "stepping failed, and its last resort ('transient op', a short transient) does not give a "
            f"stationary state. ngspice said:\n{_tail(log)}",
            log,
        )
    if missing or (rc != 0 and not plots):
        what = ", ".join(f".{a}" for a in missing) or "the analyses"
        if _CONVERGENCE.search(log):
            raise NgspiceConvergenceError(f"ngspice did not converge ({what} failed). ngspice said:\n{_tail(log)}", log)
        detail = "\n".join(errors) if errors else _tail(log)
        raise NgspiceError(f"ngspice failed (exit status {rc}, {what} produced no results):\n{detail}", log)

    def rename(name: str) -> str | None:
        if not (name.startswith("v(") and name.endswith(")")):
            return None
        spice = name[2:-1]
        if isinstance(deck, Deck):
            return deck.nodes.to_aeplab.get(spice)
        return spice

    def split(plot: RawPlot):
        volts, amps = {}, {}
        for k, name in enumerate(plot.variables):
            node = rename(name)
            if node is not None:
                volts[node] = plot.data[:, k]
            elif name != "time":
                amps[name] = plot.data[:, k]
        return volts, amps

    op = tran = None
    t = None
    currents: dict[str, dict] = {}
    if op_plot is not None:
        volts, amps = split(op_plot)
        op = {k: float(v[0]) for k, v in volts.items()}
        currents["op"] = {k: float(v[0]) for k, v in amps.items()}
    tran = {}
    if tran_plot is not None:
        volts, amps = split(tran_plot)
        t = tran_plot.vector("time").copy()
        if isinstance(deck, Deck) and deck.x0 is not None and (len(t) == 0 or t[0] > 0):
            x0 = dict(zip(deck.free_nodes, deck.x0))
            first = {k: x0.get(k, v[0]) for k, v in volts.items()}
            volts = {k: np.concatenate([[first[k]], v]) for k, v in volts.items()}
            amps = {k: np.concatenate([[v[0]], v]) for k, v in amps.items()}
            t = np.concatenate([[0.0], t])
        tran = volts
        currents["tran"] = amps
    m = re.search(r"Total analysis time \(seconds\)\s*=\s*([0-9.eE+-]+)", log)
    return NgspiceResult(
        op=op,
        time=t,
        tran=tran,
        currents=currents,
        log=log,
        wall_time=wall,
        analysis_time=float(m.group(1)) if m else None,
        nodes=list(deck.free_nodes) if isinstance(deck, Deck) else [],
    )


def spice_operating_point(circuit: Circuit, *, executable: str | None = None, **deck_options) -> np.ndarray:
    """The stationary free-node voltages (V) of ``circuit`` computed by ngspice ``.op``.

    ``deck_options`` go to :func:`circuits.spice.to_spice` (``inputs``,
    ``nodeset``, ``options``, ``sources``).
    """
    deck = to_spice(circuit, op=True, **deck_options)
    return run_ngspice(deck, executable=executable).op_state()


def spice_transient(
    circuit: Circuit, x0, step: float, stop: float, *, executable: str | None = None, **deck_options
) -> tuple[np.ndarray, np.ndarray]:
    """ngspice ``.tran`` of ``circuit`` from free-node voltages ``x0`` (V).

    Returns
    -------
    t : ndarray (T,)
        Times (s), from 0 to ``stop``.
    x : ndarray (T, n)
        Free-node voltages (V), state order.
    """
    deck = to_spice(circuit, op=False, tran=Transient(step, stop, x0), **deck_options)
    res = run_ngspice(deck, executable=executable)
    return res.time, res.tran_states()
