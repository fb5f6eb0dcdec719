"""Classes of bad input (issue 21), each refused in-process with one line, exit 2 and
nothing written: flags that would do nothing, special and huge files read as models
or images, class folder names labels.txt cannot hold."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from export import metadata, tflite
from export.job.plan import load_images
from helpers.cli_refusal import refused
from tfresnet import train
from tfresnet.training import command as train_command
from tfresnet.utils import cli, fileio

HUGE = 200 * 2 ** 30  # a sparse 200 GB file: no disk used


def listing(folder):
    return sorted((str(p.relative_to(folder)), p.lstat().st_mtime_ns)
                  for p in folder.rglob("*"))


# ----------------------------------------------------------------------------- flags

NO_EFFECT = {
    "qat-unfreeze from scratch": (["--qat-unfreeze"], "--qat-unfreeze trains the layers "
                                  "frozen for transfer learning: add --weights"),
    "qat-unfreeze without QAT": (["--qat-unfreeze", "--qat-epochs", "0", "--weights",
                                  "imagenet"], "--qat-unfreeze applies to the "
                                 "quantization-aware fine-tuning, which --qat-epochs 0 skips"),
    "qat-lr without QAT": (["--qat-lr", "0.01", "--qat-epochs", "0"],
                           "--qat-lr applies to the quantization-aware fine-tuning"),
}


@pytest.mark.parametrize("case", sorted(NO_EFFECT))
def test_flags_that_would_do_nothing_are_refused(case, tmp_path, capsys):
    argv, message = NO_EFFECT[case]
    err = refused(tflite.main, argv, prog=tflite.PROG, capsys=capsys, out=tmp_path / "out")
    assert message in err, err


# ----------------------------------------------------------------------------- special files


def special(tmp_path, kind, name):
    """A FIFO, /dev/zero (a symbolic link to it) or a sparse 200 GB file named ``name``."""
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as f:
            f.truncate(HUGE)
    return path


SPECIAL = {"fifo": "is a FIFO, not a regular file", "dev-zero": "is a device, not a "
           "regular file", "huge": "is 200.0 GiB, more than the 2.0 GiB a model file"}


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_file_as_metadata_model_is_refused(kind, tmp_path, capsys):
    path = special(tmp_path, kind, "m.tflite")
    before = listing(tmp_path)
    err = refused(metadata.main, [str(path)], prog="python -m export.metadata", capsys=capsys)
    assert SPECIAL[kind] in err and str(path) in err, err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_file_as_checkpoint_is_refused(kind, tmp_path, capsys):
    path = special(tmp_path, kind, "m.keras")
    err = refused(tflite.main, ["--checkpoint", str(path)], prog=tflite.PROG, capsys=capsys,
                  out=tmp_path / "out")
    assert SPECIAL[kind] in err and str(path) in err, err


@pytest.mark.parametrize("kind", ["fifo", "huge"])
def test_special_file_as_weights_is_refused(kind, tmp_path, capsys):
    path = special(tmp_path, kind, "w.h5")
    err = refused(train.main, ["--model", "mobilenet_v1", "--alpha", "0.25", "--image-size",
                               "32", "--weights", str(path), "--epochs", "2"],
                  prog=train.PROG, capsys=capsys, out=tmp_path / "out")
    assert SPECIAL[kind].replace("model", "weights") in err and str(path) in err, err


IMAGE_REASONS = {"fifo": "not a regular file", "dev-zero": "not a regular file",
                 "huge": "204,800 MiB, more than the 256 MiB an image file can be"}


@pytest.mark.parametrize("kind", sorted(IMAGE_REASONS))
def test_special_file_among_calibration_images_is_refused(kind, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "good.png")
    path = special(photos, kind, "bad.jpg")
    with pytest.raises(SystemExit) as stop:
        cli.run(lambda argv: load_images(str(photos), (8, 8)), [], prog="p")
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert IMAGE_REASONS[kind] in err and str(path) in err, err


def test_huge_image_in_a_training_folder_is_refused(tmp_path, capsys):
    root = tmp_path / "images"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(root / name / f"{i}.png")
    path = special(root / "dog", "huge", "huge.jpg")
    err = refused(train.main, ["--dataset", str(root)], prog=train.PROG, capsys=capsys,
                  out=tmp_path / "out")
    assert IMAGE_REASONS["huge"] in err and str(path) in err, err


# ----------------------------------------------------------------------------- class names

CLASS_NAMES = {
    "newline": (["a\nb", "c"], "its name holds a line break"),
    "carriage return": (["a\rb", "c"], "its name holds a line break"),
    "tab": (["a\tb", "c"], "another control character"),
    "blank": (["   ", "c"], "its name is blank"),
    "same after stripping": (["cat", "cat "], "name the same class 'cat'"),
    "same after NFC": (["caf\u00e9", "cafe\u0301"], "name the same class"),
    # look-alikes (issue 27): invisible characters, compatibility forms, bytes not UTF-8
    "zero-width space": (["cat", "\u200bcat"], "class folder '{root}/\\u200bcat': its "
                         "name holds U+200B ZERO WIDTH SPACE, an invisible format character"),
    "right-to-left override": (["\u202egnp.exe", "c"], "'{root}/\\u202egnp.exe': its name "
                               "holds U+202E RIGHT-TO-LEFT OVERRIDE"),
    "soft hyphen": (["ca\u00adt", "c"], "U+00AD SOFT HYPHEN, an invisible format"),
    "private use": (["cat\ue000", "c"], "U+E000, a private-use character"),
    "same after NFKC (full-width)": (["cat", "\uff43\uff41\uff54"],
                                     "name the same class 'cat' (after Unicode NFKC"),
    "same after NFKC (ligature)": (["fish", "\ufb01sh"], "name the same class 'fish'"),
    "not UTF-8": (["chat_\udce9", "dog"], "'{root}/chat_\\udce9': its name holds byte "
                  "0xe9, not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(CLASS_NAMES))
@pytest.mark.parametrize("command", ["train", "export"])
def test_class_folder_names_labels_txt_cannot_hold_are_refused(case, command, tmp_path,
                                                               capsys):
    names, message = CLASS_NAMES[case]
    root = tmp_path / "images"
    for name in names:
        (root / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / name / "0.png")
    before = listing(tmp_path)
    main, prog = (train.main, train.PROG) if command == "train" else (tflite.main, tflite.PROG)
    err = refused(main, ["--dataset", str(root)], prog=prog, capsys=capsys,
                  out=tmp_path / "out")
    assert message.format(root=root) in err and "class folder" in err, err
    assert listing(tmp_path) == before


def test_hidden_folders_are_named_not_dropped_in_silence(tmp_path, capsys):
    from tfresnet.data.folder import load_folder

    root = tmp_path / "images"
    for name in ("cat", "dog", "..\\..\\x", ".ipynb_checkpoints"):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / name / "0.png")
        Image.fromarray(np.ones((8, 8, 3), np.uint8)).save(root / name / "1.png")
    split = load_folder(str(root), (8, 8), seed=0, val_fraction=0.5)
    assert split.labels == ["cat", "dog"]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"note: not a class: '..\\\\..\\\\x', '.ipynb_checkpoints' in "
                   f"{str(root)!r} (a folder whose name starts with '.' is hidden)"], err


def test_file_names_that_are_not_utf8_are_read(tmp_path):
    """A Latin-1 file name (b"0\\xe9.png") reaches TensorFlow as bytes and decodes."""
    from tfresnet.data.folder import load_folder

    root = tmp_path / "images"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 9 * i, np.uint8)).save(
                os.fsdecode(os.fsencode(root / name) + b"/%d\xe9.png" % i), format="PNG")
    split = load_folder(str(root), (8, 8), seed=0, val_fraction=0.5)
    images = [x for x, _ in split.train] + [x for x, _ in split.val]
    assert len(images) == 4 and images[0].shape == (8, 8, 3)


def test_class_name_not_utf8_under_lc_all_c_is_one_line_naming_the_folder(tmp_path):
    """Under LC_ALL=C a Latin-1 class folder: the package's line (folder and cause), not
    TensorFlow's "Error converting unicode string"."""
    import subprocess
    import sys

    root = tmp_path / "images"
    for name in (b"chat_\xe9", b"dog"):
        os.makedirs(os.fsencode(root) + b"/" + name)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            os.fsdecode(os.fsencode(root) + b"/" + name + b"/0.png"), format="PNG")
    env = {**os.environ, "LC_ALL": "C"}
    done = subprocess.run([sys.executable, "-m", "tfresnet.train", "--dataset", "images",
                           "--out", "run"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "class folder 'images/chat_\\udce9': its name holds byte 0xe9, not UTF-8" in \
        lines[0] and "Error converting" not in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == ["images"]


def test_utf8_class_name_read_as_ascii_names_the_locale(tmp_path):
    """LC_ALL=C with PYTHONUTF8=0: Python reads "chat_\u00e9" as ascii with surrogates;
    the line says so, and what to run instead."""
    import subprocess
    import sys

    root = tmp_path / "images"
    for name in ("chat_\u00e9", "dog"):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / name / "0.png")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, "-m", "tfresnet.train", "--dataset", "images",
                           "--out", "run"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "class folder 'images/chat_\\udcc3\\udca9': its name is UTF-8, but this Python " \
           "reads file names as ascii" in lines[0] and "PYTHONUTF8=1" in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == ["images"]


def test_a_zip_named_keras_with_no_run_folder_still_loads_its_checks(tmp_path):
    """The checks open nothing but regular files: a plain zip passes check_input_file."""
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", "{}")
    assert fileio.check_input_file(path, "model file") == str(path)


# ----------------------------------------------------------------------------- TF_CONFIG

TF_CONFIGS = {
    "not JSON": ("{cluster", "TF_CONFIG: not JSON"),
    "a list": ("[]", "must be an object with a 'cluster' and a 'task'"),
    "host with spaces": ('{"cluster": {"worker": ["not a host:2222"]}, "task": {"type": '
                         '"worker", "index": 0}}', "'not a host' is not a host name"),
    "no port": ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", '
                '"index": 0}}', "must be \"host:port\" with a port from 1 to 65535"),
    "port 70000": ('{"cluster": {"worker": ["localhost:70000"]}, "task": {"type": "worker", '
                   '"index": 0}}', "with a port from 1 to 65535"),
    "bad IPv4": ('{"cluster": {"worker": ["300.1.1.1:2222"]}, "task": {"type": "worker", '
                 '"index": 0}}', "'300.1.1.1' is not a host name or IP address"),
    "index -1": ('{"cluster": {"worker": ["localhost:2222"]}, "task": {"type": "worker", '
                 '"index": -1}}', "task.index must be an integer from 0 to 0"),
    "index out of range": ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": '
                           '"worker", "index": 2}}', "from 0 to 1 (the worker list has 2)"),
    "index a string": ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", '
                       '"index": "0"}}', "Received: index=\"0\""),
    "unknown task type": ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "boss", '
                          '"index": 0}}', "task.type must be one of the cluster's jobs"),
    "ps job": ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", '
               '"index": 0}}', "cluster job 'ps' is not one MultiWorkerMirroredStrategy"),
    "same address twice": ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": '
                           '"worker", "index": 0}}', "address 'a:1' is given twice"),
    "two chiefs": ('{"cluster": {"chief": ["a:1", "b:1"], "worker": ["c:1"]}, "task": '
                   '{"type": "chief", "index": 0}}', "at most one chief"),
}


