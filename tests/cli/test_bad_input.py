"""Bad input at the process level, over every CLI: the real stderr, unfiltered.

Each case runs the command in a fresh folder and checks the package's promise: exactly
one line on stderr naming the problem, exit status 2, no traceback, and the folder
exactly as it was (no output created). The cases run concurrently. The model file
with code in it is given to one real command and to the other loaders in this process.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from export import compare, tflite
from helpers.cli_refusal import refused
from tfresnet import train

REPO = pathlib.Path(__file__).resolve().parents[2]
# The user's environment: no TF log settings, no TF_CONFIG unless a case sets one.
ENV = {k: v for k, v in os.environ.items()
       if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFRESNET_TF_LOGS", "TF_CONFIG")}
ENV["PYTHONPATH"] = os.pathsep.join(
    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def listing(folder) -> dict:
    """Every path under ``folder`` with its size and modification time."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            out[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
    return out


def run(argv, cwd, timeout=300, env=None):
    """(exit status, stderr, seconds, peak RSS in MiB) of ``python *argv`` in ``cwd``."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env or ENV, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: this child's own peak memory
    finally:
        timer.cancel()
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, time.monotonic() - start, usage.ru_maxrss / 1024


def check_refused(argv, cwd, message, env=None):
    """Asserts the one-line refusal and an unchanged folder; returns (line, seconds, MiB)."""
    before = listing(cwd)
    code, err, seconds, peak = (run(argv, cwd) if not env else
                                run(argv, cwd, env={**ENV, **env}))
    lines = err.splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err and message in lines[0], (argv, err)
    assert listing(cwd) == before, (argv, "the folder changed")
    return lines[0], seconds, peak


def run_all(cases, cwd, workers=2):
    """Runs ``check_refused`` over ``cases`` ((argv, message[, env])) ``workers`` at a
    time; fails with every failing case listed."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check_refused, case[0], cwd, case[1], *case[2:])
                   for case in cases]
        results, failures = [], []
        for case, future in zip(cases, futures):
            try:
                results.append(future.result())
            except AssertionError as err:
                failures.append(f"{' '.join(case[0])!r}: {err}")
    assert not failures, "\n".join(failures)
    return results


# ----------------------------------------------------------------------------- security

