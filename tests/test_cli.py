"""The ``aeplab`` command line: every subcommand on the example netlists, exit codes,
JSON output, figures, training with resume, the demo and the paper's example script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from learning.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "circuits").glob("*.net"))
TWO_NEURONS = ROOT / "examples" / "circuits" / "two_neurons.net"
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
needs_mnist = pytest.mark.skipif(
    not MNIST.is_dir(), reason=f"the real MNIST files are not available (looked in {MNIST})"
)

# A stable limit cycle around an unstable focus at the origin: self-excitation 2·tanh on
# each node and a ±4·tanh rotation between them (J at 0 has eigenvalues 1 ± 4i).
LIMIT_CYCLE = """\
node a C=1 g=1
node b C=1 g=1
vccs Saa a a w=2 act=tanh
vccs Sbb b b w=2 act=tanh
vccs Wab a b w=-4 act=tanh
vccs Wba b a w=4 act=tanh
"""


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys, *argv) -> tuple[int, dict]:
    rc, out, _ = run(capsys, *argv)
    return rc, json.loads(out)


def _env() -> dict:
    """The environment for child processes: one BLAS thread unless the caller chose otherwise
    (the test machine is small and shared; oversubscribed BLAS threads slow numpy down a lot)."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


# -- derive ----------------------------------------------------------------------------------


@pytest.mark.parametrize("netlist", EXAMPLES, ids=lambda p: p.stem)
def test_derive_every_example(capsys, netlist):
    rc, out, err = run(capsys, "derive", netlist)
    assert rc == 0, err
    assert "Equations of motion" in out and "dv_" in out
    rc, out, err = run(capsys, "derive", netlist, "--latex")
    assert rc == 0, err
    assert r"\begin{aligned}" in out and r"\dot" in out
    rc, d = run_json(capsys, "derive", netlist, "--json")
    assert rc == 0
    assert {"nodes", "equations", "reciprocal", "nonreciprocal_elements"} <= set(d)
    assert len(d["equations"]) == len(d["nodes"]) > 0


def test_derive_json_two_neurons(capsys):
    rc, d = run_json(capsys, "derive", TWO_NEURONS, "--json")
    assert rc == 0
    assert d["nodes"] == ["h1", "h2"]
    assert d["nonreciprocal_elements"] == ["U1", "W21"]
    assert d["reciprocal"]["K12"] is True and d["reciprocal"]["W21"] is False
    assert d["conservative"] is False


def test_derive_text_marks_non_reciprocal_elements(capsys):
    rc, out, _ = run(capsys, "derive", TWO_NEURONS)
    assert rc == 0
    assert "NON-RECIPROCAL" in out and "Conservative (A ≡ 0): no" in out


# -- settle ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ode", "relax", "newton"])
def test_settle_each_method(capsys, method):
    rc, d = run_json(capsys, "settle", TWO_NEURONS, "--method", method, "--json")
    assert rc == 0
    assert d["converged"] is True and d["method"] == method
    assert set(d["state"]) == {"h1", "h2"}
    assert all(isinstance(v, float) for v in d["state"].values())
    assert d["residual"] <= d["tol"] == 1e-8
    # the three methods agree on the stationary state
    assert d["state"]["h1"] == pytest.approx(0.74995984, abs=1e-7)
    assert d["state"]["h2"] == pytest.approx(0.59448483, abs=1e-7)


@pytest.mark.parametrize("netlist", EXAMPLES, ids=lambda p: p.stem)
def test_settle_every_example(capsys, netlist):
    rc, d = run_json(capsys, "settle", netlist, "--json")
    assert rc == 0 and d["converged"] is True
    assert None not in d["state"].values()


def test_settle_plot_writes_pngs(capsys, tmp_path):
    plot = tmp_path / "two.png"
    rc, d = run_json(capsys, "settle", TWO_NEURONS, "--plot", plot, "--json")
    assert rc == 0
    assert _is_png(plot) and d["plot"] == str(plot)
    phase = tmp_path / "two_phase.png"
    assert _is_png(phase) and d["phase_portrait"] == str(phase)

    three = tmp_path / "ladder.png"
    rc, out, _ = run(capsys, "settle", ROOT / "examples" / "circuits" / "resistor_network.net", "--plot", three)
    assert rc == 0 and f"wrote {three}" in out
    assert _is_png(three)
    assert not (tmp_path / "ladder_phase.png").exists()  # phase portraits only for two nodes