@pytest.mark.parametrize("case", sorted(TF_CONFIGS))
def test_bad_tf_config_is_refused_before_tensorflow_reads_it(case, tmp_path, capsys,
                                                             monkeypatch):
    text, message = TF_CONFIGS[case]
    monkeypatch.setenv("TF_CONFIG", text)
    err = refused(train.main, ["--strategy", "multiworker"], prog=train.PROG, capsys=capsys,
                  out=tmp_path / "out")
    assert message in err, err


def test_worker_timeout_without_multiworker_is_refused(tmp_path, capsys):
    err = refused(train.main, ["--worker-timeout", "5"], prog=train.PROG, capsys=capsys,
                  out=tmp_path / "out")
    assert "--worker-timeout applies to --strategy multiworker" in err


def test_missing_worker_is_waited_for_once_then_one_line(tmp_path):
    """The other worker never comes up: one "waiting for" line naming it (stdout), then
    after --worker-timeout one error line (stderr), exit 2, nothing written."""
    import json
    import socket
    import subprocess
    import sys

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    peer = f"localhost:{ports[1]}"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{ports[0]}", peer]},
                                   "task": {"type": "worker", "index": 0}})
    env["PYTHONPATH"] = os.pathsep.join([str(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    done = subprocess.run([sys.executable, "-m", "tfresnet.train", "--strategy", "multiworker",
                           "--worker-timeout", "8", "--out", str(tmp_path / "run")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr
    assert done.stdout.count("waiting for the other workers") == 1 and peer in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not come up within 8 s" in lines[0] and peer in lines[0], \
        done.stderr
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- extra lines


@pytest.mark.parametrize("keep", ["half", 600])
def test_truncated_jpeg_is_one_line_without_libjpeg_noise(keep, tmp_path, capfd):
    """The decoder's own "Premature end of JPEG data" lines (C++, file descriptor 2) and,
    for a file cut after 600 bytes, libjpeg's raw "Improper call to JPEG library in
    state 201" never reach the terminal; the product's line names the file."""
    import io

    root = tmp_path / "images"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            buf = io.BytesIO()
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 64, 3), np.uint8)
                            ).save(buf, "JPEG")
            (root / name / f"{i}.jpg").write_bytes(buf.getvalue())
    cut = root / "dog" / "0.jpg"
    whole = cut.read_bytes()
    cut.write_bytes(whole[:len(whole) // 2 if keep == "half" else keep])
    with pytest.raises(SystemExit) as stop:
        cli.run(train.main, ["--dataset", str(root), "--out", str(tmp_path / "out")],
                prog=train.PROG)
    err = capfd.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert "jpeg_mem" not in err and "JPEG library" not in err and str(cut) in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("backup", [None, "backup", "2_fine_tune/backup"])
def test_ctrl_c_is_one_line_with_the_resume_hint_when_there_is_a_backup(
        backup, tmp_path, capsys, monkeypatch):
    """Ctrl-C: one line; with a checkpoint to resume from (the run's own, or a transfer
    run's fine-tuning phase's) the line says how to resume."""
    out = tmp_path / "run"
    if backup:
        (out / backup).mkdir(parents=True)
        (out / backup / "checkpoint").write_text("x")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "_fit_from_args", interrupted)
    with pytest.raises(SystemExit) as stop:
        cli.run(train.main, ["--out", str(out)], prog=train.PROG)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 130 and len(err.splitlines()) == 1, err
    assert err.startswith(f"{train.PROG}: interrupted")
    assert ("run the same command again to resume" in err) == bool(backup), err
