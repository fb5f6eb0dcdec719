"""The run directory: what a run writes, how it is checked, resumed and closed.

A run directory holds::

    config.json    model, data, recipe and hyper-parameters (+ the results at the end)
    labels.txt     one class name a line (label i on line i + 1)
    history.csv    one row per epoch: loss, accuracy, val_loss, val_accuracy, lr
    best.keras     the model of the best validation accuracy so far
    model.keras    the best epoch's model (rundir.better; float32, ready for the export)
    logs/          TensorBoard logs
    backup/        BackupAndRestore checkpoint, only while a run is unfinished

Every epoch ends with a checkpoint in ``backup/``; running the same command again
after an interruption resumes at the next epoch with the weights, optimizer state and
learning rate saved. Single files are written atomically. Under multi-worker only the
chief writes the run directory (the other workers write their checkpoints in
temporary folders, as Keras requires).
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time

import keras

from tfresnet.training import runschema
from tfresnet.training.optim import current_lr
from tfresnet.utils import fileio, kerasfiles

RUN_DIRS = ("logs", "backup")
# What keras.callbacks.BackupAndRestore writes in backup/ (and its previous checkpoint).
KERAS_BACKUP_FILES = ("latest.weights.h5", "training_metadata.json",
                      "latest.weights.h5.bkp", "training_metadata.json.bkp")
# Recorded from the start of a run only since a later release: an interrupted run of an
# earlier one lacks them and resumes with today's value.
_RECORDED_LATER = ("precise_bn.enabled", "fit.precise_bn.enabled")
# config.json keys that may differ when an interrupted run is resumed.
_RESUME_FREE_KEYS = ("result", "jit_compile", "steps_per_execution", "tfresnet_version", "feature_cache",
                     "stopping")


# ----------------------------------------------------------------------------- history, models


def better(row, best) -> bool:
    """True when epoch ``row`` beats ``best`` (a row or None): the higher validation
    accuracy, ties broken by the lower validation loss. A NaN or missing accuracy never
    wins. The one rule for "best" of a run: best.keras, the model a run keeps
    (model.keras), the summary's best epoch and the phase a transfer run keeps."""
    acc = row.get("val_accuracy", float("nan"))
    if not math.isfinite(acc):
        return False
    if best is None:
        return True
    best_acc = best.get("val_accuracy", float("nan"))
    if not math.isfinite(best_acc) or acc > best_acc:
        return True
    loss, best_loss = row.get("val_loss", math.inf), best.get("val_loss", math.inf)
    loss = loss if math.isfinite(loss) else math.inf
    return acc == best_acc and loss < (best_loss if math.isfinite(best_loss) else math.inf)


def best_row(rows):
    """The best of history ``rows`` by :func:`better`, or None."""
    best = None
    for row in rows:
        if better(row, best):
            best = row
    return best


class EpochRecorder(keras.callbacks.Callback):
    """Keeps history.csv (merged with an interrupted session's rows), best.keras, the
    best epoch's weights, images/s.

    Args:
      run_dir: where history.csv and best.keras go (None: keep them in memory only).
      chief: False on a non-chief worker, which saves to a temporary folder instead.
      images_per_epoch: training images one epoch processes (for images/s).
      schedule: the optimizer's learning-rate schedule (for the ``lr`` column).
      save_best: save best.keras at every improvement (False: the run saves it at its
        end; for the many cheap epochs of a classifier on stored features).
    """

    def __init__(self, run_dir, *, chief, images_per_epoch, schedule=None, save_best=True):
        super().__init__()
        self.run_dir, self.chief, self.images_per_epoch = run_dir, chief, images_per_epoch
        self.schedule, self.save_best = schedule, save_best
        self.rows, self.initial_epoch = [], None
        self.full_model = None  # saved as best.keras instead of the model being fit
        self.best_weights = None  # the best epoch's weights, when it ran in this session
        self.epoch_times = []
        self._epoch_start = self._train_time = None

    @property
    def best(self):
        """The best epoch's history row (:func:`better`), or None."""
        return best_row(self.rows)

    def on_epoch_begin(self, epoch, logs=None):
        if self.initial_epoch is None:  # BackupAndRestore has restored by now
            self.initial_epoch = epoch
            self.rows = [r for r in read_history(self.run_dir) if r["epoch"] <= epoch]
        self._lr = current_lr(self.model, self.schedule)
        self._train_time = None
        self._epoch_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._epoch_start is not None and self._train_time is None:
            self._train_time = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        if self._train_time is None:
            self._train_time = time.perf_counter() - self._epoch_start
        self.epoch_times.append(self._train_time)
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()
                                      if k != "lr"}, "lr": self._lr}
        improved = better(row, self.best)
        self.rows.append(row)
        if improved:
            self.best_weights = self.model.get_weights()
        if self.run_dir is None:
            return
        if self.chief:
            fileio.write_text(os.path.join(self.run_dir, runschema.RUN_FILES.history), history_csv(self.rows))
        if improved and self.save_best:
            save_model(self.full_model or self.model, os.path.join(self.run_dir, runschema.RUN_FILES.best),
                       chief=self.chief)

    def restore_best(self, full_model):
        """Puts the best epoch's weights into the model being fit (``full_model`` holds
        it: the same network, or the network whose classifier the fit model shares).

        Returns:
          The epoch now in the model: the best one, or the last one when the best ran
          in an earlier, interrupted session whose best.keras cannot be read.
        """
        best, last = self.best, (self.rows[-1]["epoch"] if self.rows else 0)
        if best is None or best["epoch"] == last:
            return last
        if self.best_weights is not None and any(r is best for r in self.rows[
                len(self.rows) - len(self.epoch_times):]):
            self.model.set_weights(self.best_weights)
            return best["epoch"]
        path = os.path.join(self.run_dir or "", runschema.RUN_FILES.best)
        try:  # the best epoch ran before a resume: its weights are in best.keras
            kerasfiles.load_weights(full_model, path)
        except (ValueError, OSError):
            return last
        return best["epoch"]

    def on_train_end(self, logs=None):
        if self.initial_epoch is None:
            # No epoch ran: BackupAndRestore restored a run whose every epoch was done
            # (killed while saving at the end). Its history is the run's history.
            self.initial_epoch = int(self.params.get("epochs") or 0)
            self.rows = [r for r in read_history(self.run_dir)
                         if r["epoch"] <= self.initial_epoch]

    @property
    def images_per_second(self) -> float:
        """Training images/s, leaving out the first (tracing) epoch when there are more
        (NaN when this session trained no epoch)."""
        times = self.epoch_times[1:] or self.epoch_times
        return len(times) * self.images_per_epoch / sum(times) if times else float("nan")