def test_settle_reports_a_limit_cycle(capsys, tmp_path):
    netlist = tmp_path / "limit_cycle.net"
    netlist.write_text(LIMIT_CYCLE)
    rc, out, _ = run(capsys, "settle", netlist, "--x0", "0.1,0", "--json")
    assert rc == 1
    d = json.loads(out)
    assert d["converged"] is False
    assert d["reason"]
    assert d["state"] == {"a": None, "b": None}  # no stationary state is claimed
    assert d["residual"] > 1e-3
    rc, out, _ = run(capsys, "settle", netlist, "--x0", "0.1,0")
    assert rc == 1 and "did NOT settle" in out


# -- train -----------------------------------------------------------------------------------

TRAIN = ["train", "--dataset", "embedded", "--train-size", 300, "--test-size", 100, "--hidden", 16, "--json"]


def test_train_json_and_resume(capsys, tmp_path):
    rc, d = run_json(capsys, *TRAIN, "--epochs", 1, "--out", tmp_path)
    assert rc == 0
    assert 0 <= d["test_accuracy"] <= 1
    assert len(d["history"]) == 1
    for entry in d["history"]:
        assert {"epoch", "train_accuracy", "test_accuracy", "seconds"} <= set(entry)
    assert d["history"][0]["epoch"] == 1 and d["history"][0]["test_accuracy"] == d["test_accuracy"]
    assert d["dataset"] == {"name": "embedded", "n_train": 300, "n_test": 100}
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.npz", "config.json", "results.json"}

    rc, resumed = run_json(capsys, *TRAIN, "--epochs", 2, "--out", tmp_path, "--resume", tmp_path)
    assert rc == 0
    assert resumed["epochs_done"] == 2
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == d["history"][0]  # carried over from the checkpoint
    assert json.loads((tmp_path / "results.json").read_text())["epochs_done"] == 2


def test_train_per_layer_learning_rates(capsys):
    rc, d = run_json(capsys, *TRAIN, "--epochs", 1, "--lr", "W1=0.1", "W2=0.02", "default=0.05")
    assert rc == 0
    assert d["config"]["lr"] == {"W1": 0.1, "W2": 0.02, "default": 0.05}
    rc, d = run_json(capsys, *TRAIN, "--epochs", 1, "--lr", "0.03")
    assert rc == 0 and d["config"]["lr"] == {"default": 0.03}
    rc, out, err = run(capsys, *TRAIN, "--epochs", 1, "--lr", "W7=0.1", "default=0.05")
    assert rc == 2 and "W7" in err and "valid:" in err
    rc, out, err = run(capsys, *TRAIN, "--epochs", 1, "--lr", "W1=fast")
    assert rc == 2 and "'W1=fast'" in err and "ELEMENT=RATE" in err


def test_train_text_output(capsys, tmp_path):
    argv = [a for a in TRAIN if a != "--json"]
    rc, out, _ = run(capsys, *argv, "--model", "feedforward", "--epochs", 1, "--quiet", "--out", tmp_path)
    assert rc == 0
    assert "test accuracy" in out and "checkpoint.npz" in out


def test_train_mnist_needs_data_dir(capsys):
    rc, out, err = run(capsys, "train", "--dataset", "mnist", "--epochs", 1)
    assert rc == 2
    assert out == ""
    assert "--data-dir" in err and err.count("\n") == 1


def test_train_resume_from_a_missing_checkpoint(capsys, tmp_path):
    rc, _, err = run(capsys, *TRAIN, "--epochs", 1, "--resume", tmp_path / "nothing")
    assert rc == 2 and "no checkpoint" in err


# -- export-spice ----------------------------------------------------------------------------


def test_export_spice_stdout_and_file(capsys, tmp_path):
    rc, out, err = run(capsys, "export-spice", TWO_NEURONS)
    assert rc == 0, err
    assert ".op" in out and "Vx1 x1 0" in out
    deck = tmp_path / "two.cir"
    rc, out, err = run(capsys, "export-spice", TWO_NEURONS, "-o", deck)
    assert rc == 0, err
    text = deck.read_text()
    assert ".op" in text and "Vx1 x1 0" in text
    assert str(deck) in out


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["derive", "settle", "gradcheck", "locality", "export-spice"])
def test_missing_netlist(capsys, tmp_path, command):
    missing = tmp_path / "no_such_circuit.net"
    rc, out, err = run(capsys, command, missing)
    assert rc == 2
    assert str(missing) in err
    assert err.startswith(f"aeplab {command}: error:")


def test_netlist_path_is_a_folder(capsys, tmp_path):
    rc, _, err = run(capsys, "derive", tmp_path)
    assert rc == 2 and str(tmp_path) in err


@pytest.mark.parametrize("option", ["--dt", "--free-steps", "--nudge-steps"])
def test_train_refuses_zero_step_settings(capsys, option):
    rc, _, err = run(capsys, *TRAIN, "--epochs", 1, "--model", "feedforward", option, 0)
    assert rc == 2 and option.lstrip("-").replace("-", "_") in err


