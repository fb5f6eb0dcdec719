"""Hand-edited and damaged run folders (tfresnet.training.runschema): refused with one line naming
the file, the key and the value, before anything is read further or written."""

from __future__ import annotations

import json
import math
import os
import zipfile

import pytest

from export import tflite
from export.tflite import PROG as EXPORT_PROG
from helpers.cli_refusal import refused
from tfresnet import train
from tfresnet.training import rundir, runschema

GOOD_CONFIG = {"model": "mobilenet_v1", "registry": True,
               "model_kwargs": {"alpha": 0.25, "res": 32}, "classes": 10,
               "image_size": [32, 32], "dataset": "digits", "seed": 0, "lr": 0.1}
GOOD_HISTORY = "epoch,accuracy,loss,val_accuracy,val_loss,lr\n1,0.5,1.2,0.4,1.3,0.1\n"

# (config.json text or None for GOOD_CONFIG, history.csv bytes or None, what the line names)
DAMAGED = {
    "config a list": ("[]", None, "config.json: must hold a JSON object"),
    "config not JSON": ('{"model": ', None, "config.json: not valid JSON"),
    "config random bytes": (b"\x93\xff\x00\xfe", None, "config.json: not UTF-8"),
    "seed null": ({"seed": None}, None, "'seed' must be an integer from 0 to 2**32 - 1. "
                                        "Received: seed=null"),
    "seed a string": ({"seed": "abc"}, None, "Received: seed=\"abc\""),
    "model_kwargs a list": ({"model_kwargs": [1, 2]}, None,
                            "'model_kwargs' must be a JSON object. Received: model_kwargs=[1, 2]"),
    "model_kwargs a string": ({"model_kwargs": "x"}, None, "Received: model_kwargs=\"x\""),
    "alpha a string": ({"model_kwargs": {"alpha": "big"}}, None,
                       "'model_kwargs.alpha' must be a finite number"),
    "image_size of one": ({"image_size": [32]}, None, "'image_size' must be a list of 2"),
    "classes one": ({"classes": 1}, None, "'classes' must be an integer >= 2"),
    "result a number": ({"result": 3}, None, "'result' must be a JSON object"),
    "best accuracy a string": ({"result": {"best_val_accuracy": "x"}}, None,
                               "'result.best_val_accuracy' must be a finite number"),
    "history without epoch": (None, b"loss,val_accuracy\n1.0,0.5\n",
                              "history.csv: has no 'epoch' column"),
    "history abc in a number": (None, b"epoch,val_accuracy\n1,abc\n",
                                "history.csv: line 2, column 'val_accuracy' must be a number. "
                                "Received: val_accuracy='abc'"),
    "history epoch 0": (None, b"epoch,val_accuracy\n0,0.5\n", "column 'epoch' must be an "
                                                             "integer >= 1"),
    "history random bytes": (None, b"\x89\xfe\x00\x13garbage\xff", "history.csv: not UTF-8"),
    "history NUL bytes": (None, b"epoch,val_accuracy\n1,0.5\x00\n", "holds NUL bytes"),
}


def make_run(folder, config=None, history=None, *, model=True):
    """A run folder: config.json (GOOD_CONFIG with ``config``'s keys, or ``config`` as
    the file's text or bytes), history.csv and a model.keras that is a zip (never read:
    the folder is refused before)."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is None or isinstance(config, dict):
        config = json.dumps({**GOOD_CONFIG, **(config or {})})
    (folder / "config.json").write_bytes(config if isinstance(config, bytes) else
                                         config.encode())
    (folder / "history.csv").write_bytes(history or GOOD_HISTORY.encode())
    (folder / "labels.txt").write_text("".join(f"{i}\n" for i in range(10)))
    if model:
        with zipfile.ZipFile(folder / "model.keras", "w") as z:
            z.writestr("metadata.json", "{}")
    return folder


def listing(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns)
                  for p in folder.rglob("*"))


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_run_folder_is_refused_by_export_checkpoint(case, tmp_path, capsys):
    config, history, message = DAMAGED[case]
    run = make_run(tmp_path / "run", config, history)
    before = listing(tmp_path)
    err = refused(tflite.main, ["--checkpoint", str(run)], prog=EXPORT_PROG, capsys=capsys,
                  out=tmp_path / "out")
    assert message in err and str(run) in err, err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("case", ["seed a string", "history abc in a number"])
def test_damaged_run_folder_is_refused_as_weights(case, tmp_path, capsys):
    config, history, message = DAMAGED[case]
    run = make_run(tmp_path / "run", config, history)
    before = listing(tmp_path)
    err = refused(train.main, ["--model", "mobilenet_v1", "--alpha", "0.25",
                               "--image-size", "32", "--weights", str(run), "--epochs", "2",
                               "--freeze-epochs", "1"],
                  prog=train.PROG, capsys=capsys, out=tmp_path / "out")
    assert message in err and str(run) in err, err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("case", ["config a list", "model_kwargs a string",
                                  "history without epoch"])
def test_damaged_interrupted_run_is_refused_on_resume_and_nothing_is_written(
        case, tmp_path, capsys):
    """An interrupted run (no model.keras yet): its folder is refused before TensorBoard
    or anything else writes there."""
    config, history, message = DAMAGED[case]
    run = make_run(tmp_path / "run", config, history, model=False)
    before = listing(tmp_path)
    err = refused(train.main, ["--model", "resnet20", "--epochs", "1", "--out", str(run)],
                  prog=train.PROG, capsys=capsys)
    assert message in err, err
    assert listing(tmp_path) == before  # no logs/ events file, no labels.txt rewrite


def test_nan_validation_accuracy_never_wins_best(tmp_path):
    """The issue's resumed history: epoch 1 NaN, a later one 0.195 (rundir.best_row)."""
    (tmp_path / "history.csv").write_text("epoch,val_accuracy\n1,nan\n2,0.195\n3,0.1\n")
    assert rundir.best_row(runschema.read_history(tmp_path))["epoch"] == 2


