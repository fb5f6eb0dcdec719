"""``batchnorm`` (Ioffe & Szegedy 2015, Fig. 2 and Table 2): with and without BN.

One network without BatchNormalization, with BN, and with BN at a higher learning
rate; the steps each needs to reach a common validation accuracy: by default the
highest accuracy every run reaches (the lowest of the runs' best accuracies);
``--target baseline`` takes the paper's rule, the best accuracy of the network
without BN (72.2% for its Inception, which every BN variant passed, so there the
two rules agree).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time

import keras
import numpy as np

from experiments import defaults as experiment_defaults
from experiments import figures
from experiments.common import (
    Result,
    Settings,
    command_line,
    conclusion,
    curves_csv,
    failure_lines,
    finish,
    judged,
    markdown_table,
    pct,
    response_layers,
    run_failure,
    setup_lines,
    train_curve,
    without_batchnorm,
)
from tfresnet import data
from tfresnet.models import registry
from tfresnet.utils import cli, plots
from tfresnet.utils.flags import MAX_LR

NAME = "batchnorm"
PAPER = ("Ioffe & Szegedy 2015 (BatchNorm), Fig. 2 / Table 2: BN reaches the baseline's best "
         "accuracy in about half the steps (BN with a 5x learning rate: about 1/14; with "
         "30x: 1/11, and the best final accuracy); Fig. 1 (b, c): without BN the "
         "distribution of an inner activation's input drifts over training, with BN it "
         "stays stable")
DEFAULTS = experiment_defaults.DEFAULTS[NAME]
MULTIPLIERS = experiment_defaults.BATCHNORM_MULTIPLIERS
PERCENTILES = (15, 50, 85)
PROBE_IMAGES = 512  # validation images whose activation input is recorded
CURVES = experiment_defaults.CURVES[NAME]


def experiment_args(args, s: Settings) -> dict:
    registry.model_info(args.model)
    for m in args.lr_multipliers:  # each run's rate within tfresnet.train's --lr bound
        if s.lr * m > MAX_LR:
            raise cli.UsageError(f"argument --lr-multipliers: {m:g} x the learning rate "
                                 f"{s.lr:g} is {s.lr * m:g}, above {MAX_LR:g}, the largest "
                                 f"rate tfresnet.train takes. Received: {m:g}")
    return {"model": args.model, "multipliers": tuple(args.lr_multipliers),
            "target": parse_target(args.target)}


TARGETS = ("common", "baseline")


def parse_target(text):
    """``--target``: a rule name or an accuracy in (0, 1]."""
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


class ActivationProbe(keras.callbacks.Callback):
    """Records percentiles of one unit's activation input at every logging point.

    The unit: channel 0 at the centre of the layer ``layer_name``'s output (a BN output,
    or the identity that replaces it in the no-BN twin: the input of the ReLU), over
    fixed ``images`` in inference mode; before training (step 0) and after every Keras
    epoch (``every`` steps), as the BatchNorm paper's Fig. 1 (b, c).
    """

    def __init__(self, layer_name, images, every):
        super().__init__()
        self.layer_name, self.images, self.every = layer_name, images, every
        self.steps, self.values = [], []
        self._probe = None

    def _record(self, step):
        if self._probe is None:
            layer = self.model.get_layer(self.layer_name)
            self._probe = keras.Model(self.model.inputs, layer.output)
        out = self._probe(self.images, training=False).numpy()
        unit = out[:, out.shape[1] // 2, out.shape[2] // 2, 0]
        self.steps.append(step)
        self.values.append([float(v) for v in np.percentile(unit, PERCENTILES)])

    def on_train_begin(self, logs=None):
        self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        self._record((epoch + 1) * self.every)


def probe_layer(model) -> str:
    """The middle 3x3 layer's BN: the "typical inner activation" whose input is probed."""
    layers = response_layers(model)
    return layers[len(layers) // 2].name


def run(s: Settings, split, *, model="plain20", multipliers=MULTIPLIERS, target="common",
        log=print) -> Result:
    """One network without BN, with BN, and with BN at ``multipliers`` x the LR.

    Args:
      s: the settings (``s.lr`` is the base learning rate of the first two runs).
      split: the loaded DataSplit.
      model: registry name of the network with BN.
      multipliers: learning-rate multipliers of the further BN runs (the paper's BN-x5
        and BN-x30).
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
            *((f"bn_x{m:g}", f"{model} BN, {m:g}x LR", with_bn, s.lr * m)
              for m in multipliers)]
    layer = probe_layer(with_bn)
    images, _ = data.as_numpy(split.val, limit=PROBE_IMAGES)
    images = data.normalize(images).astype("float32")
    curves, probes = [], {}
    for i, (key, label, net, lr) in enumerate(runs, 1):
        log(f"[{i}/{len(runs)}] {label}: {s.steps} steps, lr {lr:g}")
        probe = ActivationProbe(layer, images, s.log_every)
        curves.append(train_curve(net, key=key, label=label, split=split, s=s, lr=lr,
                                  log=log, callbacks=[probe]))
        probes[key] = probe
    target, rule = resolve_target(target, curves, len(split.labels))
    files = {"png": os.path.join(s.out, "batchnorm.png"),
             "percentiles_png": os.path.join(s.out, "percentiles.png"),
             "csv": os.path.join(s.out, "curves.csv"),
             "percentiles_csv": os.path.join(s.out, "percentiles.csv"),
             "summary": os.path.join(s.out, "summary.md")}
    plots.accuracy_curves([(f"{c.label} (lr {c.lr:g})", c.steps,
                            [1.0 - e for e in c.val_error]) for c in curves],
                          files["png"], target=target,
                          title=f"{info.name} on {split.name} {s.image_size}x{s.image_size}")
    figures.percentiles(
        [(f"{c.label} (lr {c.lr:g})", probes[c.key].steps,
          *zip(*probes[c.key].values)) for c in curves[:2]],
        files["percentiles_png"], title=(
            f"{model}, input of one ReLU ({layer}, channel 0, centre; {len(images)} "
            f"validation images): 15th, 50th, 85th percentiles (BN paper Fig. 1 b, c)"))
    summary = batchnorm_summary(s, split, curves, target, rule, model, multipliers,
                                probes=probes, layer=layer)
    return finish(s, files, started, curves=curves, summary=summary,
                  table=batchnorm_table(curves, target),
                  data=[("csv", curves_csv(curves)),
                        ("percentiles_csv", percentiles_csv(probes))])


def percentiles_csv(probes) -> str:
    """``model,step,p15,p50,p85``: the probed unit's percentiles at every logged step."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("model", "step", *(f"p{q}" for q in PERCENTILES)))
    for key, probe in probes.items():
        for step, values in zip(probe.steps, probe.values):
            writer.writerow([key, step, *(f"{v:.6g}" for v in values)])
    return out.getvalue()


def stability(probe) -> tuple:
    """(drift, width change) of a probe's distribution over training.

    drift: how far the median moved (max - min over the logged points) in units of the
    mean 15th-85th percentile width; width change: the final width over the initial.
    """
    p15, p50, p85 = (np.array(v) for v in zip(*probe.values))
    width = p85 - p15
    drift = float((p50.max() - p50.min()) / max(width.mean(), 1e-12))
    return drift, float(width[-1] / max(width[0], 1e-12))


def resolve_target(target, curves, classes=None):
    """``(accuracy, rule)`` for ``target`` ("common", "baseline" or a fraction).

    "common": the highest validation accuracy every run reaches, over the runs that
    did not fail (:func:`experiments.common.run_failure`, when ``classes`` is given:
    a diverged run would otherwise pull the target down to chance); "baseline": the
    best of the first run (no BN), the paper's rule.
    """
    if target == "common":
        healthy = [c for c in curves if classes is None or run_failure(c, classes) is None]
        return min(1.0 - c.best_val_error for c in healthy or curves), "common"
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
                     pct(1 - c.final_val_error), pct(1 - c.best_val_error),
                     f"{c.seconds:.0f}"))
    return header, rows


