"""The papers' central experiments, small enough to run on a CPU.

``python -m tfresnet.experiments NAME`` runs one experiment and writes into ``--out``
(default ``reports/experiments/NAME/``) a figure (PNG), the raw numbers (CSV) and a
short Markdown summary that states what was observed against what the paper claims,
and says so when the budget was too small to show the effect.

* ``degradation`` (He et al. 2016, Fig. 1 and Fig. 6): plain-20, plain-56, ResNet-20
  and ResNet-56 (the registry's CIFAR builders, option A shortcuts) trained with one
  recipe, seed and data. The paper: the deeper *plain* net has the higher training
  error (degradation, an optimization problem, not overfitting); with shortcuts the
  deeper net is at least as good.
* ``batchnorm`` (Ioffe & Szegedy 2015, Fig. 2 and Table 2): one network with and
  without BatchNormalization, and with BN at 5x the learning rate; the steps each
  needs to reach a common validation accuracy: by default the highest accuracy every
  run reaches (the lowest of the runs' best accuracies); ``--target baseline`` takes
  the paper's rule, the best accuracy of the network without BN (72.2% for its
  Inception, which every BN variant passed, so there the two rules agree).
* ``multipliers`` (Howard et al. 2017, Tables 6 and 7): MobileNet v1 over width
  multipliers alpha and input resolutions; accuracy against multiply-adds, with the
  latency that ``export.compare`` measures beside it.

Curves are logged every ``--log-every`` steps by :class:`CurveRecorder`, a Keras
callback: ``tfresnet.train.fit`` runs with ``steps_per_epoch = log_every``, so each
Keras "epoch" is one logging window. The *training error* is the running error over
the window's steps as Keras measures it while training: BatchNormalization in
training mode (batch statistics) and on augmented images when augmentation is on,
as the papers' training curves. The *validation error* is the whole validation set
in inference mode (BN moving averages), after each window.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time

import tf_keras as keras

import tfresnet
from tfresnet import cli, data, plots, registry
from tfresnet.mobilenet import alpha_text

PROG = "python -m tfresnet.experiments"
EXPERIMENTS = ("degradation", "batchnorm", "multipliers")
DEFAULT_OUT = os.path.join("reports", "experiments")
CSV_COLUMNS = ("model", "step", "train_error", "val_error")
# Two final errors closer than this (a fraction: 0.5 percentage points) count as equal.
TOLERANCE = 0.005
DIGITS_SIDE = 8  # the bundled digits are 8x8: no upsampling by default
LOG_POINTS = 40  # default number of points on each curve
# Per experiment: training length, batch size, learning rate (at that batch size).
DEFAULTS = {
    "degradation": {"steps": 2000, "batch_size": 128, "lr": 0.1},
    "batchnorm": {"steps": 600, "batch_size": 128, "lr": 0.01},
    "multipliers": {"epochs": 40, "batch_size": 96},
}
QUICK = {"steps": 4, "log_every": 2, "batch_size": 16}
ALPHAS = (1.0, 0.75, 0.5, 0.25)
QUICK_ALPHAS, QUICK_RESOLUTIONS = (0.5, 0.25), (32,)
# Digits are 8x8: every MobileNet resolution (a multiple of 32) only upsamples them, and
# 40 epochs at 128/96 would take hours here, so the digits grid is 64/32.
MULTIPLIERS_DIGITS_SIDE = 64
# Accuracy differences below this (a fraction) do not break a trend.
ACCURACY_TOLERANCE = 0.01
PAPER = {
    "degradation": "He et al. 2016 (ResNet), Fig. 1 and Fig. 6: plain-56 has a higher "
                   "training error than plain-20 on CIFAR-10; ResNet-56 is better than "
                   "ResNet-20",
    "batchnorm": "Ioffe & Szegedy 2015 (BatchNorm), Fig. 2 / Table 2: BN reaches the "
                 "baseline's best accuracy in about half the steps (BN with a 5x learning "
                 "rate: about 1/14)",
    "multipliers": "Howard et al. 2017 (MobileNet), Tables 6 and 7: shrinking the width "
                   "multiplier alpha (1.0 to 0.25) or the resolution (224 to 128) trades "
                   "accuracy smoothly for multiply-adds (ImageNet top-1 70.6% at 569M MACs "
                   "down to 50.6% at 41M for alpha 0.25)",
}


@dataclasses.dataclass
class Settings:
    """What one experiment runs with (validated by :func:`settings_from_args`).

    Attributes:
      name: the experiment.
      dataset, data_dir, manual_dir: the data (see :func:`tfresnet.data.load`).
      image_size: input side in pixels.
      steps: training steps of every run (a multiple of ``log_every``).
      log_every: steps between two points of a curve.
      batch_size: images per step.
      lr: learning rate at ``batch_size`` (None: the recipe's, for multipliers).
      augment: one of ``tfresnet.data.AUGMENTATIONS`` (None: the recipe's).
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
    seconds: float = 0.0

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
        c.seconds = time.perf_counter() - self._start
        self.log(f"  {c.label:<16} step {step:>6}/{self.total}: train error "
                 f"{_pct(c.train_error[-1])}, val error {_pct(c.val_error[-1])} "
                 f"({c.seconds:.0f} s)")


def _error(accuracy) -> float:
    if accuracy is None or not math.isfinite(float(accuracy)):
        return 1.0
    return min(1.0, max(0.0, 1.0 - float(accuracy)))


def _pct(fraction, digits=2) -> str:
    return "–" if fraction is None else f"{100 * fraction:.{digits}f}%"


# --------------------------------------------------------------------------- training


def train_curve(model, *, key, label, split, s: Settings, lr=None, log=print, **fit_args):
    """Trains ``model`` (a registry name or a keras.Model) for ``s.steps`` steps.

    Every run uses the CIFAR ResNet recipe of ``tfresnet.recipes`` (SGD momentum 0.9,
    weight decay 1e-4, LR divided by 10 at 50% and 75% of the steps) on one device
    with ``s.batch_size`` images a step.

    Returns:
      The :class:`Curve`.
    """
    lr = s.lr if lr is None else lr
    curve = Curve(key=key, label=label, lr=lr)
    recorder = CurveRecorder(curve, s.log_every, s.steps, log=log)
    from tfresnet import train
    train.fit(model, dataset=split, epochs=s.steps // s.log_every,
              steps_per_epoch=s.log_every, batch_size=s.batch_size, lr=lr,
              recipe="resnet_cifar", strategy="one", seed=s.seed, augment=s.augment,
              image_size=s.image_size, verbose=0, callbacks=[recorder], **fit_args)
    return curve


def without_batchnorm(model) -> keras.Model:
    """The BN-free twin of ``model``: same layers and names, no normalization.

    Every BatchNormalization becomes an identity ``Activation("linear")`` of the same
    name, and every convolution gets the bias that the BN's beta used to provide. The
    twin starts from ``model``'s kernels (biases zero), so the two differ only by BN.
    """
    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            return keras.layers.Activation("linear", name=config["name"])
        if isinstance(layer, convs):
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, clone_function=clone)
    twin._name = f"{model.name}_nobn"
    for layer in twin.layers:
        source = model.get_layer(layer.name)
        if isinstance(source, keras.layers.BatchNormalization):
            continue
        weights = source.get_weights()
        if weights:
            layer.set_weights(weights + layer.get_weights()[len(weights):])
    return twin


# --------------------------------------------------------------------------- files


def curves_csv(curves) -> str:
    """``model,step,train_error,val_error``, one row per logged point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in curves:
        for step, train, val in zip(c.steps, c.train_error, c.val_error):
            writer.writerow([c.key, step, f"{train:.6f}", f"{val:.6f}"])
    return out.getvalue()


def read_curves_csv(path) -> dict:
    """``{model: [(step, train_error, val_error), ...]}`` from a curves CSV."""
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["model"], []).append(
                (int(r["step"]), float(r["train_error"]), float(r["val_error"])))
    return rows


def markdown_table(header, rows) -> str:
    """A Markdown table; numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header, rows) -> str:
    """The same table as aligned plain text (for the terminal)."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths))).rstrip()
                     for r in cells)


def _setup_lines(s: Settings, split, extra=()) -> list:
    return [
        f"- data: {split.name}, {split.num_train:,} training / {split.num_val:,} validation "
        f"images at {s.image_size}x{s.image_size}, augmentation {s.augment!r}",
        f"- training: {s.steps:,} steps of {s.batch_size} images "
        f"({s.steps * s.batch_size / split.num_train:.1f} epochs), SGD momentum 0.9, "
        f"weight decay 1e-4, learning rate divided by 10 at 50% and 75% of the steps "
        f"(the CIFAR ResNet recipe), seed {s.seed}, one device",
        *extra,
        f"- curves: a point every {s.log_every} steps. Training error = running error "
        f"over those steps during training (BN in training mode, batch statistics); "
        f"validation error = the whole validation set in inference mode",
    ]


def _command(s: Settings, *extra) -> str:
    """The command line that repeats the run (``extra``: the experiment's own flags)."""
    parts = [PROG, s.name, "--dataset", s.dataset, "--image-size", str(s.image_size),
             "--steps", str(s.steps), "--log-every", str(s.log_every), "--batch-size",
             str(s.batch_size), "--lr", f"{s.lr:g}", "--augment", s.augment,
             "--seed", str(s.seed), *map(str, extra)]
    if s.quick:
        parts.append("--quick")
    return " ".join(parts)


# --------------------------------------------------------------------------- degradation


def degradation(s: Settings, split, *, depths=(20, 56), log=print) -> Result:
    """Plain and ResNet CIFAR networks of two depths, one recipe: ResNet Fig. 1/6.

    Args:
      s: the settings.
      split: the loaded DataSplit.
      depths: (shallow, deep) depths, each 6n+2; the networks are the registry's
        CIFAR builder ``tfresnet.resnet_cifar`` (option A shortcuts) and its plain twin.
      log: progress printer.
    """
    started = time.perf_counter()
    curves = []
    runs = [(kind, d) for kind in ("plain", "resnet") for d in depths]
    for i, (kind, depth) in enumerate(runs, 1):
        key = f"{kind}{depth}"
        log(f"[{i}/{len(runs)}] {key}: {s.steps} steps, lr {s.lr:g}")
        keras.utils.set_random_seed(s.seed)
        net = tfresnet.resnet_cifar(depth, plain=kind == "plain", name=key,
                                    input_shape=(s.image_size, s.image_size, 3),
                                    classes=len(split.labels))
        label = f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"
        curves.append(train_curve(net, key=key, label=label, split=split, s=s, log=log))
    by = {c.key: c for c in curves}
    panels = [(kind, [(by[f"{p}{d}"].label, by[f"{p}{d}"].steps, by[f"{p}{d}"].train_error,
                       by[f"{p}{d}"].val_error) for d in depths])
              for kind, p in (("plain", "plain"), ("ResNet", "resnet"))]
    files = {"png": os.path.join(s.out, "degradation.png"),
             "csv": os.path.join(s.out, "curves.csv"),
             "summary": os.path.join(s.out, "summary.md")}
    plots.error_curves(panels, files["png"], title=(
        f"{split.name} {s.image_size}x{s.image_size}: thin = training error, bold = "
        f"validation error"))
    cli.write_text(files["csv"], curves_csv(curves))
    summary = degradation_summary(s, split, curves, depths)
    cli.write_text(files["summary"], summary)
    return Result(curves, files, summary, degradation_table(curves), s,
                  time.perf_counter() - started)


def degradation_table(curves):
    """(header, rows) of the degradation summary table."""
    header = ("model", "final train error", "final val error", "best val error",
              "time (s)")
    rows = [(c.key, _pct(c.final_train_error), _pct(c.final_val_error),
             _pct(c.best_val_error), f"{c.seconds:.0f}") for c in curves]
    return header, rows


def _verdicts(s: Settings, by, depths):
    shallow, deep = depths
    plain_gap = by[f"plain{deep}"].final_train_error - by[f"plain{shallow}"].final_train_error
    res_gap = by[f"resnet{deep}"].final_train_error - by[f"resnet{shallow}"].final_train_error
    degraded = plain_gap > TOLERANCE
    fixed = res_gap <= TOLERANCE
    return plain_gap, res_gap, degraded, fixed


def degradation_summary(s: Settings, split, curves, depths) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim."""
    by = {c.key: c for c in curves}
    shallow, deep = depths
    plain_gap, res_gap, degraded, fixed = _verdicts(s, by, depths)
    p_s, p_d = by[f"plain{shallow}"], by[f"plain{deep}"]
    r_s, r_d = by[f"resnet{shallow}"], by[f"resnet{deep}"]
    tol = f"{100 * TOLERANCE:.1f} points"
    lines = [f"# Degradation: plain vs ResNet, {shallow} vs {deep} layers", "",
             f"Paper: {PAPER['degradation']}.", "", "Setup:",
             *_setup_lines(s, split), "",
             f"Command: `{_command(s, '--depths', shallow, deep)}`", "",
             markdown_table(*degradation_table(curves)), "",
             "Final = the last logged point. Two errors within "
             f"{tol} count as equal.", "", "## Observed", ""]
    if degraded:
        lines.append(
            f"- Plain: plain-{deep}'s final training error ({_pct(p_d.final_train_error)}) "
            f"is ABOVE plain-{shallow}'s ({_pct(p_s.final_train_error)}), by "
            f"{100 * plain_gap:.2f} points: the degradation the paper reports appears.")
    else:
        lines.append(
            f"- Plain: plain-{deep}'s final training error ({_pct(p_d.final_train_error)}) "
            f"is NOT above plain-{shallow}'s ({_pct(p_s.final_train_error)}) by more than "
            f"{tol}: the degradation did not appear in this run.")
    if fixed:
        lines.append(
            f"- ResNet: ResNet-{deep}'s final training error ({_pct(r_d.final_train_error)}) "
            f"is at or below ResNet-{shallow}'s ({_pct(r_s.final_train_error)}) within "
            f"{tol}: with shortcuts the deeper network is not worse, as the paper reports.")
    else:
        lines.append(
            f"- ResNet: ResNet-{deep}'s final training error ({_pct(r_d.final_train_error)}) "
            f"is ABOVE ResNet-{shallow}'s ({_pct(r_s.final_train_error)}) by "
            f"{100 * res_gap:.2f} points: the paper's claim did not hold in this run.")
    lines.append(f"- Validation (not part of the claim checked above): "
                 f"{_compare_val(p_d, p_s, split)}; {_compare_val(r_d, r_s, split)}.")
    lines += ["", _budget_note(s, degraded and fixed,
                                "the paper trains 64k iterations of 128 CIFAR-10 images")]
    return "\n".join(lines) + "\n"


def _compare_val(deep, shallow, split) -> str:
    gap = deep.final_val_error - shallow.final_val_error
    images = round(abs(gap) * split.num_val)
    how = ("equal" if abs(gap) <= TOLERANCE else
           f"{deep.label} {'higher' if gap > 0 else 'lower'} by {100 * abs(gap):.2f} points, "
           f"{images} of {split.num_val:,} images")
    return (f"{deep.label} {_pct(deep.final_val_error)} vs {shallow.label} "
            f"{_pct(shallow.final_val_error)} ({how})")


def _budget_note(s: Settings, shown: bool, paper_budget: str) -> str:
    if s.quick:
        return (f"Budget: --quick ({s.steps} steps) is a smoke test of the machinery; "
                f"it is far too small to show the effect, and the lines above mean nothing.")
    if shown:
        return f"Budget: {s.steps:,} steps ({paper_budget}) were enough to show the effect."
    return (f"Budget: {s.steps:,} steps ({paper_budget}) may be too small to show the "
            f"effect; try more --steps.")


# --------------------------------------------------------------------------- batchnorm


TARGETS = ("common", "baseline")


def batchnorm(s: Settings, split, *, model="plain20", multiplier=5.0, target="common",
              log=print) -> Result:
    """One network without BN, with BN, and with BN at ``multiplier`` x the LR.

    Args:
      s: the settings (``s.lr`` is the base learning rate of the first two runs).
      split: the loaded DataSplit.
      model: registry name of the network with BN.
      multiplier: learning-rate multiplier of the third run (the paper's BN-x5).
      target: the validation accuracy to reach (a fraction), "common" (the highest
        accuracy every run reaches) or "baseline" (the best the no-BN run reaches, the
        paper's rule: its target is the baseline Inception's best accuracy).
      log: progress printer.
    """
    started = time.perf_counter()
    info = registry.model_info(model)
    shape = (s.image_size, s.image_size, 3)
    keras.utils.set_random_seed(s.seed)
    with_bn = registry.get_model(model, input_shape=shape, classes=len(split.labels))
    runs = [("nobn", f"{model} without BN", without_batchnorm(with_bn), s.lr),
            ("bn", f"{model} with BN", with_bn, s.lr),
            (f"bn_x{multiplier:g}", f"{model} BN, {multiplier:g}x LR", with_bn,
             s.lr * multiplier)]
    curves = []
    for i, (key, label, net, lr) in enumerate(runs, 1):
        log(f"[{i}/{len(runs)}] {label}: {s.steps} steps, lr {lr:g}")
        curves.append(train_curve(net, key=key, label=label, split=split, s=s, lr=lr,
                                  log=log))
    target, rule = resolve_target(target, curves)
    files = {"png": os.path.join(s.out, "batchnorm.png"),
             "csv": os.path.join(s.out, "curves.csv"),
             "summary": os.path.join(s.out, "summary.md")}
    plots.accuracy_curves([(f"{c.label} (lr {c.lr:g})", c.steps,
                            [1.0 - e for e in c.val_error]) for c in curves],
                          files["png"], target=target,
                          title=f"{info.name} on {split.name} {s.image_size}x{s.image_size}")
    cli.write_text(files["csv"], curves_csv(curves))
    summary = batchnorm_summary(s, split, curves, target, rule, model, multiplier)
    cli.write_text(files["summary"], summary)
    return Result(curves, files, summary, batchnorm_table(curves, target), s,
                  time.perf_counter() - started)


def resolve_target(target, curves):
    """``(accuracy, rule)`` for ``target`` ("common", "baseline" or a fraction).

    "common": the highest validation accuracy every run reaches; "baseline": the best
    of the first run (no BN), the paper's rule.
    """
    if target == "common":
        return min(1.0 - c.best_val_error for c in curves), "common"
    if target == "baseline":
        return 1.0 - curves[0].best_val_error, "baseline"
    return float(target), "given"


def batchnorm_table(curves, target):
    """(header, rows) of the batchnorm summary table."""
    base = curves[0].steps_to(target)
    header = ("run", "lr", "steps to target", "vs no BN", "final val accuracy",
              "best val accuracy", "time (s)")
    rows = []
    for c in curves:
        steps = c.steps_to(target)
        ratio = "–" if steps is None or base is None else f"{steps / base:.2f}x"
        rows.append((c.key, f"{c.lr:g}", "not reached" if steps is None else steps, ratio,
                     _pct(1 - c.final_val_error), _pct(1 - c.best_val_error),
                     f"{c.seconds:.0f}"))
    return header, rows


TARGET_RULES = {
    "common": " (the highest accuracy every run reaches: the lowest of the runs' best "
              "accuracies; the paper's target, its baseline's best, was passed by every BN "
              "variant, so there the two rules agree)",
    "baseline": " (the best the no-BN run reached, the paper's rule)",
    "given": " (given with --target)",
}


def batchnorm_summary(s: Settings, split, curves, target, rule, model, multiplier) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim."""
    _, bn, fast = curves
    base, with_bn, with_fast = (c.steps_to(target) for c in curves)
    command = _command(s, "--model", model, "--lr-multiplier", f"{multiplier:g}",
                       "--target", rule if rule != "given" else f"{target:g}")
    extra = [f"- network: {model} (registry) with BN; the no-BN twin is the same network "
             f"with every BatchNormalization replaced by an identity layer and a bias "
             f"added to every convolution (same initial kernels); the third run is BN "
             f"at {multiplier:g}x the learning rate"]
    lines = ["# Batch normalization: steps to a common accuracy", "",
             f"Paper: {PAPER['batchnorm']}.", "", "Setup:",
             *_setup_lines(s, split, extra), "",
             f"Command: `{command}`", "",
             f"Target validation accuracy: {_pct(target)}{TARGET_RULES[rule]}.", "",
             markdown_table(*batchnorm_table(curves, target)), "", "## Observed", ""]
    shown = True
    for label, steps in ((bn.label, with_bn), (fast.label, with_fast)):
        if steps is None:
            lines.append(f"- {label} did NOT reach {_pct(target)} within {s.steps:,} steps.")
            shown = False
        elif base is None:
            lines.append(f"- {label} reached {_pct(target)} at step {steps:,}; the no-BN "
                         f"run never did: BN is faster, as the paper reports.")
        elif steps < base:
            lines.append(f"- {label} reached {_pct(target)} at step {steps:,}, "
                         f"{base / steps:.1f}x fewer steps than without BN ({base:,}): "
                         f"BN reaches the target in fewer steps, as the paper reports.")
        else:
            lines.append(f"- {label} reached {_pct(target)} at step {steps:,}, NOT fewer "
                         f"than without BN ({base:,}): the paper's claim did not hold here.")
            shown = False
    lines += ["", _budget_note(s, shown, "the paper trains Inception for 31M steps")]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- multipliers


def resolutions_below(side: int) -> tuple:
    """The paper's grid steps down by 32 pixels from 224 (224/192/160/128); so from ``side``."""
    return tuple(r for r in (side, side - 32, side - 64, side - 96) if r >= 32)


def multipliers(s: Settings, split, *, alphas=ALPHAS, resolutions=None, latency_runs=50,
                fresh=False, log=print) -> Result:
    """MobileNet v1 over width multipliers and resolutions, via ``export.compare``.

    ``export.compare`` trains each model (``tfresnet.train.fit``, the MobileNet recipe),
    profiles it (MACs), exports float32 and INT8 TFLite files, measures their accuracy
    on the validation set and their latency (LiteRT + XNNPACK, one thread). Its full
    report lands in ``s.out/compare``; this function plots accuracy against MACs with
    the latency beside it and writes ``results.csv`` and ``summary.md``.

    Args:
      s: the settings (``s.steps`` training steps per model, ``s.batch_size``).
      split: the loaded DataSplit (for the number of training images).
      alphas, resolutions: the grid (resolutions default to :func:`resolutions_below`
        ``s.image_size``).
      latency_runs: timed runs per latency measurement.
      fresh: measure again the models that ``export.compare`` has stored already.
      log: progress printer.
    """
    from export import compare
    started = time.perf_counter()
    resolutions = tuple(resolutions or resolutions_below(s.image_size))
    configs = compare.make_configs(["mobilenet_v1"], alphas=list(alphas),
                                   resolutions=list(resolutions))
    one_pass = max(1, split.num_train // s.batch_size)
    per_epoch = min(one_pass, s.steps)
    settings = compare.Settings(
        quick=False, threads=(1,), runs=latency_runs, warmup=2 if s.quick else 10,
        min_seconds=0.0 if s.quick else 1.0, calibration_images=16 if s.quick else 200,
        seed=s.seed, dataset=s.dataset, epochs=math.ceil(s.steps / per_epoch),
        steps_per_epoch=per_epoch, batch_size=s.batch_size)
    report = compare.compare(configs, settings, out=os.path.join(s.out, "compare"),
                             fresh=fresh, repeat=0, log=log)
    points = [multiplier_point(row, record) for row, record in
              zip(report.rows, report.records)]
    files = {"png": os.path.join(s.out, "multipliers.png"),
             "csv": os.path.join(s.out, "results.csv"),
             "summary": os.path.join(s.out, "summary.md"),
             "compare": report.files["report"]}
    by_alpha = _group(points, "alpha")
    plots.tradeoff(
        [(f"alpha {alpha_text(a)}", [p["macs"] for p in ps],
          [p["accuracy_float32"] for p in ps], [str(p["res"]) for p in ps])
         for a, ps in by_alpha], files["png"],
        across=[(f"res {r}", [p["macs"] for p in ps], [p["accuracy_float32"] for p in ps])
                for r, ps in _group(points, "res") if len(ps) > 1],
        right=("INT8 latency, ms (1 thread, log)",
               [(f"alpha {alpha_text(a)}", [p["macs"] for p in ps], [p["int8_ms"] for p in ps])
                for a, ps in by_alpha]),
        title=(f"MobileNet v1 on {split.name}: accuracy (float32 TFLite, labels = res) "
               f"and INT8 latency against multiply-adds"))
    cli.write_text(files["csv"], points_csv(points))
    summary = multipliers_summary(s, split, points, settings)
    cli.write_text(files["summary"], summary)
    return Result(points, files, summary, multipliers_table(points), s,
                  time.perf_counter() - started)


def _group(points, key):
    """``[(value, points sorted by MACs), ...]`` per value of ``key``, largest first."""
    return [(v, sorted((p for p in points if p[key] == v), key=lambda p: p["macs"]))
            for v in sorted({p[key] for p in points}, reverse=True)]


MULTIPLIER_COLUMNS = ("alpha", "res", "params", "macs", "accuracy_keras",
                      "accuracy_float32", "accuracy_int8", "float32_ms", "int8_ms")


def multiplier_point(row: dict, record: dict) -> dict:
    """One grid point from an ``export.compare`` row and record."""
    return {"alpha": row["alpha"], "res": row["side"], "params": row["params"],
            "macs": row["macs"], "accuracy_keras": (record.get("accuracy") or {}).get("keras"),
            "accuracy_float32": row["accuracy_float32"], "accuracy_int8": row["accuracy_int8"],
            "float32_ms": row.get("float32_t1_median_ms"),
            "int8_ms": row.get("int8_t1_median_ms")}


def points_csv(points) -> str:
    """``results.csv``: one row per (alpha, res)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, MULTIPLIER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for p in points:
        writer.writerow({k: ("" if p[k] is None else p[k]) for k in MULTIPLIER_COLUMNS})
    return out.getvalue()


def multipliers_table(points):
    """(header, rows) of the multipliers summary table."""
    header = ("alpha/res", "MMACs", "params", "accuracy float32", "accuracy INT8",
              "float32 ms", "INT8 ms")
    rows = [(f"{alpha_text(p['alpha'])}/{p['res']}", f"{p['macs'] / 1e6:.1f}",
             f"{p['params']:,}", _pct(p["accuracy_float32"], 1), _pct(p["accuracy_int8"], 1),
             _ms(p["float32_ms"]), _ms(p["int8_ms"])) for p in points]
    return header, rows


def _ms(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _rank_correlation(x, y) -> float:
    """Spearman's rank correlation (no ties expected)."""
    import numpy as np
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if len(x) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _monotone(points, vary, fixed, tolerance):
    """Groups (by ``fixed``) where accuracy does not rise as ``vary`` shrinks."""
    groups = {}
    for p in points:
        groups.setdefault(p[fixed], []).append(p)
    good, checked, broken = 0, 0, []
    for key, ps in groups.items():
        ps = sorted(ps, key=lambda p: p[vary], reverse=True)
        if len(ps) < 2:
            continue
        checked += 1
        acc = [p["accuracy_float32"] for p in ps]
        if all(acc[i + 1] <= acc[i] + tolerance for i in range(len(acc) - 1)):
            good += 1
        else:
            broken.append(key)
    return good, checked, broken


def multipliers_summary(s: Settings, split, points, settings) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim."""
    alphas = sorted({p["alpha"] for p in points}, reverse=True)
    resolutions = sorted({p["res"] for p in points}, reverse=True)
    top = max(points, key=lambda p: p["macs"])
    low = min(points, key=lambda p: p["macs"])
    tol = f"{100 * ACCURACY_TOLERANCE:g} percentage point"
    lines = ["# MobileNet v1: width and resolution multipliers", "",
             f"Paper: {PAPER['multipliers']}.", "", "Setup:",
             f"- data: {split.name}, {split.num_train:,} training / {split.num_val:,} "
             f"validation images, resized to each resolution",
             f"- grid: alpha {', '.join(alpha_text(a) for a in alphas)} x resolution "
             f"{', '.join(map(str, resolutions))}",
             f"- training: each model {settings.epochs} x {settings.steps_per_epoch} steps "
             f"of {s.batch_size} images with the MobileNet recipe (RMSprop, augmentation "
             f"'mobilenet'), seed {s.seed}, by export.compare (report: compare/report.md)",
             f"- accuracy: float32 and INT8 TFLite files on the whole validation set; "
             f"latency: median of at least {settings.runs} runs, LiteRT + XNNPACK, 1 thread, "
             f"on this (shared) CPU", "",
             f"Command: `{PROG} multipliers --dataset {s.dataset} --steps {s.steps} "
             f"--batch-size {s.batch_size} --seed {s.seed} --alphas "
             f"{' '.join(alpha_text(a) for a in alphas)} --resolutions "
             f"{' '.join(map(str, resolutions))}`", "",
             markdown_table(*multipliers_table(points)), "", "## Observed", "",
             f"- Cost: {top['macs'] / 1e6:.1f}M MACs at {alpha_text(top['alpha'])}/"
             f"{top['res']} down to {low['macs'] / 1e6:.2f}M at {alpha_text(low['alpha'])}/"
             f"{low['res']} ({top['macs'] / low['macs']:.0f}x fewer); MACs scale with about "
             f"alpha^2 and res^2, as the paper's Tables 6 and 7."]
    shown = True
    good, checked, broken = _monotone(points, "alpha", "res", ACCURACY_TOLERANCE)
    if checked:
        if good == checked:
            lines.append(f"- Width: at every resolution accuracy does not rise as alpha "
                         f"shrinks (within {tol}), the paper's smooth trade-off.")
        else:
            shown = False
            lines.append(f"- Width: at {good} of {checked} resolutions accuracy falls (or "
                         f"stays within {tol}) as alpha shrinks; NOT at resolution(s) "
                         f"{', '.join(map(str, broken))}: the paper's smooth trade-off did "
                         f"not fully appear.")
    good, checked, broken = _monotone(points, "res", "alpha", ACCURACY_TOLERANCE)
    if checked:
        note = (" (The digits are 8x8 images upsampled to every resolution: a smaller "
                "resolution removes no image detail here, only spatial extent inside the "
                "network, e.g. 1x1 final maps at 32.)" if split.name == "digits" else "")
        lines.append(f"- Resolution: at {good} of {checked} widths accuracy does not rise "
                     f"as the resolution shrinks (within {tol})"
                     + (f"; it does at alpha {', '.join(alpha_text(a) for a in broken)}."
                        if broken else ".") + note)
    latencies = [(p["macs"], p["int8_ms"]) for p in points if p["int8_ms"] is not None]
    if len(latencies) > 1:
        rho = _rank_correlation([m for m, _ in latencies], [ms for _, ms in latencies])
        lines.append(f"- Latency: INT8 latency against MACs has rank correlation {rho:.2f} "
                     f"(1 = strictly ordered by MACs); fastest "
                     f"{min(ms for _, ms in latencies):.2f} ms, slowest "
                     f"{max(ms for _, ms in latencies):.2f} ms.")
    lines += ["", _budget_note(s, shown, "the paper trains on ImageNet for many epochs")]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI


def _parser():
    common = cli.ArgumentParser(add_help=False)
    common.add_argument("--out", help="output folder (default reports/experiments/NAME)")
    length = common.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="training steps of every run (default: "
                        "the experiment's, see the description above)")
    length.add_argument("--epochs", type=float,
                        help="training length in passes over the training set instead")
    common.add_argument("--seed", type=int, default=0, help="seed of weights, data split, "
                        "shuffling and augmentation (default 0)")
    common.add_argument("--dataset", default="digits", help="'digits' (bundled, default), "
                        "'tfds:<name>' (e.g. tfds:cifar10, prepared offline) or an image "
                        "folder with one sub-folder per class")
    common.add_argument("--batch-size", type=int, help="images per step (default 128; "
                        "multipliers: 96, the MobileNet recipe's)")
    common.add_argument("--quick", action="store_true", help=f"a smoke test: "
                        f"{QUICK['steps']} steps of {QUICK['batch_size']} images, for tests")
    curves = cli.ArgumentParser(add_help=False)
    curves.add_argument("--image-size", type=int, help=f"input side (default: "
                        f"{DIGITS_SIDE} for digits, their own size; else 32, the CIFAR size)")
    curves.add_argument("--log-every", type=int, help=f"steps between two logged points "
                        f"(default: steps / {LOG_POINTS})")
    curves.add_argument("--lr", type=float, help="learning rate at that batch size")
    curves.add_argument("--augment", choices=data.AUGMENTATIONS,
                        help="training augmentation (default: 'none' on digits, where the "
                        "paper's 4-pixel pad-and-crop would shift an 8x8 digit by half its "
                        "size; 'cifar', the paper's, on other data)")
    curves.add_argument("--data-dir", help="tensorflow-datasets folder with prepared data")
    curves.add_argument("--manual-dir", help="folder with a tfds data set's original archives")
    p = cli.ArgumentParser(
        prog=PROG, description="Reproduce the papers' central experiments on a CPU; each "
        "writes a PNG figure, the raw numbers (CSV) and summary.md into --out.")
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    d = sub.add_parser("degradation", parents=[common, curves], help="plain vs ResNet, 20 "
                       "vs 56 layers (ResNet paper Fig. 1 and 6)", description=(
                           "Train plain-20/56 and ResNet-20/56 with one recipe and plot "
                           "training (thin) and validation (bold) error against iterations. "
                           f"Defaults: {DEFAULTS['degradation']['steps']} steps, batch 128, "
                           "lr 0.1 (the paper's)."))
    d.add_argument("--depths", type=int, nargs=2, default=(20, 56), metavar=("SHALLOW", "DEEP"),
                   help="the two depths, 6n+2 (default 20 56)")
    b = sub.add_parser("batchnorm", parents=[common, curves], help="with and without BN, and "
                       "BN at 5x the learning rate (BN paper Fig. 2)", description=(
                           "Train one network without BN, with BN, and with BN at a higher "
                           "learning rate; plot validation accuracy against steps and report "
                           "the steps each needs to reach a common accuracy. Defaults: "
                           f"{DEFAULTS['batchnorm']['steps']} steps, batch 128, lr 0.01 (a "
                           "rate the network without BN can train at)."))
    b.add_argument("--model", default="plain20", help="registry network with BN (default "
                   "plain20: like the BN paper's Inception, it has no shortcuts)")
    b.add_argument("--lr-multiplier", type=float, default=5.0,
                   help="learning-rate multiplier of the third run (default 5, the paper's)")
    b.add_argument("--target", default="common", help="validation accuracy to reach: a "
                   "number in (0, 1], 'common' (default: the highest accuracy every run "
                   "reaches) or 'baseline' (the best the no-BN run reaches, the paper's rule)")
    m = sub.add_parser("multipliers", parents=[common], help="MobileNet v1 alpha x res: "
                       "accuracy against MACs, latency beside (MobileNet paper Tables 6, 7)",
                       description=(
                           "Train MobileNet v1 at every alpha x resolution through "
                           "export.compare (MACs, TFLite float32/INT8 accuracy and latency), "
                           "and plot accuracy against MACs with the INT8 latency beside. "
                           f"Defaults: {DEFAULTS['multipliers']['epochs']} epochs, batch 96."))
    m.add_argument("--image-size", type=int, help="the largest resolution; the grid steps "
                   "down by 32 like the paper's 224/192/160/128 (default: 64 for digits, "
                   "giving 64/32: the digits are 8x8, any resolution only upsamples them; "
                   "else 224)")
    m.add_argument("--alphas", type=float, nargs="+", help="width multipliers (default "
                   "1.0 0.75 0.5 0.25; --quick: 0.5 0.25)")
    m.add_argument("--resolutions", type=int, nargs="+", help="input sides, multiples of 32 "
                   "(default: from --image-size; --quick: 32)")
    m.add_argument("--latency-runs", type=int, help="timed runs per latency (default 50; "
                   "--quick: 5)")
    m.add_argument("--fresh", action="store_true", help="measure again the models "
                   "export.compare has stored in --out/compare")
    return p


def _positive(name, value, kind=int):
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise cli.UsageError(f"--{name} must be a positive "
                             f"{'integer' if kind is int else 'number'}. Received: {value!r}")


def settings_from_args(args) -> Settings:
    """Validates the common flags into :class:`Settings` (nothing is written yet)."""
    name = args.experiment
    for flag in ("steps", "epochs", "log_every", "image_size", "batch_size", "lr"):
        _positive(flag.replace("_", "-"), getattr(args, flag, None),
                  float if flag in ("epochs", "lr") else int)
    defaults = DEFAULTS[name]
    digits = args.dataset == "digits"
    if name == "multipliers":
        side = args.image_size or (MULTIPLIERS_DIGITS_SIDE if digits else 224)
    else:
        side = args.image_size or (DIGITS_SIDE if digits else 32)
    batch = args.batch_size or (QUICK["batch_size"] if args.quick else defaults["batch_size"])
    steps = args.steps or (QUICK["steps"] if args.quick else defaults.get("steps"))
    every = getattr(args, "log_every", None) or (QUICK["log_every"] if args.quick else 0)
    lr = getattr(args, "lr", None)
    if lr is None and "lr" in defaults:
        lr = defaults["lr"] * batch / defaults["batch_size"]
    augment = getattr(args, "augment", None)
    if name != "multipliers":
        augment = augment or ("none" if digits else "cifar")
    return Settings(
        name=name, dataset=args.dataset, data_dir=getattr(args, "data_dir", None),
        manual_dir=getattr(args, "manual_dir", None), image_size=side, steps=steps or 0,
        log_every=every, batch_size=batch, lr=lr, augment=augment, seed=args.seed,
        quick=args.quick, out=args.out or os.path.join(DEFAULT_OUT, name))


def finish_settings(s: Settings, split, epochs=None) -> Settings:
    """Steps from ``epochs``, the logging interval, steps rounded up to whole windows."""
    if s.batch_size > split.num_train:
        raise cli.UsageError(f"--batch-size {s.batch_size} is larger than the "
                             f"{split.num_train} training images")
    epochs = epochs or (None if s.steps else DEFAULTS[s.name].get("epochs"))
    steps = s.steps
    if epochs is not None:
        steps = max(1, math.ceil(epochs * split.num_train / s.batch_size))
    # multipliers logs no curves: one "window" is the whole run.
    every = s.log_every or (steps if s.name == "multipliers" else max(1, steps // LOG_POINTS))
    if every > steps:
        raise cli.UsageError(f"--log-every ({every}) is larger than the {steps} steps")
    return dataclasses.replace(s, steps=math.ceil(steps / every) * every, log_every=every)


def _check_depths(depths):
    shallow, deep = depths
    if any(d < 8 or (d - 2) % 6 for d in depths):
        raise cli.UsageError(f"--depths must be CIFAR depths 6n+2 (8, 14, 20, 32, 44, 56, "
                             f"110, ...). Received: {shallow} {deep}")
    if shallow >= deep:
        raise cli.UsageError(f"--depths must be SHALLOW DEEP with SHALLOW < DEEP. "
                             f"Received: {shallow} {deep}")


def _experiment_args(args, s: Settings) -> dict:
    """Validates the experiment's own flags; returns the keyword arguments to run it."""
    if args.experiment == "degradation":
        _check_depths(args.depths)
        return {"depths": tuple(args.depths)}
    if args.experiment == "batchnorm":
        registry.model_info(args.model)
        _positive("lr-multiplier", args.lr_multiplier, float)
        return {"model": args.model, "multiplier": args.lr_multiplier,
                "target": _target(args.target)}
    from export import compare
    _positive("latency-runs", args.latency_runs)
    alphas = args.alphas or (QUICK_ALPHAS if args.quick else ALPHAS)
    resolutions = args.resolutions or (QUICK_RESOLUTIONS if args.quick
                                       else resolutions_below(s.image_size))
    compare.make_configs(["mobilenet_v1"], alphas=list(alphas), resolutions=list(resolutions))
    return {"alphas": tuple(alphas), "resolutions": tuple(resolutions), "fresh": args.fresh,
            "latency_runs": args.latency_runs or (5 if args.quick else 50)}


def _target(text):
    if text in TARGETS:
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value <= 1:
        raise cli.UsageError(f"--target must be an accuracy in (0, 1], 'common' or "
                             f"'baseline'. Received: {text!r}")
    return value


RUNNERS = {"degradation": degradation, "batchnorm": batchnorm, "multipliers": multipliers}


def main(argv=None):
    """``python -m tfresnet.experiments NAME [flags]``; returns the :class:`Result`."""
    args = _parser().parse_args(argv)
    s = settings_from_args(args)
    kwargs = _experiment_args(args, s)
    if s.name != "multipliers" and s.image_size < DIGITS_SIDE:
        raise cli.UsageError(f"--image-size must be at least {DIGITS_SIDE}. "
                             f"Received: {s.image_size}")
    side = min(kwargs.get("resolutions", (s.image_size,)))
    split = data.load(s.dataset, image_size=side, data_dir=s.data_dir,
                      manual_dir=s.manual_dir, seed=s.seed)
    s = finish_settings(s, split, args.epochs)
    cli.check_writable_dir(s.out)
    what = (f"lr {s.lr:g}, augment {s.augment!r}, " if s.lr is not None else "")
    print(f"{PROG} {s.name}: {split.name}, {s.steps} steps of {s.batch_size} images, "
          f"{what}seed {s.seed} -> {s.out}", flush=True)
    result = RUNNERS[s.name](s, split, log=_printer(), **kwargs)
    print()
    print(text_table(*result.table))
    print()
    for line in result.summary.split("## Observed", 1)[1].strip().splitlines():
        print(line)
    print(f"\nwrote {', '.join(result.files.values())} ({result.wall_time:.0f} s)")
    return result


def _printer():
    def log(text):
        print(text, flush=True)
    return log


if __name__ == "__main__":
    cli.run(main, prog=PROG)
