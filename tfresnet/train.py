"""Training any registry model under ``tf.distribute`` with the papers' recipes.

``fit(...)`` is what the tests call; ``python -m tfresnet.train`` is a thin CLI over it.

Strategies (:func:`make_strategy`): ``"mirrored"`` (default; every local GPU, else the
CPU, or every logical CPU device configured), ``"multiworker"``
(MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``), ``"one"`` (one device)
and ``"default"`` (no distribution). ``--batch-size`` is per replica; the global batch
is ``batch_size x replicas`` and the recipe's learning rate is scaled with it
(:mod:`tfresnet.recipes`). The model is built inside ``strategy.scope()`` and
``model.fit`` distributes the tf.data pipeline; under multi-worker the data is sharded
by element (``AutoShardPolicy.DATA``), so no file-level sharding is needed.

A run directory holds::

    config.json    model, data, recipe and hyper-parameters (+ the results at the end)
    labels.txt     one class name a line (label i on line i + 1)
    history.csv    one row per epoch: loss, accuracy, val_loss, val_accuracy, lr
    best.keras     the model of the best validation accuracy so far
    model.keras    the final model (float32, ready for the export)
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
import dataclasses
import importlib.util
import io
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfresnet.variant import ModelVariant
from tfresnet import checkpoint, cli, data, layers as _layers, recipes, registry  # noqa: F401
from tfresnet import transfer

STRATEGIES = ("mirrored", "multiworker", "one", "default")
MIN_STEPS_PER_EPOCH = 10  # fewer at the recipe's batch: the data is small, see SMALL_DATA_BATCH
SMALL_DATA_BATCH = 8      # global batch on small data (as export.tflite's short runs)
RUN_FILES = ("config.json", "labels.txt", "history.csv", "best.keras", "model.keras")
RUN_DIRS = ("logs", "backup")
PROG = "python -m tfresnet.train"
MAX_EPOCHS = 100_000        # bounds on --epochs/--patience and --steps-per-epoch, far above
MAX_STEPS = 10_000_000      # any real run, so that a typo is refused instead of run
MAX_LR = 100.0
# config.json keys that may differ when an interrupted run is resumed.
_RESUME_FREE_KEYS = ("result", "jit_compile", "tfresnet_version", "feature_cache")


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
      model: the trained model as plain float32 Keras layers outside any strategy
        (:func:`portable_model`), what model.keras holds.
      run_dir: the run directory, or None when nothing was written.
      history: per-epoch lists (``epoch``, ``loss``, ``accuracy``, ``val_loss``,
        ``val_accuracy``, ``lr``), including epochs of an earlier, resumed session.
      val_accuracy: validation accuracy of ``model`` (the final weights).
      best_val_accuracy, best_epoch: the best validation accuracy and its epoch (1-based).
      data: the DataSplit trained on.
      labels: class names.
      images_per_second: training throughput (the first epoch of a session, which
        traces and compiles, is left out when there are more).
      wall_time: seconds from the call to the end of training.
      initial_epoch: epochs already done when this session started (0 unless resumed).
      config: the run configuration (what config.json holds).
    """

    model: keras.Model
    run_dir: str | None
    history: dict
    val_accuracy: float
    best_val_accuracy: float
    best_epoch: int
    data: data.DataSplit
    labels: list
    images_per_second: float
    wall_time: float
    initial_epoch: int
    config: dict


# ----------------------------------------------------------------------------- strategy


def make_strategy(name: str = "mirrored") -> tf.distribute.Strategy:
    """The tf.distribute strategy ``name`` (one of ``STRATEGIES``).

    ``"multiworker"`` needs ``TF_CONFIG`` and must be made before any other
    TensorFlow op runs in the process (a TensorFlow rule).

    Raises:
      ValueError: for an unknown name or a missing/bad ``TF_CONFIG``.
    """
    if name == "mirrored":
        return mirrored_strategy()
    if name == "multiworker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "one":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}. "
                     f"Received: strategy={name!r}")


def mirrored_strategy(devices=None) -> tf.distribute.MirroredStrategy:
    """``tf.distribute.MirroredStrategy(devices)`` whose collectives cannot clash.

    Every MirroredStrategy of a process numbers its collective operations from the same
    start, so a second one (a second ``fit`` call, a test) can reuse a number the first
    used with another tensor shape, and TensorFlow aborts ("Shape mismatch in the
    collective instance ..."; all later collectives fail too). Each strategy made here
    gets its own range (through ``_collective_key_base``, the attribute TensorFlow's own
    tests use for this).
    """
    cls = tf.distribute.MirroredStrategy
    saved = cls._collective_key_base
    cls._collective_key_base = _KEY_BLOCK * next(_KEY_BASES)
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = saved


_KEY_BASES = itertools.count(1)
_KEY_BLOCK = 10_000


def _check_tf_config():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                         "(cluster and task of this worker); see the README")
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        ok = (isinstance(workers, list) and workers and task["type"] in ("worker", "chief")
              and isinstance(task["index"], int))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"TF_CONFIG must be JSON like {{\"cluster\": {{\"worker\": "
                         f"[\"host:port\", ...]}}, \"task\": {{\"type\": \"worker\", "
                         f"\"index\": 0}}}}. Received: TF_CONFIG={text!r}")


