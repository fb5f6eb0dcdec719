"""The schema of a run folder's config.json and history.csv, checked in one place.

A run folder is read in three places (``tfresnet.train`` resuming it, ``export.tflite
--checkpoint RUN``, ``--weights RUN``); each reads it through :func:`read_config` and
:func:`read_history`, so a hand-edited or damaged file is refused once, the same way,
before anything is written: one ``ValueError`` line that names the file, the key and
the value. Keys this package does not know are kept as they are (a newer version's);
every known key must have its type and bounds, or be absent.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import typing

from tfresnet.utils import cli, fileio
from tfresnet.utils.flags import MAX_EPOCHS


class RunFiles(typing.NamedTuple):
    """The files of a run folder (``tfresnet.training.rundir``'s docstring says what
    each holds); the one owner of their names. Iterates as the names."""

    config: str = "config.json"
    labels: str = "labels.txt"
    history: str = "history.csv"
    best: str = "best.keras"
    model: str = "model.keras"


RUN_FILES = RunFiles()

CONFIG_MAX_BYTES = 64 * 2 ** 20  # a run's config.json or history.csv is a few KiB
SEED_MAX = cli.SEED_MAX


# ----------------------------------------------------------------------------- value checks
# Each check returns None for a good value, else what the value must be.

def _int(low=None, high=None, what=None):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or \
                (low is not None and value < low) or (high is not None and value > high):
            return what or f"an integer {cli._bounds(low, high)}"
    return check


def _number(low=None, *, low_open=False, high=None):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or (low is not None and (
                    value < low or (low_open and value == low))) or \
                (high is not None and value > high):
            return (f"a finite number {cli._bounds(low, high, low_open)}"
                    if (low, high) != (None, None) else "a finite number")
    return check


def _kind(kind, name):
    def check(value):
        if isinstance(value, bool) and kind is not bool:
            return name
        if not isinstance(value, kind):
            return name
    return check


def _text(value):
    if not isinstance(value, str) or not value.strip():
        return "a non-empty string"


def _nullable(check):
    def nullable(value):
        if value is not None and check(value):
            return f"{check(value)} or null"
    return nullable


def _list_of(check, length=None):
    want = f"a list of {length} values" if length else "a list of values"
    def check_list(value):
        if not isinstance(value, list) or (length and len(value) != length) or \
                any(check(v) for v in value):
            return f"{want}, each {_what(check)}"
    return check_list


def _what(check):
    """What ``check`` wants, found by giving it a value no check accepts."""
    return check(object()) or "a value"


_BOOL = _kind(bool, "true or false")
_OBJECT = _kind(dict, "a JSON object")
_COUNT = _int(1)
_SIDE = _int(1, 65536)
_RATE = _number(0, low_open=True)
_FIGURE = _nullable(_number())  # a figure a run measured: null when there was none

# Every key of a run's config.json (tfresnet.training.fitting.fit_run, tfresnet.training.transfer_fit.fit).
CONFIG_KEYS = {
    "model": _text, "registry": _BOOL, "model_kwargs": _OBJECT,
    "classes": _int(2, 1_000_000), "image_size": _list_of(_SIDE, 2), "dataset": _text,
    "num_train": _COUNT, "num_val": _COUNT,
    "val_fraction": _nullable(_number(0, low_open=True, high=1)),
    "augment": _nullable(_text), "recipe": _nullable(_text),
    "recipe_reason": _nullable(_kind(str, "a string")),
    "batch_reason": _nullable(_kind(str, "a string")),
    "hyperparameters": _nullable(_OBJECT), "lr": _nullable(_RATE),
    "batch_size_per_replica": _nullable(_COUNT), "replicas": _nullable(_COUNT),
    "global_batch": _nullable(_COUNT), "strategy": _nullable(_text),
    "epochs": _nullable(_int(0, MAX_EPOCHS)), "steps_per_epoch": _nullable(_COUNT),
    "seed": _int(0, SEED_MAX, "an integer from 0 to 2**32 - 1"), "mixed_precision": _BOOL,
    "jit_compile": _BOOL, "steps_per_execution": _COUNT,
    "sync_batchnorm": _BOOL, "normalization": _nullable(_OBJECT),
    "tfresnet_version": _kind(str, "a string"),
    "skipped_images": _list_of(_kind(str, "a string")), "feature_cache": _OBJECT,
    "precise_bn": _OBJECT,
    "result": _OBJECT,
    # a transfer-learning run (tfresnet.training.transfer_fit)
    "weights": _text, "weights_note": _kind(str, "a string"),
    "freeze_epochs": _nullable(_int(0, MAX_EPOCHS)), "unfreeze_from": _nullable(_text),
    "fine_tune_lr": _nullable(_RATE), "fit": _OBJECT, "phases": _list_of(_OBJECT),
    "fine_tune_epochs": _nullable(_int(0, MAX_EPOCHS)), "fine_tune_batchnorm": _BOOL,
    "lr_source": _nullable(_kind(str, "a string")),
}
# model_kwargs' keys: the builders' extra arguments.
MODEL_KWARGS = {"alpha": _nullable(_number(0, low_open=True, high=1024)),
                "res": _nullable(_SIDE), "shortcut": _nullable(_text),
                "name": _nullable(_text), "weights": _nullable(_kind(str, "a string"))}
# result's keys (tfresnet.training.fitting._result_record, transfer_fit._finish).
RESULT_KEYS = {"val_accuracy": _FIGURE, "best_val_accuracy": _FIGURE,
               "best_epoch": _int(0), "images_per_second": _FIGURE,
               "wall_time_seconds": _FIGURE, "resumed_at_epoch": _int(0),
               "warnings": _list_of(_kind(str, "a string")),
               "kept_epoch": _nullable(_int(0)), "final_epoch": _nullable(_int(0)),
               "kept": _nullable(_OBJECT)}


def _check_keys(path, obj, schema, prefix=""):
    for key, check in schema.items():
        if key in obj:
            want = check(obj[key])
            if want:
                raise cli.UsageError(f"{path}: {prefix + key!r} must be {want}. Received: "
                                     f"{prefix}{key}={_short(obj[key])}")


def _short(value) -> str:
    text = json.dumps(value, allow_nan=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _read_text(path) -> str:
    fileio.check_input_file(path, "run file", CONFIG_MAX_BYTES)
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise cli.UsageError(f"{path}: not UTF-8 text (a damaged file?)") from None
    except OSError as err:
        raise cli.UsageError(f"cannot read {path!r}: {err.strerror}") from None


# ----------------------------------------------------------------------------- the files


def read_config(folder, *, missing_ok=True) -> dict:
    """``folder/config.json``, checked against :data:`CONFIG_KEYS` ({} when absent and
    ``missing_ok``).

    Raises:
      ValueError: one line naming the file, the key and the value.
    """
    path = os.path.join(folder, RUN_FILES.config)
    if not os.path.lexists(path):
        if missing_ok:
            return {}
        raise cli.UsageError(f"{folder!r} has no config.json")
    try:
        config = json.loads(_read_text(path))
    except ValueError as err:
        if isinstance(err, cli.UsageError):
            raise
        raise cli.UsageError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise cli.UsageError(f"{path}: must hold a JSON object of the run's settings. "
                             f"Received: {_short(config)}")
    _check_keys(path, config, CONFIG_KEYS)
    _check_keys(path, config.get("model_kwargs") or {}, MODEL_KWARGS, "model_kwargs.")
    _check_keys(path, config.get("result") or {}, RESULT_KEYS, "result.")
    return config


def read_history(folder) -> list[dict]:
    """Rows of ``folder/history.csv`` as dicts of numbers ([] when there is none): an
    ``epoch`` column of integers >= 1, every other cell a number (``nan`` allowed: a
    diverged epoch) or empty.

    Raises:
      ValueError: one line naming the file, the line, the column and the value.
    """
    path = os.path.join(folder, RUN_FILES.history) if folder else None
    if not path or not os.path.lexists(path):
        return []
    text = _read_text(path)
    if "\0" in text:
        raise cli.UsageError(f"{path}: holds NUL bytes (a damaged file?)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        return []
    if "epoch" not in reader.fieldnames:
        raise cli.UsageError(f"{path}: has no 'epoch' column. Received: columns "
                             f"{','.join(reader.fieldnames)[:80]}")
    rows = []
    for line, raw in enumerate(reader, start=2):
        if None in raw:
            raise cli.UsageError(f"{path}: line {line} has more cells than the header")
        row = {}
        for key, value in raw.items():
            if value in ("", None):
                continue
            try:
                row[key] = float(value)
            except ValueError:
                raise cli.UsageError(f"{path}: line {line}, column {key!r} must be a "
                                     f"number. Received: {key}={value[:40]!r}") from None
        epoch = row.get("epoch")
        if epoch is None or not math.isfinite(epoch) or epoch != int(epoch) or epoch < 1:
            raise cli.UsageError(f"{path}: line {line}, column 'epoch' must be an integer "
                                 f">= 1. Received: epoch={raw.get('epoch')!r}")
        row["epoch"] = int(epoch)
        rows.append(row)
    return rows


def check_links(folder, names=None) -> None:
    """Refuses a run folder holding a symbolic link that leads outside it: training
    would write (and delete) checkpoints through ``backup -> ../victim``, and a
    ``labels.txt -> /etc/passwd`` would be read as the run's own. Checks every file and
    folder under ``folder`` (links inside it are fine), or only ``names`` in it; the
    folder itself may be a link. Never opens a file, so a refusal shows no content.

    Raises:
      UsageError: naming the link and where it points.
    """
    root = os.path.realpath(folder)
    if names is None:
        links = [os.path.join(top, name) for top, dirs, files in os.walk(folder)
                 for name in dirs + files if os.path.islink(os.path.join(top, name))]
    else:
        links = [os.path.join(folder, n) for n in names
                 if os.path.islink(os.path.join(folder, n))]
    for link in sorted(links):
        target = os.path.realpath(link)
        if target != root and not target.startswith(root + os.sep):
            raise cli.UsageError(
                f"run folder {folder!r}: {os.path.relpath(link, folder)!r} is a symbolic "
                f"link to {os.readlink(link)!r}, outside the run folder, which this package "
                f"would read or write through; replace the link with a copy of what it "
                f"points to, or remove it")


def check_run_folder(folder) -> dict:
    """Checks config.json and history.csv of ``folder`` and of each of its sub-folders
    that is a run too (a transfer run's phases), after :func:`check_links`; returns
    ``folder``'s config."""
    check_links(folder)
    for sub in sorted(e.path for e in os.scandir(folder)
                      if e.is_dir(follow_symlinks=False)
                      and os.path.lexists(os.path.join(e.path, RUN_FILES.config))):
        read_config(sub)
        read_history(sub)
    read_history(folder)
    return read_config(folder)

