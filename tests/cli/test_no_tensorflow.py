"""Every CLI answers ``--help`` and refuses a bad flag before TensorFlow is imported.

Each case runs the command in a child process through runpy (as ``python -m`` and
``python SCRIPT`` do) and prints afterwards whether ``tensorflow`` (or ``tf_keras``,
``tensorflow_model_optimization``, ``ai_edge_litert``) is in ``sys.modules``. No timing:
``benchmarks/bench_cli.py`` measures how fast the answer comes.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
HEAVY = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "ai_edge_litert")
MARK = "HEAVY-MODULES:"
WRAPPER = f"""
import runpy, sys
target = sys.argv[1]
sys.argv = [target] + sys.argv[2:]
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
finally:
    print({MARK!r}, [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)
"""

# (command, a bad flag, the text its one line must hold: the bad value)
CLIS = {
    "tfresnet.train": (["--epochs", "0"], "Received: 0"),
    "tfresnet.profile": (["resnet20", "--alpha", "wide"], "Received: 'wide'"),
    "export.tflite": (["--strategy", "bogus"], "invalid choice: 'bogus'"),
    "export.compare": (["--threads", "0"], "Received: 0"),
    "export.metadata": ([""], "Received: ''"),
    "export.debug": (["run", "--images", "0"], "Received: 0"),
    "experiments": (["degradation", "--seed", "-1"], "Received: -1"),
    "benchmarks/bench_int8.py": (["--rounds", "0"], "Received: 0"),
    "benchmarks/bench_formats.py": (["--formats", "int4"], "Received: int4"),
    "benchmarks/bench_train.py": (["--epochs", "1"], "Received: 1"),
    "benchmarks/bench_transfer.py": (["--seed", "x"], "Received: 'x'"),
    "benchmarks/transfer_quality.py": (["--per-class", "3"], "Received: 3"),
}
EXTRA_REFUSALS = [  # checks across flags and choices, still before TensorFlow
    ("tfresnet.train", ["--strategy", "bogus"], "invalid choice: 'bogus'"),
    ("tfresnet.train", ["--worker-timeout", "5"], "Received: --worker-timeout=5"),
    ("tfresnet.train", ["--steps-per-epoch", "12", "--steps-per-execution", "5"],
     "Received: --steps-per-execution=5"),
    ("export.tflite", ["--strategy", "multiworker"], "Received: --strategy=multiworker"),
    ("export.tflite", ["--alpha", "0"], "Received: --alpha=0"),  # ExportConfig's bounds
    ("export.tflite", ["--res", "0"], "Received: --res=0"),
    ("export.compare", ["--calibration", "0"], "Received: 0"),
    ("export.metadata", ["missing.tflite"], "no such model file: 'missing.tflite'"),
    ("experiments", ["bogus"], "invalid choice: 'bogus'"),
    ("experiments", ["degradation", "--depths", "20", "99999"], "Received: 99999"),
]


def run(target, argv, cwd):
    """(exit status, stdout, stderr without the marker line, heavy modules imported)."""
    path = str(REPO / target) if target.endswith(".py") else target
    proc = subprocess.run([sys.executable, "-c", WRAPPER, path, *argv], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    lines = proc.stderr.splitlines()
    marks = [line for line in lines if line.startswith(MARK)]
    assert len(marks) == 1, proc.stderr
    heavy = eval(marks[0].removeprefix(MARK))  # noqa: S307 - our own list literal
    err = "\n".join(line for line in lines if not line.startswith(MARK))
    return proc.returncode, proc.stdout, err, heavy


def _all(cases, tmp_path):
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda case: run(case[0], case[1], tmp_path), cases))


def test_help_imports_no_tensorflow(tmp_path):
    cases = [(target, ["--help"]) for target in CLIS]
    for (target, _), (status, out, err, heavy) in zip(cases, _all(cases, tmp_path)):
        assert (status, heavy) == (0, []), (target, status, heavy, err)
        assert out.startswith("usage: "), (target, out[:200])
        assert err == "", (target, err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cases", ["one a CLI", "across flags"])
def test_bad_flag_is_refused_before_tensorflow(tmp_path, cases):
    cases = ([(target, *case) for target, case in CLIS.items()] if cases == "one a CLI"
             else EXTRA_REFUSALS)
    results = _all([(target, argv) for target, argv, _ in cases], tmp_path)
    for (target, argv, text), (status, out, err, heavy) in zip(cases, results):
        assert (status, heavy) == (2, []), (target, argv, status, heavy, err)
        assert len(err.splitlines()) == 1 and ": error: " in err, (target, err)
        assert text in err, (target, err)
        assert "Traceback" not in err and out == "", (target, err, out)
    assert list(tmp_path.iterdir()) == []


def test_every_cli_is_covered():
    """Each entry module and benchmark script has a case here."""
    scripts = {f"benchmarks/{p.name}" for p in (REPO / "benchmarks").glob("*.py")}
    assert scripts - {"benchmarks/bench_cli.py", "benchmarks/__init__.py"} <= set(CLIS)