def strategy_name(strategy) -> str:
    """The ``STRATEGIES`` name of a strategy object (its class name when none fits)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.OneDeviceStrategy):
        return "one"
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return "default"
    return type(strategy).__name__


def is_chief(strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


# ----------------------------------------------------------------------------- model


def model_depth(model) -> int:
    """Weighted layers (Conv2D, DepthwiseConv2D, Dense): 110 for resnet110."""
    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    return sum(isinstance(layer, kinds) for layer in model.layers)


def prepare_model(model, *, weight_decay=0.0, depthwise_weight_decay=0.0,
                  mixed_precision=False, sync_batchnorm=False) -> keras.Model:
    """A trainable copy of ``model``: L2 decay on kernels, optional mixed precision/SyncBN.

    Call it inside ``strategy.scope()`` so the copy's variables are distributed. The
    copy has ``model``'s weights. Weight decay is ``kernel_regularizer=L2(wd / 2)`` on
    Conv2D and Dense layers and ``depthwise_regularizer=L2(dw_wd / 2)`` on
    DepthwiseConv2D (gradient ``wd * w``, the papers' weight decay); biases and BN are
    not decayed. With ``mixed_precision`` every layer computes in float16 (GPU) or
    bfloat16 (CPU) with float32 variables, except the softmax classifier, kept float32.
    ``sync_batchnorm`` makes BatchNormalization use the statistics of the whole global
    batch instead of each replica's share.

    Raises:
      ValueError: for a model Keras cannot clone (a subclassed model).
    """
    policy = mixed_policy_name() if mixed_precision else None

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            config["depthwise_regularizer"] = _l2(depthwise_weight_decay)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            config["kernel_regularizer"] = _l2(weight_decay)
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = bool(sync_batchnorm)
        if policy and not isinstance(layer, keras.layers.InputLayer):
            softmax_head = (isinstance(layer, keras.layers.Dense)
                            and config.get("activation") == "softmax")
            config["dtype"] = "float32" if softmax_head else policy
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except ValueError as err:
        raise ValueError(f"fit needs a functional or Sequential keras.Model: "
                         f"{' '.join(str(err).split())[:200]}") from None
    copy.set_weights(model.get_weights())
    return copy


def _l2(decay):
    return keras.regularizers.L2(decay / 2) if decay else None


def mixed_policy_name() -> str:
    """``"mixed_float16"`` with a GPU, else ``"mixed_bfloat16"`` (what CPUs run fast)."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


def portable_model(model) -> keras.Model:
    """A copy of ``model`` outside any strategy: float32, plain BatchNormalization.

    The copy holds what ``get_weights`` reads: under MirroredStrategy the replicas'
    BatchNormalization moving averages, averaged. (During training each replica
    evaluates with its own moving averages, so the last epoch's val_accuracy can
    differ slightly from the copy's.) It keeps the weight-decay regularizers.
    """

    def clone(layer):
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "float32"
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = False
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def accuracy(model, dataset) -> float:
    """Top-1 accuracy of ``model`` on a batched ``(images, labels)`` dataset."""
    correct = total = 0
    for images, labels in dataset:
        predicted = np.argmax(model(images, training=False).numpy(), axis=-1)
        correct += int(np.sum(predicted == labels.numpy()))
        total += len(predicted)
    return correct / max(total, 1)


def majority_share(split) -> float:
    """Share of the validation images in the largest class: what a model that always
    answers one class scores."""
    counts = np.bincount(np.fromiter(
        (int(y) for y in split.val.map(lambda image, label: label).as_numpy_iterator()),
        dtype=np.int64))
    return float(counts.max() / counts.sum()) if counts.size else float("nan")


COLLAPSE_MARGIN = 0.02  # val accuracy within this of the majority share: collapsed


def health_warnings(result) -> list[str]:
    """Plain-words warnings about a finished run: collapse and divergence.

    * collapsed: the validation accuracy (final and best) stays within
      ``COLLAPSE_MARGIN`` of the majority-class share, i.e. the model answers one
      class whatever the image;
    * diverged: a non-finite training loss, or a final training loss above both the
      first epoch's and chance level (ln of the number of classes).
    """
    out = []
    losses = [v for v in result.history.get("loss", []) if v is not None]
    if any(not math.isfinite(v) for v in losses):
        out.append("diverged: the training loss became NaN or infinite; lower the "
                   "learning rate (--lr)")
    elif len(losses) > 1:
        chance = math.log(max(len(result.labels), 2))
        if losses[-1] > losses[0] and losses[-1] > chance:
            out.append(f"diverged: the training loss rose from {losses[0]:.3g} to "
                       f"{losses[-1]:.3g}, above chance level {chance:.3g}; lower the "
                       f"learning rate (--lr)")
    share = majority_share(result.data)
    best = max(result.val_accuracy, result.best_val_accuracy
               if math.isfinite(result.best_val_accuracy) else 0.0)
    if math.isfinite(share) and best <= share + COLLAPSE_MARGIN:
        out.append(f"collapsed: validation accuracy {result.val_accuracy:.4f} (best "
                   f"{best:.4f}) is the majority-class share {share:.4f}: the model "
                   f"answers one class whatever the image; try a smaller --batch-size, a "
                   f"lower --lr, more epochs, or --weights to start from a trained backbone")
    return out


# ----------------------------------------------------------------------------- optimizer


def lr_schedule(recipe, *, lr, steps_per_epoch, total_steps, depth):
    """The learning rate (a number or a keras schedule) for ``recipe``.

    "steps": ``lr`` times ``decay_factor`` at each of ``boundaries`` x ``total_steps``,
    after a warm-up for deep networks (see :mod:`tfresnet.recipes`); "exponential":
    times ``epoch_decay`` after each epoch; "plateau" and "constant": the number ``lr``
    (plateau decays through a callback).
    """
    total = total_steps
    if recipe.schedule == "steps":
        # Step s (0-based) runs at values[i] while s <= bounds[i]: a decay "at 32k"
        # applies from the 32,001st step, i.e. s = 32,000 -> bound 31,999.
        bounds = [max(1, round(f * total)) - 1 for f in recipe.boundaries]
        values = [lr * recipe.decay_factor ** i for i in range(len(bounds) + 1)]
        if recipe.warmup_depth and depth >= recipe.warmup_depth and recipe.warmup_fraction:
            warmup = max(1, round(recipe.warmup_fraction * total)) - 1
            bounds, values = [warmup] + bounds, [lr * recipe.warmup_factor] + values
        # PiecewiseConstantDecay needs strictly increasing boundaries.
        keep = [i for i in range(len(bounds)) if i == 0 or bounds[i] > bounds[i - 1]]
        bounds = [bounds[i] for i in keep]
        values = [values[0]] + [values[i + 1] for i in keep]
        return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
    if recipe.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=steps_per_epoch, decay_rate=recipe.epoch_decay, staircase=True)
    return lr


def make_optimizer(recipe, learning_rate):
    """SGD with momentum or RMSprop per ``recipe`` (no built-in decay: see prepare_model)."""
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, rho=recipe.rho,
                                        momentum=recipe.momentum, epsilon=recipe.epsilon)
    return keras.optimizers.SGD(learning_rate, momentum=recipe.momentum)


def compile_model(model, optimizer, *, jit_compile=False):
    """Sparse categorical cross-entropy on the softmax output, accuracy metric."""
    if model.dtype_policy.name == "mixed_float16" or any(
            layer.dtype_policy.name == "mixed_float16" for layer in model.layers):
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    return model


def current_lr(model, schedule=None) -> float:
    """The learning rate of the optimizer's next step.

    Args:
      schedule: the keras LearningRateSchedule the optimizer was made with, if any.
        (With a schedule, ``optimizer.learning_rate`` holds the rate of the last step.)
    """
    optimizer = model.optimizer
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return float(schedule(optimizer.iterations.numpy()))
    return float(keras.backend.get_value(optimizer.learning_rate))


# ----------------------------------------------------------------------------- callbacks


class EpochRecorder(keras.callbacks.Callback):
    """Keeps history.csv (merged with an interrupted session's rows), best.keras, images/s.

    Args:
      run_dir: where history.csv and best.keras go (None: keep them in memory only).
      chief: False on a non-chief worker, which saves to a temporary folder instead.
      images_per_epoch: training images one epoch processes (for images/s).
      schedule: the optimizer's learning-rate schedule (for the ``lr`` column).
    """

    def __init__(self, run_dir, *, chief, images_per_epoch, schedule=None):
        super().__init__()
        self.run_dir, self.chief, self.images_per_epoch = run_dir, chief, images_per_epoch
        self.schedule = schedule
        self.rows, self.initial_epoch = [], None
        self.full_model = None  # saved as best.keras instead of the model being fit
        self.epoch_times = []
        self._epoch_start = self._train_time = None

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
        previous_best = max((r.get("val_accuracy", -1.0) for r in self.rows), default=-1.0)
        self.rows.append(row)
        if self.run_dir is None:
            return
        if self.chief:
            cli.write_text(os.path.join(self.run_dir, "history.csv"), history_csv(self.rows))
        if row.get("val_accuracy", -1.0) > previous_best:
            save_model(self.full_model or self.model, os.path.join(self.run_dir, "best.keras"),
                       chief=self.chief)

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
    """Rows of ``run_dir/history.csv`` as dicts of numbers ([] when there is none)."""
    path = os.path.join(run_dir, "history.csv") if run_dir else None
    if not path or not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)]
    for row in rows:
        row["epoch"] = int(row["epoch"])
    return rows


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
    with cli.atomic_path(path) as tmp:
        staged = tmp + ".keras"  # Keras picks the format from the extension
        try:
            model.save(staged)
            os.replace(staged, tmp)
        finally:
            with contextlib.suppress(OSError):
                os.remove(staged)


