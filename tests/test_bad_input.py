"""Bad input at the process level, over every CLI: the real stderr, unfiltered.

Each case runs the command in a fresh folder and checks the package's promise: exactly
one line on stderr naming the problem, exit status 2, no traceback, and the folder
exactly as it was (no output created). The cases run concurrently.
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

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def listing(folder) -> dict:
    """Every path under ``folder`` with its size and modification time."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            out[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
    return out


def run(argv, cwd, timeout=300):
    """(exit status, stderr, seconds, peak RSS in MiB) of ``python *argv`` in ``cwd``."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, env=ENV, text=True,
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


def check_refused(argv, cwd, message):
    """Asserts the one-line refusal and an unchanged folder; returns the line."""
    before = listing(cwd)
    code, err, _, _ = run(argv, cwd)
    lines = err.splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err and message in lines[0], (argv, err)
    assert listing(cwd) == before, (argv, "the folder changed")
    return lines[0]


def run_all(cases, cwd):
    """Runs ``check_refused`` over ``cases`` ((argv, message) pairs) two at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(check_refused, argv, cwd, message) for argv, message in cases]
        return [f.result() for f in futures]


# ----------------------------------------------------------------------------- security

MAKE_EVIL = textwrap.dedent("""
    import json, os, shutil, sys
    out, marker = sys.argv[1], sys.argv[2]
    import tf_keras as keras
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


def test_model_files_with_code_are_refused_and_the_code_never_runs(evil):
    load_run = ("from tfresnet import cli, train; "
                "cli.run(lambda argv: train.load_run(argv[0]), ['{}'], prog='load_run')")
    cases = [
        (["-m", "export.tflite", "--checkpoint", "x.keras"], "Lambda layer"),
        (["-m", "export.tflite", "--checkpoint", "x.h5"], "Lambda layer"),
        (["-m", "export.tflite", "--checkpoint", "run"], "Lambda layer"),
        (["-m", "export.compare", "--checkpoint", "run"], "Lambda layer"),
        (["-m", "export.compare", "--checkpoint", "x.keras"], "Lambda layer"),
        (["-c", load_run.format("x.keras")], "Lambda layer"),
        (["-c", load_run.format("x.h5")], "Lambda layer"),
    ]
    for line in run_all(cases, evil):
        assert "runs code stored in the file" in line
    assert not (evil / "MARKER").exists()
