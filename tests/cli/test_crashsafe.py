"""Crash safety, process level: exports and trainings killed with SIGKILL at chosen
moments, two exports into one folder at once, undecodable images.

Faults are real: strace injects SIGKILL at the n-th ``rename`` syscall of the export's
final step (tests/helpers/publish_worker.py runs that step alone, without TensorFlow, so every
rename can be tried in seconds); tests/helpers/interrupt_worker.py runs the real ``python -m
export.tflite`` / ``python -m tfresnet.train`` and sends itself SIGKILL just before its
n-th rename (or holds there until released).

The exhaustive loop over the real export's renames is slow: ``pytest -m slow
tests/cli/test_crashsafe.py``.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from export import tflite
from export.job import manifest as manifest_lib
from tfresnet import train
from tfresnet.training import fitting
from tfresnet.utils import cli, fileio

HERE = os.path.dirname(os.path.abspath(__file__))
HELPERS = os.path.join(os.path.dirname(HERE), "helpers")
WORKER = os.path.join(HELPERS, "publish_worker.py")
INTERRUPT = os.path.join(HELPERS, "interrupt_worker.py")
# publish's renames: models.json without the replaced entries, 3 .tflite, labels.txt,
# the results JSON, the final models.json.
PUBLISH_RENAMES = 7
KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def strict_json(path):
    """The JSON at ``path``; fails on NaN / Infinity, which strict JSON readers refuse."""
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")
    with open(path, encoding="utf-8") as f:
        return json.loads(f.read(), parse_constant=refuse)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_manifest(folder) -> dict:
    """{file: entry} of models.json, after checking each entry's sha256 against its file."""
    entries = {}
    for entry in strict_json(os.path.join(folder, "models.json"))["models"]:
        path = os.path.join(folder, entry["file"])
        assert os.path.isfile(path), entry["file"]
        assert sha256(path) == entry["sha256"], f"{entry['file']}: sha256 differs"
        entries[entry["file"]] = entry
    return entries


def temp_files(folder):
    return sorted(n for n in os.listdir(folder) if ".tmp" in n)


def worker(folder, stem, tag, *, kill_at=None, hold=None, wait=True):
    cmd = [sys.executable, WORKER, str(folder), stem, tag]
    if hold:
        cmd += ["--hold", str(hold)]
    if kill_at:
        cmd = ["strace", "-f", "-qq", "-o", os.devnull, "-e", "trace=rename", "-e",
               f"inject=rename:signal=SIGKILL:when={kill_at}"] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


# ----------------------------------------------------------------------------- final step


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize("kill_at", range(1, PUBLISH_RENAMES + 1))
def test_publish_killed_at_each_rename(kill_at, tmp_path):
    """Killed at its n-th rename over an earlier export of the same files: every entry
    of models.json matches its file; the next export removes the litter and lists
    every file again (the old or the new entry, whichever matches)."""
    assert worker(tmp_path, "m", "old")[0] == 0
    old = check_manifest(tmp_path)
    code, _, _ = worker(tmp_path, "m", "new", kill_at=kill_at)
    assert code in KILLED
    entries = check_manifest(tmp_path)
    assert set(entries) <= set(old)
    assert temp_files(tmp_path), "a killed export leaves its temporary files"
    if kill_at == 1:  # nothing renamed yet: the old export, byte for byte
        assert entries == old
    code, out, _ = worker(tmp_path, "other", "x")
    assert code == 0 and "removed" in out
    assert temp_files(tmp_path) == []
    entries = check_manifest(tmp_path)
    models = {f"m_{k}.tflite" for k in ("float32", "ptq_int8", "int8")}
    assert models <= set(entries)  # adopted from the killed export's pending list
    tags = [entries[f"m_{k}.tflite"]["tag"] for k in ("float32", "ptq_int8", "int8")]
    renamed = max(0, min(3, kill_at - 2))  # .tflite files that landed before the kill
    assert tags == ["new"] * renamed + ["old"] * (3 - renamed)
    assert "pending" not in strict_json(tmp_path / "models.json")