# ----------------------------------------------------------------------------- run dir


def _plan_run_dir(out_dir, config, overwrite):
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
    ours = [n for n in RUN_FILES + RUN_DIRS if os.path.exists(os.path.join(out_dir, n))]
    if not ours:
        return "new"
    if overwrite:
        return "overwrite"
    if _is_finished(out_dir):
        raise ValueError(f"{out_dir!r} already holds a finished run: pass --overwrite "
                         f"(overwrite=True) to replace it, or choose another --out")
    try:
        with open(os.path.join(out_dir, "config.json")) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        raise ValueError(f"{out_dir!r} holds files of another run but no readable "
                         f"config.json: pass --overwrite to start again") from None
    saved, config = _flatten(saved), _flatten(json.loads(_json(config)))
    differ = sorted(k for k in set(saved) | set(config)
                    if k.split(".")[0] not in _RESUME_FREE_KEYS and saved.get(k) != config.get(k))
    if differ:
        was = ", ".join(f"{k}={saved.get(k)!r} (now {config.get(k)!r})" for k in differ[:4])
        raise ValueError(f"{out_dir!r} holds an interrupted run with other settings: {was}; "
                         f"rerun the same command to resume, or pass --overwrite")
    return "resume"


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
    if not os.path.exists(os.path.join(out_dir, "model.keras")):
        return False
    if not _has_backup(out_dir):
        return True
    try:
        with open(os.path.join(out_dir, "config.json")) as f:
            return "result" in json.load(f)
    except (OSError, ValueError):
        return False


def _is_run_file(name) -> bool:
    return name in RUN_FILES


def _has_backup(out_dir) -> bool:
    """True when ``out_dir/backup`` holds a checkpoint (an interrupted run)."""
    return any(files for _, _, files in os.walk(os.path.join(out_dir, "backup")))


def _clear_run_dir(out_dir):
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, name))
    for name in RUN_DIRS:
        shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)


def default_run_dir(model_name, dataset) -> str:
    """``runs/<model>-<dataset>``: the same command always uses (and resumes) one folder."""
    spec = dataset if isinstance(dataset, str) else getattr(dataset, "name", "data")
    slug = os.path.basename(os.path.normpath(spec.replace("tfds:", "").replace("/", "_")))
    return os.path.join("runs", f"{model_name}-{slug or 'data'}")


# ----------------------------------------------------------------------------- fit


def _positive_int(name, value, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")


def _resolve_model(model, model_kwargs):
    """(registry name or None, ModelInfo or None, builder kwargs)."""
    kwargs = dict(model_kwargs or {})
    if isinstance(model, keras.Model):
        if kwargs:
            raise ValueError(f"model_kwargs apply to a registry name, not a keras.Model. "
                             f"Received: model_kwargs={kwargs!r}")
        return None, None, kwargs
    info = registry.model_info(model)
    for key in ("input_shape", "classes", "include_top"):
        if key in kwargs:
            raise ValueError(f"{key} is set by fit (from image_size and the data). "
                             f"Received: model_kwargs={kwargs!r}")
    unknown = sorted(set(kwargs) - set(info.extra_args) - {"weights", "name", "shortcut"})
    if unknown:
        allowed = ", ".join(info.extra_args) or "none"
        raise ValueError(f"{', '.join(unknown)} do(es) not apply to {model!r} (its extra "
                         f"arguments: {allowed}). Received: model_kwargs={kwargs!r}")
    return model, info, kwargs


def _resolve_image_size(image_size, info, model, kwargs):
    if image_size is None:
        if "res" in kwargs and kwargs["res"] is not None:
            return (kwargs["res"], kwargs["res"])
        if info is not None:
            return tuple(info.input_shape[:2])
        return tuple(model.input_shape[1:3])
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                       for s in image_size)):
        raise ValueError(f"image_size must be a positive integer or (height, width). "
                         f"Received: image_size={image_size!r}")
    if info is not None and min(image_size) < info.min_side:
        raise ValueError(f"{info.name} needs images of at least {info.min_side}x"
                         f"{info.min_side}. Received: image_size={tuple(image_size)!r}")
    return tuple(image_size)


DEFAULT_RECIPE = "resnet_imagenet"  # for a keras.Model no registry name matches


def _resolve_recipe(recipe, info, overrides, model=None):
    """(Recipe, why it was chosen)."""
    if isinstance(recipe, recipes.Recipe):
        base, why = recipe, "given"
    elif recipe:
        base, why = recipes.get_recipe(recipe), "given"
    elif info is not None:
        base, why = recipes.get_recipe(info.recipe), f"the {info.name} recipe"
    else:
        guess = registry.find_model(getattr(model, "name", ""))
        if guess is not None:
            base = recipes.get_recipe(guess.recipe)
            why = (f"the model is named {model.name!r}: a registry {guess.name} "
                   f"({guess.family}), whose recipe this is")
        else:
            base = recipes.get_recipe(DEFAULT_RECIPE)
            why = (f"the model's name {getattr(model, 'name', '')!r} matches no registry "
                   f"model, so the default; pass recipe= to choose")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return (base.replace(**changes) if changes else base), why


def _build(name, info, kwargs, model, *, size, classes):
    """The base model: built from the registry, or ``model`` checked against the data."""
    if info is None:
        if tuple(model.input_shape[1:3]) != tuple(size):
            raise ValueError(f"the model takes {model.input_shape[1:3]} images, not "
                             f"{tuple(size)}. Received: image_size={tuple(size)!r}")
        if model.output_shape[-1] != classes:
            raise ValueError(f"the model has {model.output_shape[-1]} outputs but the data "
                             f"has {classes} classes")
        return model
    shape_kwargs = {} if kwargs.get("res") else {"input_shape": (*size, 3)}
    return registry.get_model(name, classes=classes, **shape_kwargs, **kwargs)


