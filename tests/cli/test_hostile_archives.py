"""Model files that would unpack to absurd sizes (issue 27): a .keras whose member
declares gigabytes (a zip bomb), a zip with members Keras would extract whole into
TMPDIR, an HDF5 file whose arrays declare gigabytes while storing nothing. Each is
refused with one line naming the file and the bound before anything is unpacked:
exit 2 from every command, no memory or TMPDIR spent, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

from export import tflite
from export.compare import command as compare_command
from export.compare.command import PROG as COMPARE_PROG
from helpers.cli_refusal import refused
from helpers.hostile_files import declare, keras_zip
from tfresnet import train
from tfresnet.training import checkpoint
from tfresnet.utils import kerasfiles

GiB = 2 ** 30


def zeros_member(path, member, size):
    """A real zip bomb: ``member`` is ``size`` bytes of zeros, deflated (1000:1)."""
    members = {"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": b""}
    keras_zip(path, {k: v for k, v in members.items() if k != member})
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as z, \
            z.open(member, "w", force_zip64=True) as f:
        chunk = bytes(2 ** 22)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return path


def h5_bomb(path, shape=(3 * GiB // 4,), dtype="float32", model_config=True):
    """An HDF5 model file in Keras' layout whose one array declares ``shape`` (3 GiB)
    and stores nothing: chunked and gzip-compressed, never written, so only its fill
    value exists."""
    with h5py.File(path, "w") as f:
        if model_config:
            f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                                  "config": {"layers": []}}).encode()
        f.create_dataset("model_weights/dense/kernel", shape=shape, dtype=dtype,
                         chunks=(2 ** 20,), compression="gzip")
        f["model_weights"].attrs["layer_names"] = [b"dense"]
        f["model_weights/dense"].attrs["weight_names"] = [b"kernel"]
    assert os.path.getsize(path) < 64 * 1024
    return path


BOMBS = {  # name -> (maker(path), file name, what the line says)
    "config.json declares 3 GiB": (
        lambda p: declare(keras_zip(p), "config.json", 3 * GiB), "m.keras",
        "its config.json declares 3.0 GiB unpacked, more than the 64.0 MiB"),
    "config.json is 80 MiB of zeros": (
        lambda p: zeros_member(p, "config.json", 80 * 2 ** 20), "m.keras",
        "its config.json declares 80.0 MiB unpacked, more than the 64.0 MiB"),
    "weights declare 2 GiB": (
        lambda p: declare(keras_zip(p, compression=zipfile.ZIP_DEFLATED),
                          "model.weights.h5", 2 * GiB), "m.keras",
        "its model.weights.h5 declares 2.0 GiB unpacked, more than the 1.0 GiB"),
    "members declare 1.03 GiB together": (
        lambda p: declare(declare(keras_zip(p, compression=zipfile.ZIP_DEFLATED),
                                  "model.weights.h5", GiB - 2 ** 20),
                          "config.json", 60 * 2 ** 20), "m.keras",
        "its members declare 1.1 GiB unpacked, more than the 1.0 GiB"),
    "an assets member Keras would extract to TMPDIR": (
        lambda p: keras_zip(p, {"metadata.json": b"{}", "config.json": b"{}",
                                "model.weights.h5": b"", "assets/big.bin": b"\0" * 100}),
        "m.keras", "holds 4 members, a Keras model file 3"),
    "another member name": (
        lambda p: keras_zip(p, {"config.json": b"{}", "../../etc/cron.d/x": b"x"}),
        "m.keras", "it holds '../../etc/cron.d/x'; a Keras model file holds config.json, "
                   "metadata.json, model.weights.h5 once each"),
    "HDF5 array declares 3 GiB": (
        lambda p: h5_bomb(p), "m.h5",
        "its arrays (up to 'model_weights/dense/kernel') declare 3.0 GiB unpacked, more "
        "than the 1.0 GiB"),
    "HDF5 as model.weights.h5 in a .keras": (
        lambda p: keras_zip(p, {"metadata.json": b"{}", "config.json": b"{}",
                                "model.weights.h5": h5_bomb(p.with_suffix(".h5"),
                                                            model_config=False).read_bytes()}),
        "m.keras", "the arrays in its model.weights.h5 (up to 'model_weights/dense/kernel') "
                   "declare 3.0 GiB unpacked"),
}


def make_bomb(tmp_path, case):
    maker, name, message = BOMBS[case]
    folder = tmp_path / "models"
    folder.mkdir()
    path = maker(folder / name)
    for extra in folder.iterdir():
        if extra != path:
            extra.unlink()
    return path, message


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_a_model_file_that_would_unpack_to_an_absurd_size_is_refused(case, tmp_path):
    path, message = make_bomb(tmp_path, case)
    assert os.path.getsize(path) < 2 ** 20  # each is small on disk
    for read in (kerasfiles.file_kind, checkpoint.locate, checkpoint.load_run):
        with pytest.raises(ValueError) as info:
            read(str(path))
        assert message in str(info.value) and str(path) in str(info.value), info.value


@pytest.mark.parametrize("case", ["config.json declares 3 GiB", "weights declare 2 GiB",
                                  "HDF5 array declares 3 GiB"])
def test_every_command_refuses_a_zip_bomb_in_one_line(case, tmp_path, capsys):
    """export --checkpoint, export.compare --checkpoint, train --weights: exit 2, one
    line with the bound, nothing written anywhere."""
    path, message = make_bomb(tmp_path, case)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for main, prog, argv in [
            (tflite.main, tflite.PROG, ["--checkpoint", str(path)]),
            (compare_command.main, COMPARE_PROG, ["--checkpoint", str(path)]),
            (train.main, train.PROG, ["--model", "mobilenet_v1", "--alpha", "0.25",
                                      "--image-size", "32", "--weights", str(path)])]:
        err = refused(main, argv, prog=prog, capsys=capsys, out=tmp_path / "out")
        assert message in err, (prog, err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_zip_bomb_costs_neither_memory_nor_tmpdir(tmp_path):
    """The issue's case (a config.json declaring 3 GiB took 7.0 GB of memory and 70 s;
    a 2 GiB member was extracted into TMPDIR): refused with TensorFlow loaded in under
    1.5 GiB, and TMPDIR left empty."""
    bomb, _ = make_bomb(tmp_path, "config.json declares 3 GiB")
    assets = keras_zip(tmp_path / "assets.keras",
                       {"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": b"",
                        "assets/big.bin": b"\0" * 2 ** 20})
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    script = ("import resource, sys\n"
              "from tfresnet.training.checkpoint import load_run\n"
              "for path in sys.argv[1:]:\n"
              "    try:\n"
              "        load_run(path)\n"
              "    except ValueError as err:\n"
              "        print('refused:', err)\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    done = subprocess.run([sys.executable, "-c", script, str(bomb), str(assets)],
                          env={**os.environ, "TMPDIR": str(tmpdir)}, capture_output=True,
                          text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 3, done.stdout + done.stderr
    assert "declares 3.0 GiB" in lines[0] and "holds 4 members" in lines[1], lines
    assert int(lines[2]) * 1024 < 1.5 * GiB, f"peak memory {int(lines[2]) / 2 ** 20:.2f} GiB"
    assert os.listdir(tmpdir) == []


def test_real_model_files_pass_the_size_checks(tmp_path):
    """A Keras 3 .keras (as Keras writes it, and deflated by a zip tool), an HDF5 model,
    and the Keras 2 fixture pass, and load with their weights."""
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="predictions")(inputs))
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        keras_zip(tmp_path / "deflated.keras", {n: z.read(n) for n in z.namelist()},
                  zipfile.ZIP_DEFLATED)
    fixture = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras2_run",
                           "model.keras")
    for path in ("m.keras", "deflated.keras", "m.h5", fixture):
        assert kerasfiles.file_kind(tmp_path / path) in (kerasfiles.ZIP, kerasfiles.HDF5)
    for path in ("m.keras", "deflated.keras", "m.h5"):
        loaded = checkpoint.load_model(str(tmp_path / path))
        np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_the_bounds_hold_the_registry_s_largest_files():
    """What docs/bad-input.md and kerasfiles say the bounds were picked from: AlexNet's
    weights with Adam's two slots (3 copies of 60,965,224 float32) and the 1202-layer
    ResNet's config.json (5.5 MiB) fit with a margin."""
    from tfresnet import get_model

    params = get_model("alexnet", weights=None).count_params()
    assert params == 60_965_224
    assert 3 * 4 * params * 1.4 < kerasfiles.UNPACKED_MAX_BYTES
    assert 5.5 * 2 ** 20 * 11 < kerasfiles.CONFIG_MAX_BYTES