def read_history(run_dir) -> list[dict]:
    """Rows of ``run_dir/history.csv`` as dicts of numbers ([] when there is none),
    checked by :func:`tfresnet.training.runschema.read_history`."""
    return runschema.read_history(run_dir)


def history_csv(rows) -> str:
    """CSV text of history rows: epoch first, lr last, the metrics in between."""
    keys = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch", "lr"}) + ["lr"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (row[k] if k == "epoch" else f"{row[k]:.6g}")
                         for k in keys if k in row})
    return out.getvalue()


def save_model(model, path, *, chief=True):
    """Saves a .keras file atomically; a non-chief worker saves into a temporary folder.

    Every worker of a multi-worker run must save (reading synchronized variables is a
    collective operation); only the chief's file is kept.
    """
    if not chief:
        folder = tempfile.mkdtemp(prefix="tfresnet-worker-")
        try:
            model.save(os.path.join(folder, os.path.basename(path)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    with fileio.atomic_path(path) as tmp:
        staged = tmp + ".keras"  # Keras picks the format from the extension
        try:
            model.save(staged)
            os.replace(staged, tmp)
        finally:
            with contextlib.suppress(OSError):
                os.remove(staged)


# ----------------------------------------------------------------------------- checks


def plan_run_dir(out_dir, config, overwrite):
    """Checks ``out_dir`` without writing; returns "new", "resume" or "overwrite".

    Raises:
      ValueError: for a file in the way, an unwritable parent, a finished run (without
        ``overwrite``) or an interrupted run of another configuration.
    """
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"output folder {out_dir!r} is a file, not a folder")
    if not os.path.isdir(out_dir):
        parent = os.path.dirname(os.path.abspath(out_dir))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise ValueError(f"cannot create output folder {out_dir!r}: {parent!r} is not "
                             f"a writable folder")
        return "new"
    if not os.access(out_dir, os.W_OK):
        raise ValueError(f"output folder {out_dir!r} is not writable")
    runschema.check_links(out_dir)  # resumed or overwritten: nothing written through a link
    ours = [n for n in runschema.RUN_FILES + RUN_DIRS if os.path.exists(os.path.join(out_dir, n))]
    if not ours:
        return "new"
    if overwrite:
        return "overwrite"
    if _is_finished(out_dir):
        raise ValueError(f"{out_dir!r} already holds a finished run: pass "
                         f"`overwrite=True` to replace it, or choose another `out_dir`")
    if not os.path.lexists(os.path.join(out_dir, runschema.RUN_FILES.config)):
        raise ValueError(f"{out_dir!r} holds files of another run but no config.json: "
                         f"pass `overwrite=True` to start again")
    if has_backup(out_dir) and not any(os.path.exists(os.path.join(out_dir, "backup", n))
                                       for n in KERAS_BACKUP_FILES):
        raise ValueError(f"{out_dir!r} holds a run interrupted under an earlier release "
                         f"(Keras 2, tf_keras), whose backup/ this release cannot resume: "
                         f"pass `overwrite=True` to start it again")
    saved = runschema.check_run_folder(out_dir)  # its history too, before any write
    saved, config = _flatten(saved), _flatten(json.loads(run_json(config)))
    differ = sorted(k for k in set(saved) | set(config)
                    if not _resume_free(k, saved) and saved.get(k) != config.get(k))
    if differ:
        was = ", ".join(f"{k}={saved.get(k)!r} (now {config.get(k)!r})" for k in differ[:4])
        raise ValueError(f"{out_dir!r} holds an interrupted run with other settings: {was}; "
                         f"resume with the same settings, or pass `overwrite=True`")
    return "resume"


def _resume_free(key, saved) -> bool:
    """A flattened config.json key a resumed run may change: a free key at the top or
    under a transfer run's ``fit``, or one the interrupted run's release did not record."""
    parts = key.split(".")
    return (parts[0] in _RESUME_FREE_KEYS or parts[-1] in _RESUME_FREE_KEYS
            or (key in _RECORDED_LATER and key not in saved))


def _flatten(config, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_finished(out_dir) -> bool:
    """True when ``out_dir`` holds a saved run: model.keras, and config.json with its
    results or no backup (a run killed before its results were written has both)."""
    if not os.path.exists(os.path.join(out_dir, runschema.RUN_FILES.model)):
        return False
    if not has_backup(out_dir):
        return True
    return "result" in runschema.read_config(out_dir)


def _is_run_file(name) -> bool:
    return name in runschema.RUN_FILES


def has_backup(out_dir) -> bool:
    """True when ``out_dir/backup`` holds a checkpoint (an interrupted run)."""
    return any(files for _, _, files in os.walk(os.path.join(out_dir, "backup")))


def clear_run_dir(out_dir):
    for name in runschema.RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, name))
    for name in RUN_DIRS:
        shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)