def tensorboard_available() -> bool:
    """True when the tensorboard package (which tf.summary needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def _distributable(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def fit(model="resnet20", *, dataset="digits", epochs=None, batch_size=None, lr=None,
        recipe=None, strategy="mirrored", out_dir=None, seed=0, steps_per_epoch=None,
        image_size=None, model_kwargs=None, jit_compile=False, mixed_precision=False,
        data_dir=None, manual_dir=None, verbose=1, weight_decay=None, momentum=None,
        val_fraction=0.2, augment=None, sync_batchnorm=False, deterministic=False,
        overwrite=False, callbacks=(), recipe_overrides=None,
        skip_bad_images=False, weights=None, freeze_epochs=None, unfreeze_from=None,
        fine_tune_lr=None, cache_features=True) -> FitResult:
    """Trains ``model`` on ``dataset`` under a tf.distribute strategy.

    Everything is checked (arguments, strategy, data, model, output folder) before
    anything is written. With ``out_dir``, a run directory is written (see the module
    docstring) and an interrupted run in it is resumed at its next epoch.

    Args:
      model: a registry name (``"resnet20"``) or a functional/Sequential keras.Model.
      dataset: a :func:`tfresnet.data.load` spec ("digits", "tfds:cifar10", a folder)
        or a loaded :class:`tfresnet.data.DataSplit`.
      epochs: epochs to train; None: the recipe's length.
      batch_size: images per replica per step; None: the recipe's batch / replicas.
      lr: the learning rate at the global batch, used as given; None: the recipe's
        rate scaled by global batch / recipe batch.
      recipe: a name in ``tfresnet.recipes.RECIPES`` or a Recipe; None: the model's.
      strategy: one of ``STRATEGIES`` or a tf.distribute.Strategy.
      out_dir: the run directory; None writes nothing.
      seed: seeds Keras, NumPy, Python and the data split, shuffle and augmentation.
      steps_per_epoch: steps per epoch (the data repeats); None: one pass over the data.
      image_size: int or (height, width); None: the model's input size.
      model_kwargs: extra builder arguments (e.g. ``{"alpha": 0.5}``).
      jit_compile: compile the train step with XLA.
      mixed_precision: float16 (GPU) / bfloat16 (CPU) compute with float32 variables.
      data_dir, manual_dir, val_fraction: passed to :func:`tfresnet.data.load`.
      verbose: 0 silent, 1 progress bar, 2 one line per epoch.
      weight_decay, momentum: override the recipe's values.
      augment: one of ``tfresnet.data.AUGMENTATIONS``; None: the model family's.
      sync_batchnorm: BatchNormalization statistics over the global batch.
      deterministic: ``tf.config.experimental.enable_op_determinism()`` (process-wide).
      overwrite: replace a run already in ``out_dir`` instead of refusing/resuming.
      callbacks: extra keras callbacks, run after the package's own.
      recipe_overrides: other Recipe fields to change, e.g. ``{"patience": 2}``.
      skip_bad_images: an image folder's undecodable files are left out (a warning
        names each; config.json's ``skipped_images`` lists them) instead of failing.
      weights: start from pretrained weights (transfer learning, see
        :mod:`tfresnet.transfer`): ``"imagenet"``, a keras.applications ``.h5`` file or
        a tfresnet run / ``.keras`` file; ``model`` must then be a registry name. The
        run trains in two phases, in ``out_dir/1_head`` and ``out_dir/2_fine_tune``.
      freeze_epochs: with ``weights``: the first epochs train the new classifier alone,
        the backbone frozen (default: half of ``epochs``, which defaults to
        ``tfresnet.transfer.DEFAULT_EPOCHS``).
      unfreeze_from: with ``weights``: the stage or layer fine-tuning starts at (default all).
      fine_tune_lr: with ``weights``: the fine-tuning rate (default a tenth of the first
        phase's, which is the recipe's own rate unless ``lr`` is given).
      cache_features: when only the ``predictions`` classifier trains and nothing is
        augmented (the frozen phase of transfer learning), run the frozen backbone once
        and train the classifier on its stored features (see :func:`feature_cache_reason`);
        False trains through the whole network every step.

    Returns:
      A FitResult.

    Raises:
      ValueError: one line naming the bad input.
    """
    if weights is not None:
        return _fit_transfer(
            model, weights=weights, dataset=dataset, epochs=epochs,
            freeze_epochs=freeze_epochs, unfreeze_from=unfreeze_from,
            fine_tune_lr=fine_tune_lr, lr=lr, recipe=recipe, model_kwargs=model_kwargs,
            image_size=image_size, out_dir=out_dir, overwrite=overwrite, seed=seed,
            val_fraction=val_fraction, data_dir=data_dir, manual_dir=manual_dir,
            verbose=verbose, batch_size=batch_size, strategy=strategy,
            steps_per_epoch=steps_per_epoch, augment=augment, weight_decay=weight_decay,
            momentum=momentum, recipe_overrides=recipe_overrides, callbacks=callbacks,
            jit_compile=jit_compile, mixed_precision=mixed_precision,
            sync_batchnorm=sync_batchnorm, deterministic=deterministic,
            skip_bad_images=skip_bad_images, cache_features=cache_features)
    given = [k for k, v in (("freeze_epochs", freeze_epochs), ("unfreeze_from", unfreeze_from),
                            ("fine_tune_lr", fine_tune_lr)) if v is not None]
    if given:
        raise ValueError(f"--{given[0].replace('_', '-')} applies to transfer learning: add "
                         f"--weights (imagenet, a .h5 file or a run). "
                         f"Received: {given[0]}={locals()[given[0]]!r}")
    start = time.perf_counter()
    for key, value in (("epochs", epochs), ("batch_size", batch_size),
                       ("steps_per_epoch", steps_per_epoch)):
        _positive_int(key, value)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2. Received: verbose={verbose!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                           or not math.isfinite(lr) or lr <= 0):
        raise ValueError(f"lr must be a number > 0. Received: lr={lr!r}")
    name, info, kwargs = _resolve_model(model, model_kwargs)
    recipe, recipe_reason = _resolve_recipe(recipe, info, {**(recipe_overrides or {}),
                                                           "weight_decay": weight_decay,
                                                           "momentum": momentum}, model)
    if augment is not None and augment not in data.AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(data.AUGMENTATIONS)}. "
                         f"Received: augment={augment!r}")
    size = _resolve_image_size(image_size, info, model, kwargs)
    # MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    strat = strategy if isinstance(strategy, tf.distribute.Strategy) else make_strategy(strategy)
    chief = is_chief(strat)
    replicas = strat.num_replicas_in_sync
    per_replica = batch_size or max(1, recipe.ref_batch // replicas)
    global_batch = per_replica * replicas
    if name is not None:  # refuse what cannot fit before the data or model is allocated
        ModelVariant(name, kwargs.get("alpha"), kwargs.get("res") or max(size)).check_memory(
            classes=2, batch=per_replica,
            flags={"res": "image_size", "alpha": "alpha", "batch": "batch_size",
                   "classes": None})

    if isinstance(dataset, data.DataSplit):
        split = dataset
        if tuple(split.image_size) != tuple(size):
            raise ValueError(f"the DataSplit holds {split.image_size} images, the model "
                             f"takes {size}. Received: image_size={image_size!r}")
    else:
        split = data.load(dataset, image_size=size, data_dir=data_dir, manual_dir=manual_dir,
                          seed=int(seed), val_fraction=val_fraction,
                          skip_bad_images=skip_bad_images)
    batch_reason = "given" if batch_size else "the recipe's batch"
    small_data_lr = None
    if not batch_size and not steps_per_epoch and \
            split.num_train < MIN_STEPS_PER_EPOCH * global_batch and \
            global_batch > SMALL_DATA_BATCH:
        per_replica = max(1, SMALL_DATA_BATCH // replicas)
        batch_reason = (f"small data: {split.num_train} training images would make fewer "
                        f"than {MIN_STEPS_PER_EPOCH} steps an epoch at the recipe's batch "
                        f"{global_batch}, too few for BatchNorm's statistics to settle; "
                        f"the recipe's own lr, not scaled down to the batch")
        small_data_lr = recipe.lr
        global_batch = per_replica * replicas
    if global_batch > split.num_train:
        raise ValueError(f"the global batch ({per_replica} x {replicas} replicas = "
                         f"{global_batch}) is larger than the {split.num_train} training "
                         f"images. Received: batch_size={per_replica}")
    if split.num_val < 1:
        raise ValueError(f"the data has no validation images ({split.name!r})")
    if augment is None and small_data_lr is not None:
        augment = "none"
        batch_reason += "; no augmentation (a short run on few images learns faster without)"
    augment = augment or (data.AUGMENT_FOR_FAMILY.get(info.family, "none") if info else "none")
    steps = steps_per_epoch or math.ceil(split.num_train / global_batch)
    # The paper's length in steps when neither the call nor the recipe gives epochs.
    total_steps = (recipe.total_steps if epochs is None and recipe.epochs is None
                   else (epochs or recipe.epochs) * steps)
    epochs = epochs or recipe.total_epochs(steps)
    learning_rate = (float(lr) if lr is not None else small_data_lr
                     or recipe.scaled_lr(global_batch))
    labels = [str(label) for label in split.labels]

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    base = _build(name, info, kwargs, model, size=size, classes=len(labels))
    with strat.scope():
        net = prepare_model(base, weight_decay=recipe.weight_decay,
                            depthwise_weight_decay=recipe.depthwise_weight_decay,
                            mixed_precision=mixed_precision, sync_batchnorm=sync_batchnorm)
        schedule = lr_schedule(recipe, lr=learning_rate, steps_per_epoch=steps,
                               total_steps=total_steps, depth=model_depth(net))
        compile_model(net, make_optimizer(recipe, schedule), jit_compile=jit_compile)

    config = {
        "model": name or base.name, "registry": name is not None, "model_kwargs": kwargs,
        "classes": len(labels), "image_size": list(size), "dataset": split.name,
        "num_train": split.num_train, "num_val": split.num_val,
        "val_fraction": val_fraction, "augment": augment, "recipe": recipe.name,
        "recipe_reason": recipe_reason, "batch_reason": batch_reason,
        "hyperparameters": dataclasses.asdict(recipe), "lr": learning_rate,
        "batch_size_per_replica": per_replica, "replicas": replicas,
        "global_batch": global_batch, "strategy": strategy_name(strat), "epochs": epochs,
        "steps_per_epoch": steps, "seed": int(seed), "mixed_precision": bool(mixed_precision),
        "jit_compile": bool(jit_compile), "sync_batchnorm": bool(sync_batchnorm),
        "normalization": {"mean": data.MEAN, "std": data.STD},
        "tfresnet_version": _version(),
    }
    if skip_bad_images or split.skipped:
        config["skipped_images"] = list(split.skipped)
    run_dir = None if out_dir is None else os.fspath(out_dir)
    if run_dir is not None:
        _open_run_dir(run_dir, config, labels, overwrite=overwrite, chief=chief)

    drop = steps_per_epoch is not None
    train_ds = data.pipeline(split.train, batch_size=global_batch, training=True,
                             augment=augment, seed=int(seed), drop_remainder=drop)
    if drop:
        train_ds = train_ds.repeat()
    val_ds = data.pipeline(split.val, batch_size=global_batch, training=False,
                           augment="none")
    recorder = EpochRecorder(run_dir, chief=chief, schedule=schedule,
                             images_per_epoch=steps * global_batch if drop else split.num_train)
    cbs = _callbacks(recorder, run_dir, recipe, chief=chief, verbose=verbose)
    trainee, fit_train, fit_val = net, train_ds, val_ds
    cache_reason = ("cache_features=False" if not cache_features else feature_cache_reason(
        net, augment=augment, drop=drop, mixed_precision=mixed_precision))
    if cache_reason is None:  # frozen backbone, no augmentation: its features once
        feature_start = time.perf_counter()
        with strat.scope():
            trainee = head_model(net)
            compile_model(trainee, make_optimizer(recipe, schedule), jit_compile=jit_compile)
        fit_train, fit_val = cached_features(net, split, batch_size=global_batch,
                                             seed=int(seed))
        recorder.full_model = net  # best.keras holds the whole network, not the head
        config["feature_cache"] = {
            "used": True, "seconds": round(time.perf_counter() - feature_start, 3)}
    else:
        config["feature_cache"] = {"used": False, "reason": cache_reason}
    trainee.fit(_distributable(fit_train), validation_data=_distributable(fit_val),
                epochs=epochs, steps_per_epoch=steps if drop else None,
                callbacks=cbs + list(callbacks), verbose=verbose)
    result = _result(net, recorder, val_ds, split, labels, config, run_dir, start)
    if run_dir is not None:
        _close_run_dir(result, chief=chief)
    return result


# ----------------------------------------------------------------------------- feature cache


def feature_cache_reason(net, *, augment="none", drop=False, mixed_precision=False):
    """None when :func:`fit` can train ``net`` on its backbone's stored features, else why not.

    That is when only the ``predictions`` classifier trains (the rest frozen, so
    BatchNormalization runs in inference mode and nothing before the classifier
    changes), the images are not augmented and no layer is random in training
    (dropout), as TensorFlow's image-retraining script cached its bottlenecks.
    """
    names = [layer.name for layer in net.layers]
    if transfer.HEAD not in names or net.layers[-1].name != transfer.HEAD:
        return f"the model does not end with a {transfer.HEAD!r} layer"
    if not net.get_layer(transfer.HEAD).trainable_weights:
        return "the classifier is frozen"
    if any(layer.trainable_weights for layer in net.layers if layer.name != transfer.HEAD):
        return "layers before the classifier train"
    if augment != "none":
        return f"augmentation {augment!r} changes the features every epoch"
    random = [layer.name for layer in net.layers if isinstance(layer, (
        keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.GaussianDropout))]
    if random:
        return f"{random[0]} is random in training"
    if drop:
        return "steps_per_epoch is given"
    if mixed_precision:
        return "mixed precision"
    return None


def head_model(net) -> keras.Model:
    """The classifier alone, on the backbone's features; it shares its layer with ``net``."""
    head = net.get_layer(transfer.HEAD)
    features = keras.Input(head.input_shape[1:], name="features")
    return keras.Model(features, head(features), name=f"{net.name}_head")