MAKE_EVIL = textwrap.dedent("""
    import json, os, shutil, sys
    out, marker = sys.argv[1], sys.argv[2]
    import keras
    inp = keras.Input((8, 8, 1))
    code = eval(f"lambda t: (open({marker!r}, 'w').write('ran'), t)[1]")
    x = keras.layers.Lambda(code)(keras.layers.Flatten()(inp))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x))
    os.remove(marker)  # building ran the lambda once, here
    model.save(os.path.join(out, "x.h5"))
    shutil.copy(os.path.join(out, "x.h5"), os.path.join(out, "x.keras"))
    run = os.path.join(out, "run")
    os.makedirs(run)
    shutil.copy(os.path.join(out, "x.h5"), os.path.join(run, "model.keras"))
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump({"model": "resnet20", "dataset": "digits"}, f)
    with open(os.path.join(run, "labels.txt"), "w") as f:
        f.write("".join(f"{i}\\n" for i in range(10)))
""")


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """A folder with an HDF5 model whose Lambda layer writes MARKER when it runs, saved
    as x.h5, as x.keras and as the model.keras of a run directory."""
    folder = tmp_path_factory.mktemp("evil")
    marker = folder / "MARKER"
    done = subprocess.run([sys.executable, "-c", MAKE_EVIL, str(folder), str(marker)],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    return folder


def test_model_files_with_code_are_refused_and_the_code_never_runs(evil, monkeypatch, capsys):
    """One real command; the other CLIs in this process (their refusal is the same
    loading code, and the marker would show a Lambda that ran here as well)."""
    lines = [check_refused(["-m", "export.tflite", "--checkpoint", "x.keras"], evil,
                           "Lambda layer")[0]]
    monkeypatch.chdir(evil)
    cases = [
        (tflite.main, tflite.PROG, ["--checkpoint", "x.h5"]),
        (tflite.main, tflite.PROG, ["--checkpoint", "run"]),
        (compare.main, "python -m export.compare", ["--checkpoint", "run"]),
        (compare.main, "python -m export.compare", ["--checkpoint", "x.keras"]),
        (lambda argv: train.load_run(argv[0]), "load_run", ["x.keras"]),
        (lambda argv: train.load_run(argv[0]), "load_run", ["x.h5"]),
    ]
    for main, prog, argv in cases:
        before = listing(evil)
        lines.append(refused(main, argv, prog=prog, capsys=capsys))
        assert listing(evil) == before, (prog, argv, "the folder changed")
    for line in lines:
        assert "Lambda layer" in line and "runs code stored in the file" in line, line
    assert not (evil / "MARKER").exists()


# ----------------------------------------------------------------------------- every CLI

E, T, P = ["-m", "export.tflite"], ["-m", "tfresnet.train"], ["-m", "tfresnet.profile"]
C, M, X = ["-m", "export.compare"], ["-m", "export.metadata"], ["-m", "experiments"]
B8, BT = [str(REPO / "benchmarks" / "bench_int8.py")], [str(REPO / "benchmarks" / "bench_train.py")]
TF_CONFIG = {"TF_CONFIG": '{"cluster": {"worker": ["localhost:23456"]}, '
                          '"task": {"type": "worker", "index": 0}}'}
MEMORY = "cannot fit in this machine's memory"
EMPTY = "expected a non-empty value"
UNWRITABLE = "is not writable"
TWO_CLASSES = "needs at least two classes"
CORRUPT = "truncated or corrupt"


class Quick(tuple):
    """A case of the default run, which holds every CLI and every kind of refusal."""


def quick(*case) -> Quick:
    return Quick(case)


# (argv, what the one line must say[, environment]); quick(...) marks the default run's.
CASES = [
    # export.tflite
    quick(E + ["--model", ""], "argument --model: " + EMPTY),
    (E + ["--dataset", ""], "argument --dataset: " + EMPTY),
    (E + ["--checkpoint", ""], "argument --checkpoint: " + EMPTY),
    (E + ["--out", ""], "argument --out: " + EMPTY),
    quick(E + ["--model", "mobilenet_v1", "--alpha", "1e9"], MEMORY),
    (E + ["--model", "mobilenet_v1", "--alpha", "1e4"], MEMORY),
    (E + ["--res", "100000"], MEMORY),
    (E + ["--batch-size", "1000000000"], MEMORY),
    quick(E + ["--out", "/proc"], "output folder '/proc' " + UNWRITABLE),
    quick(E + ["--strategy", "multiworker"], "--strategy multiworker is not supported", TF_CONFIG),
    (E + ["--seed", "-1"], "argument --seed: expected an integer from 0 to 2**32 - 1"),
    (E + ["--seed", "4294967296"], "argument --seed: expected an integer from 0 to 2**32 - 1"),
    (E + ["--epochs", "1000000000000"], "argument --epochs: expected an integer >= 0 and <= 100000"),
    (E + ["--epochs", "1e12"], "argument --epochs: expected an integer"),
    (E + ["--alpha", "nan"], "argument --alpha: expected a finite number"),
    (E + ["--alpha", "inf"], "argument --alpha: expected a finite number"),
    (E + ["--model", "resnet21"], "did you mean"),
    (E + ["--res", "150"], "--res must be a multiple of 32"),
    (E + ["--min-agreement", "2"], "argument --min-agreement"),
    (E + ["--threads", "0"], "argument --threads"),
    (E + ["--lr", "-1"], "argument --lr: expected a number > 0"),
    (E + ["--io", "int4"], "invalid choice"),
    (E + ["--checkpoint", "notes.txt"], "expected a run directory or a .keras file"),
    (E + ["--checkpoint", "garbage.keras"], "not a readable .keras model"),
    (E + ["--checkpoint", "no/such/run"], "no such run directory"),
    (E + ["--dataset", "onecls", "--model", "resnet20"], TWO_CLASSES),
    # tfresnet.train
    quick(T + ["--val-fraction", "0"], "argument --val-fraction"),
    (T + ["--out", ""], "argument --out: " + EMPTY),
    (T + ["--model", ""], "argument --model: " + EMPTY),
    (T + ["--dataset", ""], "argument --dataset: " + EMPTY),
    (T + ["--epochs", "1000000000000"], "argument --epochs"),
    quick(T + ["--image-size", "100000", "--out", "r"], MEMORY),
    (T + ["--batch-size", "1000000000", "--out", "r"], MEMORY),
    (T + ["--seed", "-1"], "argument --seed"),
    (T + ["--seed", "99999999999"], "argument --seed"),
    quick(T + ["--dataset", "onecls", "--out", "r"], TWO_CLASSES),
    # the library's "Received: batch_size=2000" in the command's flags
    quick(T + ["--batch-size", "2000", "--epochs", "1", "--out", "r"],
          "training images. Received: --batch-size=2000"),
    (T + ["--lr", "nan"], "argument --lr: expected a finite number"),
    (T + ["--momentum", "1.5"], "argument --momentum"),
    (T + ["--batch-size", "0"], "argument --batch-size"),
    (T + ["--steps-per-epoch", "0"], "argument --steps-per-epoch"),
    (T + ["--model", "resnet21", "--out", "r"], "did you mean"),
    (T + ["--strategy", "multiworker", "--out", "r"], "TF_CONFIG"),
    quick(T + ["--dataset", "tfds:mnist", "--data-dir", "emptytfds", "--out", "r"], "not prepared"),
    # tfresnet.profile
    (P + ["mobilenet_v1", "--alpha", "1e9"], MEMORY),
    (P + ["mobilenet_v1", "--alpha", "1e4"], MEMORY),
    quick(P + ["resnet20", "--classes", "1000000000"], MEMORY),
    (P + ["resnet20", "--input-size", "100000"], MEMORY),
    (P + ["resnet20", "--json", "/proc/x.json"], "--json: output folder '/proc' " + UNWRITABLE),
    (P + [""], EMPTY),
    (P + ["resnet5"], "did you mean"),
    (P + ["mobilenet_v1", "--alpha", "nan"], "argument --alpha: expected a finite number"),
    # export.compare
    (C + ["--quick", "--model", "resnet20@100000"], MEMORY),
    (C + ["--quick", "--model", "mobilenet_v1", "--alpha", "1e9"], MEMORY),
    quick(C + ["--quick", "--model", "resnet20", "--min-seconds", "inf"], "argument --min-seconds"),
    (C + ["--quick", "--model", "resnet20", "--min-seconds", "nan"], "argument --min-seconds"),
    (C + ["--quick", "--model", "resnet20", "--seed", "-1"], "argument --seed"),
    (C + ["--quick", "--model", ""], "argument --model: " + EMPTY),
    (C + ["--quick", "--model", "resnet20", "--out", "/proc"], UNWRITABLE),
    (C + ["--quick", "--model", "resnet20", "--out", ""], EMPTY),
    (C + ["--checkpoint", "garbage.keras"], "not a readable .keras model"),
    # export.metadata
    (M + ["garbage.tflite"], CORRUPT),
    (M + ["short.tflite"], CORRUPT),
    quick(M + [""], EMPTY),
    (M + ["missing.tflite"], "no such model file: 'missing.tflite'"),
    (M + ["onecls"], "is a folder, not a file"),
    (M + ["notes.txt"], "not a TFLite model"),
    # experiments
    (X + ["multipliers", "--alphas", "1e9"], MEMORY),
    (X + ["degradation", "--image-size", "100000"], MEMORY),
    quick(X + ["degradation", "--seed", "-1"], "argument --seed"),
    (X + ["degradation", "--out", ""], EMPTY),
    (X + ["degradation", "--epochs", "1e12"], "argument --epochs"),
    (X + ["degradation", "--dataset", "onecls", "--out", "x"], TWO_CLASSES),
    (X + ["degradation", "--out", "/proc"], UNWRITABLE),
    # benchmarks
    (B8 + ["--alpha", "1e9"], MEMORY),
    quick(B8 + ["--res", "100000"], MEMORY),
    (B8 + ["--json", "/proc/x.json"], UNWRITABLE),
    (BT + ["--image-size", "100000"], MEMORY),
    (BT + ["--seed", "-1"], "argument --seed"),
    quick(BT + ["--model", ""], EMPTY),
]
# The default run takes the quick(...) cases; `pytest -m slow` runs them all.
QUICK_CASES = [case for case in CASES if isinstance(case, Quick)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working folder with a one-class image folder, broken model files and an
    unprepared tfds folder."""
    folder = tmp_path_factory.mktemp("work")
    (folder / "onecls" / "cat").mkdir(parents=True)
    (folder / "onecls" / "cat" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    (folder / "notes.txt").write_text("not a model\n")
    (folder / "garbage.keras").write_bytes(os.urandom(256))
    rng = __import__("random").Random(1)
    (folder / "garbage.tflite").write_bytes(
        b"\x1c\x00\x00\x00TFL3" + bytes(rng.getrandbits(8) for _ in range(3000)))
    (folder / "short.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3\x00\x00")
    (folder / "emptytfds" / "mnist" / "3.0.1").mkdir(parents=True)
    return folder


def _check_absurd(results, cases):
    for (line, seconds, peak), case in zip(results, cases):
        if case[1] == MEMORY:  # refused before allocation: the interpreter's own size
            assert peak < 1536, (case[0], f"peak {peak:.0f} MiB")


def test_bad_input_every_cli_quick(workdir):
    _check_absurd(run_all(QUICK_CASES, workdir), QUICK_CASES)


@pytest.mark.slow
def test_bad_input_every_cli_all(workdir):
    assert len(CASES) >= 60
    results = run_all(CASES, workdir)
    _check_absurd(results, CASES)
    slowest = max(r[1] for r in results)
    print(f"\n{len(CASES)} bad inputs refused; slowest {slowest:.1f} s, peak memory of an "
          f"absurd-size case {max(r[2] for r, c in zip(results, CASES) if c[1] == MEMORY):.0f} MiB")