def default_run_dir(model_name, dataset) -> str:
    """``runs/<model>-<dataset>``: the same command always uses (and resumes) one folder."""
    spec = dataset if isinstance(dataset, str) else getattr(dataset, "name", "data")
    slug = os.path.basename(os.path.normpath(spec.replace("tfds:", "").replace("/", "_")))
    return os.path.join("runs", f"{model_name}-{slug or 'data'}")


# ----------------------------------------------------------------------------- open, run, close


def open_run_dir(run_dir, config, labels, *, overwrite, chief):
    """Checks ``run_dir`` (resume, refuse or overwrite); the chief writes config and labels."""
    state = plan_run_dir(run_dir, config, overwrite)
    if not chief:
        return
    if state == "overwrite":
        clear_run_dir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    fileio.remove_temp_files(run_dir, _is_run_file)  # left by a killed run
    if state != "resume":
        fileio.write_text(os.path.join(run_dir, runschema.RUN_FILES.config), run_json(config))
    fileio.write_text(os.path.join(run_dir, runschema.RUN_FILES.labels), "\n".join(labels) + "\n")


def run_callbacks(recorder, run_dir, recipe, *, chief, verbose):
    """The recorder, then BackupAndRestore, then the rest.

    At an epoch's end the recorder writes history.csv and best.keras before
    BackupAndRestore checkpoints the epoch, so a checkpoint of epoch E means that
    history.csv and best.keras hold epochs 1..E (a kill in between repeats epoch E).
    The checkpoint is deleted by :func:`close_run_dir` once model.keras and the results
    are saved, not at the end of ``fit`` (Keras' default), so a run killed while saving
    completes its save when run again.
    """
    cbs = [recorder]
    if run_dir is not None:
        cbs.append(_backup(os.path.join(run_dir, "backup"), chief=chief))
        if chief and tensorboard_available():
            cbs.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"),
                                                   write_graph=False, profile_batch=0))
        elif chief and verbose:
            print("note: the tensorboard package is not installed: no logs/ "
                  "(pip install tensorboard)", file=sys.stderr)
    if recipe.schedule == "plateau":
        cbs.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=recipe.decay_factor, patience=recipe.patience,
            verbose=1 if verbose else 0))
    return cbs


def _backup(folder, *, chief):
    """Keras' BackupAndRestore of the run's ``backup/`` folder.

    It keeps the previous epoch's checkpoint too (``double_checkpoint``): a run killed
    while the checkpoint is written resumes from the one before. A non-chief worker
    of a multi-worker run saves into a temporary folder of its own (two workers cannot
    write one file), which starts as a copy of ``backup/``, so that it resumes at the
    chief's epoch.
    """
    if chief:
        return keras.callbacks.BackupAndRestore(folder, double_checkpoint=True,
                                                delete_checkpoint=False)
    own = tempfile.mkdtemp(prefix="tfresnet-worker-backup-")
    if os.path.isdir(folder):
        shutil.copytree(folder, own, dirs_exist_ok=True)
    return keras.callbacks.BackupAndRestore(own, delete_checkpoint=True)


def close_run_dir(run_dir, model, config, *, chief):
    """Saves model.keras, then config.json (holding the results), then drops the backup.

    In this order, a run killed at any point of it is either finished (model.keras and
    config.json's ``result``) or still has its backup, and running it again completes
    the save with the figures from history.csv.
    """
    save_model(model, os.path.join(run_dir, runschema.RUN_FILES.model), chief=chief)
    if not chief:
        return
    fileio.write_text(os.path.join(run_dir, runschema.RUN_FILES.config), run_json(config))
    shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)


def tensorboard_available() -> bool:
    """True when the tensorboard package (which tf.summary needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def run_json(obj) -> str:
    """Strict JSON (NaN and infinities as null), as every JSON file of a run."""
    return fileio.to_json(obj, sort_keys=False, default=str)