def cached_features(net, split, *, batch_size, seed):
    """(train, val) datasets of the backbone's features, computed once.

    The training set is shuffled with the same seed and buffer as
    :func:`tfresnet.data.pipeline`, so its batches hold the same images in the same order.
    """
    backbone = transfer.backbone_view(net)

    def features(ds):
        images = data.pipeline(ds, batch_size=batch_size, training=False, augment="none")
        x = backbone.predict(images, verbose=0)
        y = np.concatenate([labels.numpy() for _, labels in images])
        return tf.data.Dataset.from_tensor_slices((x, y))

    train_ds, val_ds = features(split.train), features(split.val)
    size = int(train_ds.cardinality())
    train_ds = train_ds.shuffle(max(1, min(size, data.SHUFFLE_BUFFER)), seed=seed,
                                reshuffle_each_iteration=True)
    return (train_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE),
            val_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def _open_run_dir(run_dir, config, labels, *, overwrite, chief):
    """Checks ``run_dir`` (resume, refuse or overwrite); the chief writes config and labels."""
    state = _plan_run_dir(run_dir, config, overwrite)
    if not chief:
        return
    if state == "overwrite":
        _clear_run_dir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    cli.remove_temp_files(run_dir, _is_run_file)  # left by a killed run
    if state != "resume":
        cli.write_text(os.path.join(run_dir, "config.json"), _json(config))
    cli.write_text(os.path.join(run_dir, "labels.txt"), "\n".join(labels) + "\n")


