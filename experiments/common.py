"""What every experiment shares: settings, curves, training, files, tables and verdicts.

Curves are logged every ``--log-every`` steps by :class:`CurveRecorder`, a Keras
callback: ``tfresnet.train.fit`` runs with ``steps_per_epoch = log_every``, so each
Keras "epoch" is one logging window. The *training error* is the running error over
the window's steps as Keras measures it while training: BatchNormalization in
training mode (batch statistics) and on augmented images when augmentation is on,
as the papers' training curves. The *validation error* is the whole validation set
in inference mode (BN moving averages), after each window.

Honest verdicts: :func:`run_failure` names a run that diverged (its loss became
NaN or infinite), collapsed (it learned, then fell back to chance) or never
learned (chance accuracy throughout); :func:`conclusion` draws no conclusion at a
``--quick`` budget or when a run failed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time

import keras

from experiments.defaults import PROG
from tfresnet.utils import cli, fileio, stats, tables

CSV_COLUMNS = ("model", "step", "train_error", "val_error", "loss")
# Two final errors closer than this (a fraction: 0.5 percentage points) count as equal.
TOLERANCE = 0.005
CURVE_RECIPE = "resnet_cifar"  # the recipe every curve experiment trains with


@dataclasses.dataclass
class Settings:
    """What one experiment runs with (validated by :func:`experiments.runner.settings_from_args`).

    Attributes:
      name: the experiment.
      dataset, data_dir, manual_dir: the data (see :func:`tfresnet.data.load`).
      image_size: input side in pixels.
      steps: training steps of every run (a multiple of ``log_every``).
      log_every: steps between two points of a curve.
      batch_size: images per step.
      lr: learning rate at ``batch_size`` (None: the recipe's, for multipliers).
      augment: one of ``tfresnet.utils.flags.AUGMENTATIONS`` (None: the recipe's).
      seed: seeds the weights, the data split, shuffling and augmentation.
      quick: a smoke run (a few steps); the summary says it proves nothing.
      out: output folder.
    """

    name: str
    dataset: str
    data_dir: str | None
    manual_dir: str | None
    image_size: int
    steps: int
    log_every: int
    batch_size: int
    lr: float | None
    augment: str | None
    seed: int
    quick: bool
    out: str


@dataclasses.dataclass
class Curve:
    """One run's curves, logged every ``log_every`` steps (errors are fractions)."""

    key: str
    label: str
    lr: float
    steps: list = dataclasses.field(default_factory=list)
    train_error: list = dataclasses.field(default_factory=list)
    val_error: list = dataclasses.field(default_factory=list)
    loss: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    config: dict = dataclasses.field(default_factory=dict, repr=False)
    model: object = dataclasses.field(default=None, repr=False)

    @property
    def final_train_error(self) -> float:
        return self.train_error[-1]

    @property
    def final_val_error(self) -> float:
        return self.val_error[-1]

    @property
    def best_val_error(self) -> float:
        return min(self.val_error)

    def steps_to(self, accuracy: float):
        """The first logged step whose validation accuracy is at least ``accuracy``."""
        for step, error in zip(self.steps, self.val_error):
            if 1.0 - error >= accuracy - 1e-9:
                return step
        return None


@dataclasses.dataclass
class Result:
    """What an experiment measured and wrote."""

    curves: list
    files: dict
    summary: str
    table: tuple
    settings: Settings
    wall_time: float


def finish(s: Settings, files: dict, started: float, *, curves, summary: str, table,
           data=()) -> Result:
    """Writes the raw numbers (``(files key, text)`` pairs) and ``summary.md``; returns
    the experiment's :class:`Result` with its wall time since ``started``."""
    for key, text in data:
        fileio.write_text(files[key], text)
    fileio.write_text(files["summary"], summary)
    return Result(curves, files, summary, table, s, time.perf_counter() - started)


class CurveRecorder(keras.callbacks.Callback):
    """Appends a point to a :class:`Curve` at the end of every Keras epoch.

    ``fit`` runs with ``steps_per_epoch = every``, so an epoch is one logging window:
    the logged training error is ``1 - accuracy`` averaged over the window's steps
    (training mode), the validation error ``1 - val_accuracy`` (inference mode).
    """

    def __init__(self, curve: Curve, every: int, total: int, log=print):
        super().__init__()
        self.curve, self.every, self.total, self.log = curve, every, total, log
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = (epoch + 1) * self.every
        c = self.curve
        c.steps.append(step)
        c.train_error.append(_error(logs.get("accuracy")))
        c.val_error.append(_error(logs.get("val_accuracy")))
        loss = logs.get("loss")
        c.loss.append(float("nan") if loss is None else float(loss))
        c.seconds = time.perf_counter() - self._start
        self.log(f"  {c.label:<16} step {step:>6}/{self.total}: train error "
                 f"{pct(c.train_error[-1])}, val error {pct(c.val_error[-1])} "
                 f"({c.seconds:.0f} s)")


def _error(accuracy) -> float:
    if accuracy is None or not math.isfinite(float(accuracy)):
        return 1.0
    return min(1.0, max(0.0, 1.0 - float(accuracy)))


def pct(fraction, digits=2) -> str:
    return "–" if fraction is None else f"{100 * fraction:.{digits}f}%"


# --------------------------------------------------------------------------- training


def train_curve(model, *, key, label, split, s: Settings, lr=None, log=print, callbacks=(),
                **fit_args):
    """Trains ``model`` (a registry name or a keras.Model) for ``s.steps`` steps.

    Every run uses the CIFAR ResNet recipe of ``tfresnet.training.recipes`` (``CURVE_RECIPE``)
    on one device with ``s.batch_size`` images a step.

    Returns:
      The :class:`Curve`; ``curve.config`` is the run configuration ``train.fit``
      reports (what the summaries describe), ``curve.model`` the trained model.
    """
    lr = s.lr if lr is None else lr
    curve = Curve(key=key, label=label, lr=lr)
    recorder = CurveRecorder(curve, s.log_every, s.steps, log=log)
    from tfresnet import train
    result = train.fit(model, dataset=split, epochs=s.steps // s.log_every,
                       steps_per_epoch=s.log_every, batch_size=s.batch_size, lr=lr,
                       recipe=CURVE_RECIPE, strategy="one", seed=s.seed, augment=s.augment,
                       image_size=s.image_size, verbose=0,
                       callbacks=[recorder, *callbacks], **fit_args)
    curve.config, curve.model = result.config, result.model
    return curve


def without_batchnorm(model) -> keras.Model:
    """The BN-free twin of ``model``: same layers and names, no normalization.

    Every BatchNormalization becomes an :class:`Identity` layer of the same name, and
    every convolution gets the bias that the BN's beta used to provide. The twin starts
    from ``model``'s kernels (biases zero), so the two differ only by BN.
    """
    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            return Identity(name=config["name"])
        if isinstance(layer, convs):
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    twin = keras.Model(copy.input, copy.output, name=f"{model.name}_nobn")
    for layer in twin.layers:
        if not layer.weights:  # the input layer too (Keras 3 names it anew)
            continue
        source = model.get_layer(layer.name)
        if isinstance(source, keras.layers.BatchNormalization):
            continue
        weights = source.get_weights()
        if weights:
            layer.set_weights(weights + layer.get_weights()[len(weights):])
    return twin


class Identity(keras.layers.Layer):
    """Returns its input. It takes BatchNormalization's call arguments (``training``,
    ``mask``), which Keras 3's ``clone_model`` passes on to the layer standing in for a
    BN (``keras.layers.Identity`` and ``Activation`` take neither)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def response_layers(model) -> list:
    """The BN layers that follow a 3x3 conv, in depth order: the paper's "responses"."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            source = layer.input._keras_history.operation
            if isinstance(source, keras.layers.Conv2D) and \
                    tuple(source.kernel_size) == (3, 3):
                layers.append(layer)
    return layers


# --------------------------------------------------------------------------- files


def curves_csv(curves) -> str:
    """``model,step,train_error,val_error,loss``, one row per logged point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in curves:
        losses = c.loss or [float("nan")] * len(c.steps)
        for step, train, val, loss in zip(c.steps, c.train_error, c.val_error, losses):
            writer.writerow([c.key, step, f"{train:.6f}", f"{val:.6f}", f"{loss:.6g}"])
    return out.getvalue()


def read_curves_csv(path) -> dict:
    """``{model: [(step, train_error, val_error), ...]}`` from a curves CSV."""
    rows = {}
    with open(fileio.check_input_file(path, "curves file", 2 ** 30), newline="") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            try:
                rows.setdefault(r["model"], []).append(
                    (int(r["step"]), float(r["train_error"]), float(r["val_error"])))
            except (KeyError, TypeError, ValueError) as err:
                raise cli.UsageError(f"{path}: line {line} is not a curves row (model, "
                                     f"step, train_error, val_error): {err}") from None
    return rows


def markdown_table(header, rows) -> str:
    """A Markdown table; numbers right-aligned."""
    return tables.table(header, rows, markdown=True)


def text_table(header, rows) -> str:
    """The same table as aligned plain text (for the terminal)."""
    return tables.table(header, rows)


def describe_training(config: dict) -> str:
    """One sentence of what ``tfresnet.train.fit`` ran with, from its run ``config``.

    Every summary's training line comes from here, so it states the settings the run
    actually used (optimizer, learning rate and schedule, weight decay, augmentation,
    batch, steps, seed), never what a recipe's name suggests.
    """
    hp = config["hyperparameters"]
    if hp["optimizer"] == "sgd":
        optimizer = f"SGD momentum {hp['momentum']:g}"
    else:
        optimizer = (f"RMSprop (rho {hp['rho']:g}, momentum {hp['momentum']:g}, epsilon "
                     f"{hp['epsilon']:g})")
    lr = config["lr"]
    schedule = {
        "steps": lambda: (f"learning rate {lr:g} multiplied by {hp['decay_factor']:g} at "
                          + " and ".join(f"{100 * b:g}%" for b in hp["boundaries"])
                          + " of the steps"),
        "exponential": lambda: (f"learning rate {lr:g} multiplied by {hp['epoch_decay']:g} "
                                f"after every epoch"),
        "plateau": lambda: (f"learning rate {lr:g} multiplied by {hp['decay_factor']:g} when "
                            f"the validation loss stalls for {hp['patience']} epochs"),
        "constant": lambda: f"constant learning rate {lr:g}",
    }[hp["schedule"]]()
    decay = f"weight decay {hp['weight_decay']:g}"
    if hp["depthwise_weight_decay"] != hp["weight_decay"]:
        decay += f" ({hp['depthwise_weight_decay']:g} on depthwise kernels)"
    steps = config["epochs"] * config["steps_per_epoch"]
    warmup = ""
    if hp.get("warmup_depth"):
        warmup = (f"; networks of {hp['warmup_depth']}+ layers warm up at "
                  f"{hp['warmup_factor']:g}x for {100 * hp['warmup_fraction']:.2g}% of the steps")
    return (f"{steps:,} steps of {config['global_batch']} images "
            f"({steps * config['global_batch'] / config['num_train']:.1f} epochs), "
            f"{optimizer}, {schedule}, {decay}{warmup}, augmentation "
            f"{config['augment']!r} (recipe {config['recipe']!r}), seed {config['seed']}, "
            f"{config['strategy']}")


def training_lines(runs) -> list:
    """Setup bullets for the training of ``runs`` (``[(key, run config or None)]``).

    One bullet when every run trained alike, else one per distinct setting.
    """
    trainings = []
    for key, config in runs:
        text = describe_training(config) if config else "not trained"
        for i, (keys, known) in enumerate(trainings):
            if known == text:
                trainings[i] = (keys + [key], known)
                break
        else:
            trainings.append(([key], text))
    if len(trainings) == 1:
        return [f"- training (each run): {trainings[0][1]}"]
    return [f"- training of {', '.join(keys)}: {text}" for keys, text in trainings]


def setup_lines(s: Settings, split, curves, extra=()) -> list:
    """The Setup bullet list: data, training (from the runs' own configs), curves."""
    return [
        f"- data: {split.name}, {split.num_train:,} training / {split.num_val:,} validation "
        f"images at {s.image_size}x{s.image_size}",
        *training_lines([(c.key, c.config) for c in curves]),
        *extra,
        f"- curves: a point every {s.log_every} steps. Training error = running error "
        f"over those steps during training (BN in training mode, batch statistics); "
        f"validation error = the whole validation set in inference mode",
    ]


def command_line(s: Settings, *extra) -> str:
    """The command line that repeats the run (``extra``: the experiment's own flags)."""
    parts = [PROG, s.name, "--dataset", s.dataset, "--image-size", str(s.image_size),
             "--steps", str(s.steps), "--log-every", str(s.log_every), "--batch-size",
             str(s.batch_size), "--lr", f"{s.lr:g}", "--augment", s.augment,
             "--seed", str(s.seed), *map(str, extra)]
    if s.quick:
        parts.append("--quick")
    return " ".join(parts)


def chance_error(classes: int) -> float:
    """The error of guessing: 1 - 1/classes."""
    return 1.0 - 1.0 / classes


def near_chance(accuracy: float, classes: int, margins: int = 1) -> bool:
    """Whether ``accuracy`` stays near guessing's 1/classes: the package's one rule for a
    run that learned nothing (:func:`tfresnet.utils.stats.near_chance`, within
    ``margins`` times its ``CHANCE_MARGIN``), which training's collapse warning reads too."""
    return stats.near_chance(accuracy, 1.0 / classes, margins)


def run_failure(curve: Curve, classes: int) -> str | None:
    """Why ``curve``'s run cannot count as a result, or None when it trained.

    "diverged": its training loss became NaN or infinite; "collapsed": it got clearly
    better than chance, then ended near chance (:func:`near_chance`); "never learned":
    its best validation accuracy stayed near chance.
    """
    chance = chance_error(classes)
    bad = [step for step, loss in zip(curve.steps, curve.loss) if not math.isfinite(loss)]
    if bad:
        return (f"diverged (training loss NaN or infinite from step {bad[0]:,}; final "
                f"validation accuracy {pct(1 - curve.final_val_error)}, chance is "
                f"{pct(1 - chance)})")
    if near_chance(1 - curve.final_val_error, classes):
        if not near_chance(1 - curve.best_val_error, classes, margins=2):
            return (f"collapsed (validation accuracy reached "
                    f"{pct(1 - curve.best_val_error)}, then fell back to "
                    f"{pct(1 - curve.final_val_error)}, about chance, "
                    f"{pct(1 - chance)})")
        return (f"never learned (best validation accuracy {pct(1 - curve.best_val_error)}, "
                f"chance is {pct(1 - chance)})")
    return None


def failure_lines(curves, classes: int) -> list:
    """A bullet for every failed run (see :func:`run_failure`)."""
    return [f"- {c.label} FAILED: it {why}." for c in curves
            if (why := run_failure(c, classes))]




def check_positive(name, value, kind=int):
    """Raises UsageError unless ``value`` (flag ``--name``) is None or a positive number."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise cli.UsageError(f"--{name} must be a positive "
                             f"{'integer' if kind is int else 'number'}. Received: {value!r}")


def judged(s: Settings, failures) -> bool:
    """True when the observations may be called a verdict: not --quick, no failed run."""
    return not s.quick and not failures


def conclusion(s: Settings, shown: bool, paper_budget: str, failures=()) -> str:
    """The closing paragraph: no conclusion at --quick or with failed runs."""
    if s.quick:
        return (f"Budget: --quick ({s.steps} steps) is a smoke test of the machinery, far "
                f"too small for any conclusion: none is drawn from the figures above.")
    if failures:
        return (f"No conclusion: {len(failures)} run(s) failed (see above), so this "
                f"comparison does not test the paper's claim; try a smaller --lr or "
                f"more --steps.")
    if shown:
        return f"Budget: {s.steps:,} steps ({paper_budget}) were enough to show the effect."
    return (f"Budget: {s.steps:,} steps ({paper_budget}): the effect did not appear; the "
            f"budget may be too small, try more --steps.")