TARGET_RULES = {
    "common": " (the highest accuracy every run that did not fail reaches: the lowest of "
              "their best accuracies; the paper's target, its baseline's best, was passed "
              "by every BN variant, so there the two rules agree)",
    "baseline": " (the best the no-BN run reached, the paper's rule)",
    "given": " (given with --target)",
}


def batchnorm_summary(s: Settings, split, curves, target, rule, model, multipliers,
                      probes=None, layer=None) -> str:
    """The Markdown summary: setup, table, observation against the paper's claims.

    A run that diverged, collapsed or never learned is named, and then (as at
    ``--quick``) the figures are stated without calling the paper's effect shown.
    ``probes`` (key -> :class:`ActivationProbe`) adds the Fig. 1 (b, c) observation.
    """
    nobn, *with_bn = curves
    base = nobn.steps_to(target)
    repeat = command_line(s, "--model", model, "--lr-multipliers",
                          *(f"{m:g}" for m in multipliers),
                          "--target", rule if rule != "given" else f"{target:g}")
    extra = [f"- network: {model} (registry) with BN; the no-BN twin is the same network "
             f"with every BatchNormalization replaced by an identity layer and a bias "
             f"added to every convolution (same initial kernels); further runs: BN at "
             f"{', '.join(f'{m:g}x' for m in multipliers)} the learning rate"]
    if probes:
        extra.append(f"- activation input (Fig. 1 b, c): channel 0 at the centre of "
                     f"{layer}'s output (the input of a ReLU in the middle of the network), "
                     f"on {len(next(iter(probes.values())).images)} validation images in "
                     f"inference mode, at step 0 and "
                     f"every {s.log_every} steps: its {', '.join(map(str, PERCENTILES))}th "
                     f"percentiles")
    failures = failure_lines(curves, len(split.labels))
    judge = judged(s, failures)
    lines = ["# Batch normalization: steps to a common accuracy", "",
             f"Paper: {PAPER}.", "", "Setup:",
             *setup_lines(s, split, curves, extra), "",
             f"Command: `{repeat}`", "",
             f"Target validation accuracy: {pct(target)}{TARGET_RULES[rule]}.", "",
             markdown_table(*batchnorm_table(curves, target)), "", "## Observed", "",
             *failures]
    shown = True
    for c in with_bn:
        steps = c.steps_to(target)
        if steps is None:
            lines.append(f"- {c.label} did NOT reach {pct(target)} within {s.steps:,} "
                         f"steps.")
            shown = False
        elif base is None:
            lines.append(f"- {c.label} reached {pct(target)} at step {steps:,}; the no-BN "
                         f"run never did" + (": BN is faster, as the paper reports."
                                             if judge else "."))
        elif steps < base:
            lines.append(f"- {c.label} reached {pct(target)} at step {steps:,}, "
                         f"{base / steps:.1f}x fewer steps than without BN ({base:,})"
                         + (": BN reaches the target in fewer steps, as the paper reports."
                            if judge else "."))
        else:
            lines.append(f"- {c.label} reached {pct(target)} at step {steps:,}, NOT fewer "
                         f"than without BN ({base:,})"
                         + (": the paper's claim did not hold here." if judge else "."))
            shown = False
    if len(with_bn) > 2:
        fastest = max(with_bn[1:], key=lambda c: 1 - c.final_val_error)
        lines.append("- Higher rates: final validation accuracy "
                     + ", ".join(f"{c.label} {pct(1 - c.final_val_error)}" for c in with_bn)
                     + f" (the paper: BN-x30 reached the target a little later than BN-x5, "
                       f"2.7M vs 2.1M steps, and ended best, 74.8%); here the best of the "
                       f"higher rates is {fastest.label}.")
    if probes:
        (d0, w0), (d1, w1) = stability(probes[nobn.key]), stability(probes[with_bn[0].key])
        stable = d1 < d0 and abs(math.log(w1)) < abs(math.log(w0))
        lines.append(f"- Activation input (Fig. 1 b, c): the median moved {d0:.2f} widths "
                     f"without BN vs {d1:.2f} with BN (width = 15th to 85th percentile); "
                     f"the width changed {w0:.2f}x without BN vs {w1:.2f}x with BN"
                     + ((": the distribution is steadier with BN, as the paper reports."
                         if stable else ": NOT steadier with BN here; the paper's claim did "
                         "not hold.") if judge else "."))
        shown = shown and stable
    lines += ["", conclusion(s, shown, "the paper trains Inception for 31M steps", failures)]
    return "\n".join(lines) + "\n"