def test_history_with_nan_cells_is_read(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_accuracy\n1,nan,nan\n2,1.0,\n")
    rows = runschema.read_history(tmp_path)
    assert rows[0]["epoch"] == 1 and math.isnan(rows[0]["loss"])
    assert rows[1] == {"epoch": 2, "loss": 1.0}


def test_a_good_run_config_passes_the_schema(tmp_path):
    make_run(tmp_path)
    assert runschema.check_run_folder(tmp_path)["seed"] == 0
    assert os.path.isfile(tmp_path / "config.json")


# ----------------------------------------------------------------------------- links out

SECRET = "root:x:0:0:secret-marker-line:/root:/bin/bash\n"


def linked_run(tmp_path, link, target):
    """A good run folder whose ``link`` (a file or folder name in it) is a symbolic link
    to ``target`` outside it; ``victim/`` and ``secret.txt`` are outside."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("the victim's own file\n")
    (tmp_path / "secret.txt").write_text(SECRET * 3)
    run = make_run(tmp_path / "run", model=link != "backup")
    if (run / link).exists():
        (run / link).unlink()
    (run / link).symlink_to(target)
    return run


LINKS = {  # link in the run folder -> its target (relative to the run folder)
    "backup": "../victim", "labels.txt": "../secret.txt", "config.json": "../secret.txt",
    "logs": "../victim", "history.csv": "/etc/passwd",
}


def link_refused(err, link):
    assert f"'{link}' is a symbolic link to " in err and "outside the run folder" in err, err
    assert "secret-marker-line" not in err and "root:x:0" not in err, err


@pytest.mark.parametrize("link", sorted(LINKS))
def test_a_run_folder_linking_outside_is_refused_on_resume(link, tmp_path, capsys):
    """Resuming (or overwriting) a run whose backup/ leads to ../victim would write and
    delete checkpoints there: refused by name, nothing written anywhere."""
    run = linked_run(tmp_path, link, LINKS[link])
    before = listing(tmp_path)
    for extra in ([], ["--overwrite"]):
        err = refused(train.main, ["--model", "resnet20", "--epochs", "1", "--out", str(run),
                                   *extra], prog=train.PROG, capsys=capsys)
        link_refused(err, link)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("link", ["labels.txt", "config.json", "backup"])
def test_a_run_folder_linking_outside_is_refused_by_every_reader(link, tmp_path, capsys):
    """export --checkpoint, export.compare --checkpoint, --weights RUN and load_run."""
    from export.compare import command as compare_command
    from export.compare.command import PROG as COMPARE_PROG
    from tfresnet.training import checkpoint

    run = linked_run(tmp_path, link, LINKS[link])
    before = listing(tmp_path)
    link_refused(refused(tflite.main, ["--checkpoint", str(run)], prog=EXPORT_PROG,
                         capsys=capsys, out=tmp_path / "out"), link)
    link_refused(refused(compare_command.main, ["--checkpoint", str(run)], prog=COMPARE_PROG,
                         capsys=capsys, out=tmp_path / "out"), link)
    link_refused(refused(train.main, ["--model", "mobilenet_v1", "--alpha", "0.25",
                                      "--image-size", "32", "--weights", str(run)],
                         prog=train.PROG, capsys=capsys, out=tmp_path / "out"), link)
    with pytest.raises(ValueError) as info:
        checkpoint.load_run(str(run))
    link_refused(str(info.value), link)
    assert listing(tmp_path) == before


def test_the_run_files_beside_a_model_file_must_not_link_outside(tmp_path):
    from tfresnet.training import checkpoint

    run = linked_run(tmp_path, "labels.txt", "../secret.txt")
    with pytest.raises(ValueError) as info:
        checkpoint.locate(str(run / "model.keras"))
    link_refused(str(info.value), "labels.txt")


def test_links_inside_the_run_folder_and_a_linked_run_folder_are_fine(tmp_path):
    run = make_run(tmp_path / "real")
    (run / "labels.txt").rename(run / "labels.orig")
    (run / "labels.txt").symlink_to("labels.orig")
    (run / "logs").mkdir()
    (run / "logs" / "cfg").symlink_to("../config.json")
    (tmp_path / "run").symlink_to("real")
    runschema.check_links(str(tmp_path / "run"))
    assert runschema.check_run_folder(str(tmp_path / "run"))["seed"] == 0


def test_resume_free_keys_top_level_under_fit_and_recorded_later():
    """A resumed run may change steps_per_execution and jit_compile (also under a transfer
    run's "fit"); a run interrupted under a release that did not yet record
    precise_bn.enabled resumes, one that recorded another value does not."""
    free = rundir._resume_free
    assert free("steps_per_execution", {}) and free("fit.steps_per_execution", {})
    assert free("fit.jit_compile", {}) and not free("fit.lr", {})
    assert free("precise_bn.enabled", {"epochs": 3})
    assert not free("precise_bn.enabled", {"precise_bn.enabled": False})