def test_unknown_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_subcommand(capsys):
    with pytest.raises(SystemExit):
        main([])


# -- demo and the paper's script ---------------------------------------------------------------


def test_demo(tmp_path):
    # In a child process (as a user runs it), with one BLAS thread: about 35 s on the 2-core test
    # machine, against about 6 minutes with OpenBLAS's default threads on that (busy) machine.
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "learning.cli", "demo", "--out", str(tmp_path), "--epochs", "1", "--quiet"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("settling.png", "phase_portrait.png", "gradient_error_vs_beta.png", "accuracy.png"):
        assert _is_png(tmp_path / name), name
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settling"]["converged"] is True
    assert results["nonreciprocal_elements"] == ["U1", "W21"]
    assert results["gradient_check"]["aep"]["rel_error"] < 1e-4
    assert len(results["training"]["history"]) == 1
    assert 0 <= results["training"]["test_accuracy"] <= 1
    print(f"demo took {time.perf_counter() - t0:.0f} s")


@needs_mnist
def test_paper_script_learning_rates(tmp_path):
    tiny = "--seeds 1 --long-seeds 1 --epochs 1 --train-size 200 --test-size 100 --hidden 8".split()
    argv = [sys.executable, "examples/mnist_paper.py", "--data-dir", str(MNIST), *tiny, "--out", str(tmp_path)]
    argv += ["--only", "feedforward:aep", "--lr", "W1=0.3", "default=0.1"]
    done = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((tmp_path / "feedforward-aep-s0" / "config.json").read_text())
    assert config["lr"] == {"W1": 0.3, "default": 0.1}
    assert json.loads((tmp_path / "results.json").read_text())["table"]["feedforward AEP"]["lr"] == config["lr"]
    bad = subprocess.run([*argv[:-2], "W1=fast"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "'W1=fast'" in bad.stderr


def test_paper_script_end_to_end(tmp_path):
    tiny = "--seeds 2 --long-seeds 1 --epochs 2 --train-size 300 --test-size 100 --hidden 16".split()
    argv = [sys.executable, "examples/mnist_paper.py", "--data-dir", str(MNIST), *tiny, "--out", str(tmp_path)]
    first = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _is_png(tmp_path / "accuracy.png")
    markdown = (tmp_path / "results.md").read_text()
    table = json.loads((tmp_path / "results.json").read_text())
    assert table["epochs"] == 2
    labels = ["layered EP", "layered VF", "layered AEP", "feedforward AEP", "feedforward DYADIC", "feedforward VF"]
    assert list(table["table"]) == labels
    for row in table["table"].values():
        assert row["epoch1"]["n"] == 2 and row["epoch2"]["n"] == 1
        assert row["model"] in markdown
    assert len(table["runs"]) == 12
    for run in table["runs"]:
        assert run["epochs_done"] == (2 if run["seed"] == 0 else 1) == len(run["history"])
        assert {"epoch", "train_accuracy", "test_accuracy", "seconds"} <= set(run["history"][0])
    aep0 = next(r for r in table["runs"] if (r["model"], r["algorithm"], r["seed"]) == ("layered", "aep", 0))
    mean = 100 * aep0["history"][1]["test_accuracy"]
    assert table["table"]["layered AEP"]["epoch2"]["mean"] == pytest.approx(mean)
    runs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(runs) == 12 and "layered-ep-s0" in runs and "feedforward-vf-s1" in runs
    assert json.loads((tmp_path / "layered-aep-s0" / "results.json").read_text())["epochs_done"] == 2
    assert json.loads((tmp_path / "layered-aep-s1" / "results.json").read_text())["epochs_done"] == 1
    assert first.stdout.count("done ") == 12

    # A rerun finds every run finished: it trains nothing and rewrites the same table.
    again = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "done " not in again.stdout
    assert json.loads((tmp_path / "results.json").read_text()) == table

    # --report trains nothing; with a long run cut short, it shows the epoch that run reached.
    report = subprocess.run([*argv, "--report"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert report.returncode == 0 and "done " not in report.stdout
    assert json.loads((tmp_path / "results.json").read_text()) == table
    ck = tmp_path / "layered-aep-s0" / "results.json"
    cut = json.loads(ck.read_text())
    cut["history"] = cut["history"][:1]
    ck.write_text(json.dumps(cut))
    subprocess.run([*argv, "--report"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600, check=True)
    row = json.loads((tmp_path / "results.json").read_text())["table"]["layered AEP"]
    assert row["epoch2"] is None and row["long"]["epoch"] == 1
    assert "at epoch 1: unfinished" in (tmp_path / "results.md").read_text()
    empty = subprocess.run(
        [*argv[:-1], str(tmp_path / "none"), "--report"], cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert empty.returncode == 2 and "no finished epoch" in empty.stderr