def test_publish_not_killed_renames_seven_times(tmp_path):
    """The count the test above relies on: a kill at rename 8 never happens."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    code, _, _ = worker(tmp_path, "m", "new", kill_at=PUBLISH_RENAMES + 1)
    assert code == 0
    assert len(check_manifest(tmp_path)) == 3 and temp_files(tmp_path) == []


def test_two_exports_into_one_folder_keep_both(tmp_path):
    """A reads models.json and is held before its first rename; B starts then. B waits
    for A's lock (without it, B would finish and A would write its stale copy over
    B's entries); at the end both exports' entries are there."""
    release = tmp_path / "release"
    out = tmp_path / "assets"
    out.mkdir()
    a = worker(out, "a", "1", hold=release, wait=False)
    deadline = time.monotonic() + 60
    while not os.path.exists(f"{release}.held"):
        assert a.poll() is None and time.monotonic() < deadline, a.communicate()
        time.sleep(0.02)
    b = worker(out, "b", "1", wait=False)
    time.sleep(1.5)  # B alone takes ~0.1 s
    assert b.poll() is None, "B did not wait for A"
    release.touch()
    out_a, _ = a.communicate(timeout=60)
    out_b, _ = b.communicate(timeout=60)
    assert a.returncode == b.returncode == 0
    assert "Waiting for another export" in out_b
    entries = check_manifest(out)
    assert set(entries) == {f"{s}_{k}.tflite" for s in "ab"
                            for k in ("float32", "ptq_int8", "int8")}
    assert temp_files(out) == []


def test_interrupt_during_temp_writes_changes_nothing(tmp_path, monkeypatch):
    """Ctrl-C while the temporary files are written: no file changed, none left."""
    files = {"m_int8.tflite": b"new" * 100, "labels.txt": b"a\n"}
    entries = [{"file": "m_int8.tflite", "sha256": hashlib.sha256(files["m_int8.tflite"])
                .hexdigest()}]
    manifest_lib.publish(tmp_path, {"m_int8.tflite": b"old", "labels.txt": b"a\n"},
                         [{"file": "m_int8.tflite",
                           "sha256": hashlib.sha256(b"old").hexdigest()}])
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    real = manifest_lib._write_temp
    calls = []

    def interrupted(path, content):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, content)

    monkeypatch.setattr(manifest_lib, "_write_temp", interrupted)
    with pytest.raises(KeyboardInterrupt):
        manifest_lib.publish(tmp_path, files, entries)
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before
    assert len(calls) == 3


def test_entries_must_describe_the_files(tmp_path):
    with pytest.raises(ValueError, match="does not describe"):
        manifest_lib.publish(tmp_path, {"m.tflite": b"x"},
                             [{"file": "m.tflite", "sha256": "0" * 64}])
    assert os.listdir(tmp_path) == []


def test_to_json_writes_nan_as_null():
    text = fileio.to_json({"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float32("nan")})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": None}


# ----------------------------------------------------------------------------- data, runs


def write_images(root, per_class=10, side=64, seed=0):
    """Two classes of JPEGs (reddish / bluish noise) in ``root``/red, ``root``/blue."""
    rng = np.random.default_rng(seed)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(colour, 50, (side, side, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(
                os.path.join(root, name, f"{i:02d}.jpg"), quality=90)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images") / "good"
    write_images(str(root))
    return str(root)


@pytest.fixture(scope="module")
def bad_folder(image_folder, tmp_path_factory):
    """The good folder plus one JPEG cut off at 60% of its bytes (a failed download)."""
    root = tmp_path_factory.mktemp("images") / "bad"
    shutil.copytree(image_folder, root)
    whole = (root / "red" / "00.jpg").read_bytes()
    cut = root / "red" / "cut.jpg"
    cut.write_bytes(whole[:int(len(whole) * 0.6)])
    return str(root), str(cut)


@pytest.fixture(scope="module")
def tiny_run(image_folder, tmp_path_factory):
    """A tfresnet.train run: CIFAR ResNet-20 at 16x16 on the image folder, 1 epoch."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    train.fit("resnet20", dataset=image_folder, epochs=1, batch_size=4, image_size=16,
              augment="none", out_dir=run_dir, verbose=0)
    return run_dir


EXPORT_FAST = ["--qat-epochs", "1", "--batch-size", "4", "--calibration", "8",
               "--min-agreement", "0", "--allow-chance"]


def run_cli(main, argv, prog):
    try:
        return 0, cli.run(main, argv, prog=prog)
    except SystemExit as stop:
        return stop.code, None


def one_line_error(capsys, *names):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def test_truncated_jpeg_is_found_before_training(bad_folder, tmp_path, capsys):
    folder, cut = bad_folder
    run_dir = tmp_path / "run"
    code, _ = run_cli(train.main, ["--dataset", folder, "--image-size", "16", "--epochs",
                                   "1", "--out", str(run_dir)], train.PROG)
    assert code == 2
    line = one_line_error(capsys, cut, "--skip-bad-images")
    assert "cannot decode" in line
    assert not run_dir.exists()


def test_truncated_jpeg_skipped_with_a_warning(bad_folder, tmp_path, capsys):
    folder, cut = bad_folder
    run_dir = tmp_path / "run"
    code, result = run_cli(train.main, [
        "--dataset", folder, "--image-size", "16", "--epochs", "1", "--steps-per-epoch",
        "2", "--batch-size", "4", "--augment", "none", "--strategy", "default",
        "--skip-bad-images",
        "--out", str(run_dir)], train.PROG)
    assert code == 0
    captured = capsys.readouterr()
    assert f"warning: skipping unreadable image {cut!r}" in captured.err
    assert re.search(r"skipped\s+1 undecodable image", captured.out)
    config = strict_json(run_dir / "config.json")
    assert config["skipped_images"] == [cut]
    assert config["num_train"] + config["num_val"] == 20  # the 20 good images


