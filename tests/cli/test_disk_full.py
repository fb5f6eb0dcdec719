"""A full disk in each writer (a 1 MiB tmpfs, filled): one line naming the folder, exit
status 2, and the files there as they were (the run or export can go on once space is
freed). Needs root for the tmpfs mount; skipped otherwise."""

from __future__ import annotations

import contextlib
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.job import manifest
from tfresnet import train
from tfresnet.training import rundir
from tfresnet.utils import cli, fileio


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    where = tmp_path_factory.mktemp("tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                          capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@contextlib.contextmanager
def filled(folder):
    """``folder``'s disk filled to the last byte while the block runs."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 1):  # unbuffered, to the last byte
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        ballast.unlink()


def tiny_model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(256)(keras.layers.Dense(256)(inputs)))


def write_history(folder):
    fileio.write_text(folder / "history.csv", "epoch,loss\n" + "1,0.5\n" * 100_000)


def write_model(folder):
    rundir.save_model(tiny_model(), os.path.join(folder, "best.keras"))


def write_checkpoint(folder):  # what BackupAndRestore does: TensorFlow's SaveV2
    tf.train.Checkpoint(v=tf.Variable(np.zeros(300_000, np.float32))).write(
        os.path.join(folder, "backup", "ckpt"))


def write_logs(folder):  # what keras.callbacks.TensorBoard does: tf.summary
    writer = tf.summary.create_file_writer(os.path.join(folder, "logs"))
    with writer.as_default():
        for step in range(20):
            tf.summary.histogram("w", np.random.default_rng(step).random(100_000), step=step)
    writer.close()


def write_export(folder):
    content = os.urandom(600_000)
    import hashlib
    manifest.publish(folder / "assets", {"m_int8.tflite": content},
                     [{"file": "m_int8.tflite", "sha256": hashlib.sha256(content).hexdigest()}])


WRITERS = {"history.csv": (write_history, ""),  # (writer, the folder its line names)
           "best.keras": (write_model, ""),
           "backup checkpoint": (write_checkpoint, "backup"),
           "tensorboard logs": (write_logs, "logs"),
           "export": (write_export, "assets")}


def state(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None)
                  for p in folder.rglob("*") if p.name != "ballast")


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_disk_full_in_each_writer_is_one_line_naming_the_folder(writer, small_disk,
                                                                capsys):
    write, where = WRITERS[writer]
    folder = small_disk / writer.replace(" ", "_")
    (folder / "backup").mkdir(parents=True)
    (folder / "assets").mkdir()
    (folder / "history.csv").write_text("epoch,loss\n1,0.5\n")  # the previous state
    (folder / "assets" / "models.json").write_text('{"models": []}\n')
    before = state(folder)
    with filled(small_disk):
        with pytest.raises(SystemExit) as stop:
            cli.run(lambda argv: write(folder), [], prog="p")
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert "p: error: no space left on the device holding" in err, err
    assert f"holding '{folder / where if where else folder}'" in err, err
    # left out: TensorFlow's temporary checkpoint folder, and the events file a
    # TensorBoard writer opens first (an append-only log TensorBoard reads when cut short)
    after = [(name, content) for name, content in state(folder)
             if not name.startswith(("backup/ckpt", "logs"))]
    assert after == before


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_training_into_a_full_disk_is_one_line_then_resumes(small_disk, capsys):
    """The issue's case: tfresnet.train into a small disk fails with one line; with
    space again the same command finishes the run."""
    run = small_disk / "run"
    argv = ["--epochs", "2", "--steps-per-epoch", "2", "--out", str(run)]
    with pytest.raises(SystemExit) as stop:
        cli.run(train.main, argv, prog=train.PROG)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert "no space left on the device holding" in err and str(run) in err, err
    subprocess.run(["mount", "-o", "remount,size=30m", str(small_disk)], check=True)
    try:
        result = cli.run(train.main, argv, prog=train.PROG)
        assert len(result.history["epoch"]) == 2 and (run / "model.keras").is_file()
    finally:
        import shutil
        shutil.rmtree(run)
        subprocess.run(["mount", "-o", "remount,size=2m", str(small_disk)], check=True)


def test_a_full_tmpdir_is_named_as_tmpdir_and_left_as_it_was(small_disk):
    """export.compare keeps each model's .tflite files in a temporary folder: with
    TMPDIR too full for them (256 KiB left, a 1.9 MB float32 file), one line names
    TMPDIR, exit 2, and TMPDIR and --out hold nothing new."""
    import sys

    tmpdir = small_disk / "tmpdir"
    tmpdir.mkdir()
    ballast = small_disk / "ballast"
    st = os.statvfs(small_disk)
    with open(ballast, "wb") as f:
        f.write(b"\0" * (st.f_bavail * st.f_frsize - 256 * 1024))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "export.compare", "--quick", "--model", "mobilenet_v1",
             "--alpha", "0.25", "--res", "128", "--threads", "1", "--runs", "1",
             "--rounds", "1", "--warmup", "0", "--min-seconds", "0", "--repeat-check", "0",
             "--out", str(small_disk / "out")],
            env={**os.environ, "TMPDIR": str(tmpdir)}, capture_output=True, text=True,
            timeout=300)
    finally:
        ballast.unlink()
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"error: no space left in TMPDIR, '{tmpdir}' (" in lines[0], lines
    assert os.listdir(tmpdir) == [] and not (small_disk / "out").exists()