def _callbacks(recorder, run_dir, recipe, *, chief, verbose):
    """The recorder, then BackupAndRestore, then the rest.

    At an epoch's end the recorder writes history.csv and best.keras before
    BackupAndRestore checkpoints the epoch, so a checkpoint of epoch E means that
    history.csv and best.keras hold epochs 1..E (a kill in between repeats epoch E).
    The checkpoint is deleted by :func:`_close_run_dir` once model.keras and the results
    are saved, not at the end of ``fit`` (Keras' default), so a run killed while saving
    completes its save when run again.
    """
    cbs = [recorder]
    if run_dir is not None:
        cbs.append(keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"),
                                                    delete_checkpoint=False))
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


def _result(net, recorder, val_ds, split, labels, config, run_dir, start) -> FitResult:
    rows = recorder.rows
    history = {k: [r.get(k) for r in rows] for k in ["epoch"] + sorted(
        {k for r in rows for k in r} - {"epoch"})}
    best = max(rows, key=lambda r: r.get("val_accuracy", -1.0)) if rows else {}
    final = portable_model(net)
    return FitResult(
        model=final, run_dir=run_dir, history=history, val_accuracy=accuracy(final, val_ds),
        best_val_accuracy=float(best.get("val_accuracy", float("nan"))),
        best_epoch=int(best.get("epoch", 0)), data=split, labels=labels,
        images_per_second=recorder.images_per_second, wall_time=time.perf_counter() - start,
        initial_epoch=recorder.initial_epoch or 0, config=config)


def _close_run_dir(result, *, chief):
    """Saves model.keras, adds the results to config.json, then drops the backup.

    In this order, a run killed at any point of it is either finished (model.keras and
    config.json's ``result``) or still has its backup, and running it again completes
    the save with the figures from history.csv.
    """
    run_dir = result.run_dir
    save_model(result.model, os.path.join(run_dir, "model.keras"), chief=chief)
    if not chief:
        return
    result.config["result"] = {
        "val_accuracy": result.val_accuracy, "best_val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch, "images_per_second": result.images_per_second,
        "wall_time_seconds": result.wall_time, "resumed_at_epoch": result.initial_epoch,
        "warnings": health_warnings(result)}
    cli.write_text(os.path.join(run_dir, "config.json"), _json(result.config))
    shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)


def _json(obj) -> str:
    """Strict JSON (NaN and infinities as null), as every JSON file of a run."""
    return cli.to_json(obj, sort_keys=False, default=str)


def _version() -> str:
    from tfresnet import __version__
    return __version__


# ----------------------------------------------------------------------------- transfer


def _say(text, verbose):
    if verbose:
        print(f"[transfer] {text}", flush=True)


def _fit_transfer(model, *, weights, dataset, epochs, freeze_epochs, unfreeze_from,
                  fine_tune_lr, lr, recipe, model_kwargs, image_size, out_dir, overwrite,
                  seed, val_fraction, data_dir, manual_dir, verbose, **fit_kwargs) -> FitResult:
    """:func:`fit` with ``weights``: transfer learning in two phases (see
    :mod:`tfresnet.transfer`), each phase a :func:`fit` run in its own sub-folder.

    Args:
      model: registry name; model_kwargs: its builder arguments.
      weights: see :func:`load_weights`.
      epochs: all epochs (default ``DEFAULT_EPOCHS``); freeze_epochs: the first of them
        that train the classifier alone (default half); unfreeze_from: where fine-tuning
        starts (default ``"all"``); fine_tune_lr: its rate (default a tenth of the first
        phase's); lr: the first phase's rate (default the recipe's, scaled with the batch).
      out_dir: run directory (phases in ``1_head/`` and ``2_fine_tune/``); None writes nothing.
      fit_kwargs: other :func:`fit` arguments (batch_size, strategy, ...).

    Returns:
      The last phase's FitResult, with the whole run's history and config.

    Raises:
      ValueError: one line naming the bad input, before anything is written.
    """
    phases = transfer.plan_phases(epochs, freeze_epochs, unfreeze_from, fine_tune_lr)
    name, info, kwargs = _resolve_model(model, model_kwargs)
    size = _resolve_image_size(image_size, info, None, kwargs)
    if kwargs.get("res") and tuple(size) != (kwargs["res"], kwargs["res"]):
        raise ValueError(f"res and image_size disagree; give one of them. "
                         f"Received: res={kwargs['res']}, image_size={image_size!r}")
    if weights == "imagenet":  # a missing file fails before the data are read
        transfer.imagenet_path(name, kwargs, size, keep_head=False)
    split = (dataset if isinstance(dataset, data.DataSplit) else
             data.load(dataset, image_size=size, data_dir=data_dir, manual_dir=manual_dir,
                       seed=int(seed), val_fraction=val_fraction,
                       skip_bad_images=fit_kwargs.pop("skip_bad_images", False)))
    labels = [str(label) for label in split.labels]
    keras.utils.set_random_seed(int(seed))
    net, note = transfer.load_weights(weights, name, classes=len(labels), labels=labels,
                                      model_kwargs=kwargs, image_size=size)
    transfer.unfreeze_index(net, phases.unfreeze_from)  # an unknown name fails before training
    run_dir = None if out_dir is None else os.fspath(out_dir)
    config = {
        "model": name, "registry": True, "model_kwargs": kwargs, "weights": os.fspath(weights),
        "weights_note": note, "dataset": split.name, "val_fraction": val_fraction,
        "seed": int(seed), "image_size": list(size), "classes": len(labels),
        "epochs": phases.epochs, "freeze_epochs": phases.freeze_epochs,
        "unfreeze_from": phases.unfreeze_from, "fine_tune_lr": phases.fine_tune_lr,
        "lr": lr, "fit": {k: v for k, v in fit_kwargs.items() if k != "callbacks"},
    }
    if run_dir is not None:
        state = _plan_run_dir(run_dir, config, overwrite)
        if state == "overwrite":
            _clear_run_dir(run_dir)
            for sub in transfer.PHASE_DIRS:
                shutil.rmtree(os.path.join(run_dir, sub), ignore_errors=True)
        os.makedirs(run_dir, exist_ok=True)
        if state != "resume":
            cli.write_text(os.path.join(run_dir, "config.json"), _json(config))
        cli.write_text(os.path.join(run_dir, "labels.txt"), "\n".join(labels) + "\n")
    _say(note, verbose)

    fit_kwargs = {**fit_kwargs, "augment": fit_kwargs.get("augment") or transfer.DEFAULT_AUGMENT}
    lr = lr or recipes.get_recipe(recipe or info.recipe).lr
    common = dict(dataset=split, recipe=recipe or info.recipe, seed=seed, verbose=verbose,
                  **fit_kwargs)
    results, records = [], []
    if phases.freeze_epochs:
        transfer.freeze_backbone(net)
        _say(f"phase 1: {phases.freeze_epochs} epoch(s) of the classifier alone "
             f"({transfer.trainable_count(net):,} trainable weights), the backbone frozen with "
             f"BatchNorm in inference mode", verbose)
        result = _phase(net, 0, run_dir, phases.freeze_epochs, lr, common)
        results.append(result)
        records.append({"phase": "head", "epochs": phases.freeze_epochs,
                        "lr": result.config["lr"], "trainable": "classifier only",
                        "trainable_weights": transfer.trainable_count(net),
                        "val_accuracy": result.val_accuracy,
                        "feature_cache": result.config.get("feature_cache")})
        net = result.model
    if phases.fine_tune_epochs:
        first_lr = results[0].config["lr"] if results else lr
        tune_lr = phases.fine_tune_lr or first_lr * transfer.FINE_TUNE_LR_FACTOR
        transfer.unfreeze(net, phases.unfreeze_from)
        _say(f"phase 2: fine-tuning from {phases.unfreeze_from} for "
             f"{phases.fine_tune_epochs} epoch(s) at lr {tune_lr:g} "
             f"({transfer.trainable_count(net):,} trainable weights)", verbose)
        result = _phase(net, 1, run_dir, phases.fine_tune_epochs, tune_lr, common)
        results.append(result)
        records.append({"phase": "fine_tune", "epochs": phases.fine_tune_epochs,
                        "lr": tune_lr, "unfreeze_from": phases.unfreeze_from,
                        "trainable_weights": transfer.trainable_count(net),
                        "val_accuracy": result.val_accuracy})
    return _finish(results, records, config, run_dir)