@pytest.fixture(scope="module")
def skip_export(bad_folder, tiny_run, tmp_path_factory):
    """export.tflite --skip-bad-images on the folder with the truncated JPEG (its output
    is also the earlier export the kill tests replace)."""
    folder, _ = bad_folder
    out = tmp_path_factory.mktemp("skip") / "assets"
    argv = ["--checkpoint", tiny_run, "--dataset", folder, *EXPORT_FAST, "--out", str(out),
            "--skip-bad-images"]
    code, results = run_cli(tflite.main, argv, tflite.PROG)
    assert code == 0
    return str(out), results


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_truncated_jpeg_export(bad_folder, tiny_run, skip_export, tmp_path, capsys):
    """export.tflite: one line naming the file and nothing written; with
    --skip-bad-images a full export whose results JSON lists the file."""
    folder, cut = bad_folder
    out = tmp_path / "assets"
    code, _ = run_cli(tflite.main, ["--checkpoint", tiny_run, "--dataset", folder,
                                    *EXPORT_FAST, "--out", str(out)], tflite.PROG)
    assert code == 2
    one_line_error(capsys, cut, "--skip-bad-images")
    assert not out.exists()
    out, results = skip_export
    saved = strict_json(os.path.join(out, "resnet20_16_results.json"))
    # named inside the data folder: no local path in a shipped file
    assert saved["skipped_images"] == [os.path.relpath(cut, folder)] == results["skipped_images"]
    assert not os.path.isabs(saved["skipped_images"][0])
    assert saved["num_train"] + saved["held_out_images"] == 20
    assert len(check_manifest(out)) == 3


# ----------------------------------------------------------------------------- real commands


def interrupted(module, argv, *, kill_at, match=None, timeout=900):
    """Runs ``python -m module argv`` killed just before its ``kill_at``-th rename
    (into a file named ``match``); returns (exit status, stdout)."""
    cmd = [sys.executable, INTERRUPT, "--kill-at", str(kill_at)]
    cmd += ["--match", match] if match else []
    proc = subprocess.run(cmd + [module, *argv], capture_output=True, text=True,
                          timeout=timeout, env=ENV)
    return proc.returncode, proc.stdout


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_export_killed_between_renames(skip_export, tiny_run, tmp_path, capsys):
    """The real export, killed after its three model files landed (before labels.txt,
    the results and models.json): no entry of models.json differs from its file; the
    next export removes the litter."""
    out = str(tmp_path / "assets")
    shutil.copytree(skip_export[0], out)
    old = check_manifest(out)
    argv = ["--checkpoint", tiny_run, *EXPORT_FAST, "--seed", "1", "--out", out]
    code, stdout = interrupted("export.tflite", argv, kill_at=5)
    assert code in KILLED, stdout[-2000:]
    entries = check_manifest(out)
    assert set(entries) < set(old)  # the replaced files' entries are pending
    # The new QAT file (fine-tuned with --seed 1) landed; the old manifest, had it
    # stayed, would describe it wrongly.
    assert sha256(os.path.join(out, "resnet20_16_int8.tflite")) != \
        old["resnet20_16_int8.tflite"]["sha256"]
    # labels.txt, the confusion PNG, the results, the model card, models.json
    assert len(temp_files(out)) == 5
    capsys.readouterr()
    code, results = run_cli(tflite.main, argv, tflite.PROG)
    assert code == 0
    assert "Removed 5 temporary file(s)" in capsys.readouterr().out
    assert temp_files(out) == []
    entries = check_manifest(out)
    assert set(entries) == set(old)
    strict_json(os.path.join(out, "resnet20_16_results.json"))


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", range(1, PUBLISH_RENAMES + 1))
def test_export_killed_at_each_rename(kill_at, skip_export, tiny_run, tmp_path):
    """Slow (an export a rename): the real export killed at each of its renames."""
    out = str(tmp_path / "assets")
    shutil.copytree(skip_export[0], out)
    old = check_manifest(out)
    argv = ["--checkpoint", tiny_run, *EXPORT_FAST, "--seed", "1", "--out", out]
    code, stdout = interrupted("export.tflite", argv, kill_at=kill_at)
    assert code in KILLED, stdout[-2000:]
    assert set(check_manifest(out)) <= set(old)
    assert temp_files(out)
    code, _ = run_cli(tflite.main, argv, tflite.PROG)
    assert code == 0 and temp_files(out) == [] and set(check_manifest(out)) == set(old)


TRAIN_ARGV = ["--model", "resnet20", "--dataset", "digits", "--image-size", "16",
              "--epochs", "3", "--steps-per-epoch", "3", "--batch-size", "4",
              "--strategy", "default", "--augment", "none"]


def epoch_val_accuracies(stdout):
    return [float(v) for v in re.findall(r"val_accuracy: ([0-9.]+)", stdout)]


def check_finished_run(run_dir, result, val_accuracies, resumed_at):
    """The rerun's figures are the run's: best epoch and accuracy over every epoch."""
    best = int(np.argmax(val_accuracies))
    assert result.best_epoch == best + 1
    assert result.best_val_accuracy == pytest.approx(val_accuracies[best], abs=1e-4)
    assert result.initial_epoch == resumed_at
    config = strict_json(os.path.join(run_dir, "config.json"))  # no NaN
    assert config["result"]["best_epoch"] == best + 1
    assert config["result"]["resumed_at_epoch"] == resumed_at
    assert sorted(os.listdir(run_dir)) == ["best.keras", "config.json", "history.csv",
                                           "labels.txt", "logs", "model.keras"]
    model, _, _ = train.load_run(os.path.join(run_dir, "best.keras"))
    val = data_val(16)
    assert fitting.accuracy(model, val) == pytest.approx(val_accuracies[best], abs=1.5 / 359)


def data_val(side):
    from tfresnet import data
    return data.pipeline(data.load("digits", image_size=side).val, batch_size=64,
                         training=False, augment="none")


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_training_killed_while_saving_completes_on_rerun(tmp_path, capsys):
    """Killed at the rename that puts model.keras in place (every epoch done): the
    rerun trains nothing, saves, and reports the run's true best epoch and accuracy."""
    run_dir = str(tmp_path / "run")
    argv = TRAIN_ARGV + ["--out", run_dir]
    code, stdout = interrupted("tfresnet.train", argv, kill_at=1, match="model.keras")
    assert code in KILLED, stdout[-2000:]
    accuracies = epoch_val_accuracies(stdout)
    assert len(accuracies) == 3
    assert temp_files(run_dir) and not os.path.exists(os.path.join(run_dir, "model.keras"))
    code, result = run_cli(train.main, argv, train.PROG)
    assert code == 0
    out = capsys.readouterr().out
    assert "resumed after epoch 3" in out and "n/a (no epoch trained" in out
    check_finished_run(run_dir, result, accuracies, resumed_at=3)
    assert strict_json(os.path.join(run_dir, "config.json"))["result"][
        "images_per_second"] is None


@pytest.mark.slow
def test_training_killed_before_last_history_row(tmp_path):
    """Killed as the last epoch's history row was being put in place: the rerun
    repeats that epoch (its checkpoint was not taken) and reports every epoch."""
    run_dir = str(tmp_path / "run")
    argv = TRAIN_ARGV + ["--out", run_dir]
    code, stdout = interrupted("tfresnet.train", argv, kill_at=3, match="history.csv")
    assert code in KILLED
    first = epoch_val_accuracies(stdout)[:2]
    code, result = run_cli(train.main, argv, train.PROG)
    assert code == 0
    check_finished_run(run_dir, result, first + [result.history["val_accuracy"][2]],
                       resumed_at=2)


@pytest.mark.slow
def test_two_real_exports_into_one_folder(tiny_run, tmp_path):
    """Slow (two exports): A held after reading models.json, B (--io int8) waits for
    A's lock; at the end models.json lists both exports' files."""
    out = str(tmp_path / "assets")
    release = tmp_path / "release"
    argv = ["--checkpoint", tiny_run, *EXPORT_FAST, "--out", out]
    log = open(tmp_path / "a.log", "w")
    a = subprocess.Popen([sys.executable, INTERRUPT, "--hold-at", "1", "--release",
                          str(release), "export.tflite", *argv], env=ENV,
                         stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    while not os.path.exists(f"{release}.held"):
        assert a.poll() is None and time.monotonic() < deadline, \
            (tmp_path / "a.log").read_text()[-2000:]
        time.sleep(0.5)
    b = subprocess.Popen([sys.executable, "-m", "export.tflite", *argv, "--io", "int8"],
                         env=ENV, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    for line in b.stdout:  # B blocks after this line until A lets go
        if "Waiting for another export" in line:
            break
    else:
        pytest.fail("B did not wait for A")
    release.touch()
    b.stdout.read()
    assert a.wait(timeout=600) == 0 and b.wait(timeout=600) == 0
    log.close()
    entries = check_manifest(out)
    assert set(entries) == {f"resnet20_16_{k}.tflite" for k in
                            ("float32", "ptq_int8", "int8", "ptq_int8_io_int8", "int8_io_int8")}
    assert temp_files(out) == []