def _phase(net, index, run_dir, epochs, lr, common):
    """One phase as a tfresnet.train run in its sub-folder (resumed or skipped when done)."""
    sub = None if run_dir is None else os.path.join(run_dir, transfer.PHASE_DIRS[index])
    if sub is not None and os.path.isfile(os.path.join(sub, "model.keras")) and \
            not _has_backup(sub):
        done, config, _ = load_run(sub)
        history = {k: [r.get(k) for r in read_history(sub)]
                   for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")}
        result = config.get("result", {})
        return FitResult(
            model=done, run_dir=sub, history=history,
            val_accuracy=result.get("val_accuracy", float("nan")),
            best_val_accuracy=result.get("best_val_accuracy", float("nan")),
            best_epoch=result.get("best_epoch", 0), data=common["dataset"],
            labels=common["dataset"].labels, images_per_second=result.get(
                "images_per_second", float("nan")),
            wall_time=result.get("wall_time_seconds", 0.0), initial_epoch=epochs,
            config=config)
    return fit(net, epochs=epochs, lr=lr, out_dir=sub, **common)


def _finish(results, records, config, run_dir):
    last = results[-1]
    history, offset = {}, 0
    for record, result in zip(records, results):
        n = len(result.history.get("epoch", []))
        for key, values in result.history.items():
            history.setdefault(key, []).extend(
                [v + offset for v in values] if key == "epoch" else values)
        history.setdefault("phase", []).extend([record["phase"]] * n)
        offset += n
    config = {**config, "phases": records, "lr": records[0]["lr"],
              "recipe": last.config.get("recipe"),
              "recipe_reason": last.config.get("recipe_reason"),
              "batch_reason": last.config.get("batch_reason"),
              "hyperparameters": last.config.get("hyperparameters"),
              "global_batch": last.config.get("global_batch"),
              "batch_size_per_replica": last.config.get("batch_size_per_replica"),
              "replicas": last.config.get("replicas"), "strategy": last.config.get("strategy"),
              "steps_per_epoch": last.config.get("steps_per_epoch"),
              "num_train": last.config.get("num_train"), "num_val": last.config.get("num_val"),
              "normalization": last.config.get("normalization"),
              "augment": last.config.get("augment")}
    best = int(np.nanargmax(history["val_accuracy"])) if history.get("val_accuracy") else 0
    result = dataclasses.replace(
        last, history=history, config=config,
        best_val_accuracy=float(history["val_accuracy"][best]) if history.get(
            "val_accuracy") else float("nan"),
        best_epoch=best + 1, wall_time=sum(r.wall_time for r in results),
        run_dir=run_dir)
    warnings = health_warnings(result)
    config["result"] = {"val_accuracy": result.val_accuracy,
                        "best_val_accuracy": result.best_val_accuracy,
                        "best_epoch": result.best_epoch, "warnings": warnings,
                        "wall_time_seconds": result.wall_time}
    if run_dir is not None:
        save_model(result.model, os.path.join(run_dir, "model.keras"))
        rows = [{k: history[k][i] for k in history if k != "phase"}
                for i in range(len(history["epoch"]))]
        cli.write_text(os.path.join(run_dir, "history.csv"), history_csv(rows))
        cli.write_text(os.path.join(run_dir, "config.json"), _json(config))
    return result


def transfer_summary(result) -> str:
    """The phases, one line each, for the end-of-run summary."""
    lines = [result.config.get("weights_note", "")]
    for p in result.config.get("phases", []):
        lines.append(f"phase {p['phase']}: {p['epochs']} epoch(s) at lr {p['lr']:g}, "
                     f"{p['trainable_weights']:,} trainable weights, val accuracy "
                     f"{p['val_accuracy']:.4f}")
        cache = p.get("feature_cache")
        if cache:
            lines.append(f"  features cached: the backbone ran once ({cache['seconds']:.1f} s), "
                         f"the classifier trained on its stored features" if cache["used"] else
                         f"  features not cached: {cache['reason']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- load_run

load_run = checkpoint.load_run  # (model, config, labels) of a run directory or model file


# ----------------------------------------------------------------------------- CLI


def summary_table(result: FitResult) -> str:
    """The end-of-run summary as aligned ``name  value`` lines."""
    c = result.config
    resumed = f" (resumed after epoch {result.initial_epoch})" if result.initial_epoch else ""
    rows = [
        ("model", f"{c['model']} ({result.model.count_params():,} parameters)"),
        ("data", f"{c['dataset']}: {c['num_train']:,} train / {c['num_val']:,} validation "
                 f"images, {c['image_size'][0]}x{c['image_size'][1]}, {c['classes']} classes"),
        *([("skipped", f"{len(c['skipped_images'])} undecodable image(s) left out "
                       f"(listed in config.json)")] if "skipped_images" in c else []),
        ("strategy", f"{c['strategy']}, {c['replicas']} replica(s), global batch "
                     f"{c['global_batch']}" + (f" ({c['batch_reason']})" if
                                               c.get("batch_reason", "").startswith("small")
                                               else "")),
        ("recipe", f"{c['recipe']}: {c['hyperparameters']['optimizer']}, lr {c['lr']:g}, "
                   f"{c['hyperparameters']['schedule']} schedule, weight decay "
                   f"{c['hyperparameters']['weight_decay']:g} ({c.get('recipe_reason', '')})"),
        ("epochs", f"{c['epochs']} x {c['steps_per_epoch']} steps{resumed}"),
        ("val accuracy", f"{result.val_accuracy:.4f} (final model)"),
        ("best epoch", f"{result.best_epoch} (val accuracy {result.best_val_accuracy:.4f} "
                       f"during training)"),
        ("images/s", f"{result.images_per_second:,.0f} (training)"
                     if math.isfinite(result.images_per_second)
                     else "n/a (no epoch trained in this session)"),
        ("wall time", f"{result.wall_time:.1f} s"),
        ("run dir", result.run_dir or "(none)"),
    ]
    warnings = (c.get("result") or {}).get("warnings")
    if warnings is None:
        warnings = health_warnings(result)
    rows += [("WARNING", w) for w in warnings]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def build_parser() -> cli.ArgumentParser:
    """The ``python -m tfresnet.train`` flags."""
    p = cli.ArgumentParser(
        prog=PROG, description="Train a registry model under tf.distribute with its paper's "
        "recipe. Rerunning the same command after an interruption resumes at the next epoch.")
    p.add_argument("--model", type=cli.non_empty, default="resnet20", help="registry name (default resnet20): "
                   + ", ".join(registry.list_models()))
    p.add_argument("--alpha", type=cli.float_range(), help="MobileNet width multiplier (e.g. 0.75)")
    p.add_argument("--res", type=cli.int_range(), help="MobileNet input side, a multiple of 32 (e.g. 160)")
    p.add_argument("--dataset", type=cli.non_empty, default="digits", help="'digits' (bundled, default), "
                   "'tfds:<name>[/config][:version]' or an image folder (one sub-folder a class)")
    p.add_argument("--data-dir", type=cli.non_empty, help="tensorflow-datasets folder with prepared data")
    p.add_argument("--manual-dir", type=cli.non_empty, help="folder with a tfds data set's original archives")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: leave out the files TensorFlow cannot decode "
                   "(truncated, corrupt), each named in a warning and listed in "
                   "config.json, instead of stopping with an error that names the first")
    p.add_argument("--val-fraction", type=cli.float_range(0, 1, low_open=True, high_open=True), default=0.2,
                   help="share of each class held out for validation (digits, folders)")
    p.add_argument("--image-size", type=cli.int_range(1), help="input side (default: the model's)")
    p.add_argument("--epochs", type=cli.positive_int(MAX_EPOCHS), help="epochs (default: the recipe's length)")
    p.add_argument("--steps-per-epoch", type=cli.positive_int(MAX_STEPS),
                   help="steps per epoch, the data repeating (default: one pass)")
    p.add_argument("--batch-size", type=cli.positive_int(),
                   help="images per replica per step (default: recipe batch / replicas)")
    p.add_argument("--recipe", choices=sorted(recipes.RECIPES),
                   help="training recipe (default: the model's)")
    p.add_argument("--lr", type=cli.float_range(0, MAX_LR, low_open=True), help="learning rate at the global batch, used as "
                   "given (default: the recipe's, scaled with the global batch)")
    p.add_argument("--optimizer", choices=recipes.OPTIMIZERS, help="override the recipe's")
    p.add_argument("--momentum", type=cli.float_range(0, 1, high_open=True), help="SGD/RMSprop momentum")
    p.add_argument("--weight-decay", type=cli.float_range(0, 1), help="L2 decay on Conv2D/Dense kernels")
    p.add_argument("--depthwise-weight-decay", type=cli.float_range(0, 1),
                   help="L2 decay on depthwise kernels")
    p.add_argument("--schedule", choices=recipes.SCHEDULES, help="learning-rate schedule")
    p.add_argument("--lr-boundaries", type=_fractions,
                   help="'steps' schedule: decay points as fractions of all steps, e.g. 0.5,0.75")
    p.add_argument("--lr-factor", type=cli.float_range(0, 1, low_open=True), help="LR multiplier at each decay (0.1)")
    p.add_argument("--patience", type=cli.positive_int(MAX_EPOCHS), help="'plateau' schedule: epochs without "
                   "val_loss improvement before a decay")
    p.add_argument("--epoch-decay", type=cli.float_range(0, 1, low_open=True), help="'exponential' schedule: LR x this "
                   "each epoch")
    p.add_argument("--warmup-fraction", type=cli.float_range(0, 1, high_open=True), help="warm-up share of all steps "
                   "(deep CIFAR ResNets; 0 turns it off)")
    p.add_argument("--augment", choices=data.AUGMENTATIONS,
                   help="augmentation (default: the model family's)")
    p.add_argument("--strategy", choices=STRATEGIES, default="mirrored",
                   help="mirrored (all local GPUs, else the CPU; default), multiworker "
                   "(cluster from TF_CONFIG), one (one device), default (no distribution)")
    p.add_argument("--sync-bn", action="store_true",
                   help="BatchNorm statistics over the global batch, not per replica")
    p.add_argument("--mixed-precision", action="store_true",
                   help="float16 (GPU) / bfloat16 (CPU) compute, float32 variables")
    p.add_argument("--jit-compile", action="store_true", help="compile the step with XLA")
    p.add_argument("--weights", help="start from pretrained weights: 'imagenet' (the Keras "
                   "cache, never downloaded), a keras.applications .h5 file, or a "
                   "tfresnet.train run directory / .keras file; a new classifier is built "
                   "for the data's classes (see tfresnet.transfer)")
    p.add_argument("--freeze-epochs", type=int, help="with --weights: the first N of "
                   "--epochs train the classifier alone, the backbone frozen (default half)")
    p.add_argument("--unfreeze-from", help="with --weights: fine-tune from this stage "
                   "(e.g. conv4) or layer name on after the frozen epochs (default all)")
    p.add_argument("--fine-tune-lr", type=float, help="with --weights: fine-tuning learning "
                   "rate (default a tenth of the frozen phase's)")
    p.add_argument("--seed", type=cli.seed, default=0, help="seed of everything random (0)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (slower on GPU)")
    p.add_argument("--out", type=cli.non_empty, help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished or interrupted run in --out")
    return p


def _fractions(text):
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, e.g. 0.5,0.75. "
                         f"Received: {text!r}") from None


def main(argv=None):
    """``python -m tfresnet.train``: trains, prints progress and a summary table."""
    args = build_parser().parse_args(argv)
    model_kwargs = {k: getattr(args, k) for k in ("alpha", "res") if getattr(args, k) is not None}
    overrides = {"optimizer": args.optimizer, "depthwise_weight_decay":
                 args.depthwise_weight_decay, "schedule": args.schedule,
                 "boundaries": args.lr_boundaries, "decay_factor": args.lr_factor,
                 "patience": args.patience, "epoch_decay": args.epoch_decay,
                 "warmup_fraction": args.warmup_fraction}
    out = args.out or default_run_dir(args.model, args.dataset)
    try:
        result = _fit_from_args(args, out, model_kwargs, overrides)
    except KeyboardInterrupt:
        if os.path.isdir(os.path.join(out, "backup")):
            print(f"{PROG}: stopped; run the same command again to resume {out!r} at its "
                  f"next epoch", file=sys.stderr)
        raise
    print(summary_table(result))
    if args.weights is not None:
        print(transfer_summary(result))
    return result


def _fit_from_args(args, out, model_kwargs, overrides):
    return fit(
        args.model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, recipe=args.recipe, strategy=args.strategy, out_dir=out, seed=args.seed,
        steps_per_epoch=args.steps_per_epoch, image_size=args.image_size,
        model_kwargs=model_kwargs, jit_compile=args.jit_compile,
        mixed_precision=args.mixed_precision, data_dir=args.data_dir,
        manual_dir=args.manual_dir, verbose=1 if sys.stdout.isatty() else 2,
        weight_decay=args.weight_decay, momentum=args.momentum,
        val_fraction=args.val_fraction, augment=args.augment, sync_batchnorm=args.sync_bn,
        deterministic=args.deterministic, overwrite=args.overwrite,
        skip_bad_images=args.skip_bad_images,
        recipe_overrides={k: v for k, v in overrides.items() if v is not None},
        weights=args.weights, freeze_epochs=args.freeze_epochs,
        unfreeze_from=args.unfreeze_from, fine_tune_lr=args.fine_tune_lr)


if __name__ == "__main__":
    cli.run(main, prog=PROG)
