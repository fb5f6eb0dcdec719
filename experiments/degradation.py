"""``degradation`` (He et al. 2016, Fig. 1 and Fig. 6): plain vs ResNet, shallow vs deep.

plain-20, plain-56, ResNet-20 and ResNet-56 (the registry's CIFAR builders, option A
shortcuts) trained with one recipe, seed and data. The paper: the deeper *plain* net
has the higher training error (degradation, an optimization problem, not
overfitting); with shortcuts the deeper net is at least as good.
"""

from __future__ import annotations

import os
import time

import keras

import tfresnet
from experiments import defaults as experiment_defaults
from experiments.common import (
    TOLERANCE,
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
    setup_lines,
    train_curve,
)
from tfresnet.utils import cli, plots

NAME = "degradation"
PAPER = ("He et al. 2016 (ResNet), Fig. 1 and Fig. 6: plain-56 has a higher training error "
         "than plain-20 on CIFAR-10; ResNet-56 is better than ResNet-20")
DEFAULTS = experiment_defaults.DEFAULTS[NAME]
CURVES = experiment_defaults.CURVES[NAME]


def check_depths(depths):
    """Raises UsageError unless ``depths`` (each a CIFAR depth, checked by its argparse
    type) are shallow first."""
    shallow, deep = depths
    if shallow >= deep:
        raise cli.UsageError(f"--depths must be SHALLOW DEEP with SHALLOW < DEEP. "
                             f"Received: {shallow} {deep}")


def experiment_args(args, s: Settings) -> dict:
    check_depths(args.depths)
    return {"depths": tuple(args.depths)}


def run(s: Settings, split, *, depths=(20, 56), log=print) -> Result:
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
    return finish(s, files, started, curves=curves,
                  summary=degradation_summary(s, split, curves, depths),
                  table=degradation_table(curves), data=[("csv", curves_csv(curves))])


def degradation_table(curves):
    """(header, rows) of the degradation summary table."""
    header = ("model", "final train error", "final val error", "best val error",
              "time (s)")
    rows = [(c.key, pct(c.final_train_error), pct(c.final_val_error),
             pct(c.best_val_error), f"{c.seconds:.0f}") for c in curves]
    return header, rows


def _verdicts(s: Settings, by, depths):
    shallow, deep = depths
    plain_gap = by[f"plain{deep}"].final_train_error - by[f"plain{shallow}"].final_train_error
    res_gap = by[f"resnet{deep}"].final_train_error - by[f"resnet{shallow}"].final_train_error
    degraded = plain_gap > TOLERANCE
    fixed = res_gap <= TOLERANCE
    return plain_gap, res_gap, degraded, fixed


def degradation_summary(s: Settings, split, curves, depths) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim.

    The observed lines state the figures; they are called the paper's effect (or its
    absence) only when :func:`experiments.common.judged`: not at ``--quick``, and not
    when a run diverged, collapsed or never learned (those runs are named instead).
    """
    by = {c.key: c for c in curves}
    shallow, deep = depths
    plain_gap, res_gap, degraded, fixed = _verdicts(s, by, depths)
    p_s, p_d = by[f"plain{shallow}"], by[f"plain{deep}"]
    r_s, r_d = by[f"resnet{shallow}"], by[f"resnet{deep}"]
    failures = failure_lines(curves, len(split.labels))
    judge = judged(s, failures)
    tol = f"{100 * TOLERANCE:.1f} points"
    lines = [f"# Degradation: plain vs ResNet, {shallow} vs {deep} layers", "",
             f"Paper: {PAPER}.", "", "Setup:",
             *setup_lines(s, split, curves), "",
             f"Command: `{command_line(s, '--depths', shallow, deep)}`", "",
             markdown_table(*degradation_table(curves)), "",
             "Final = the last logged point. Two errors within "
             f"{tol} count as equal.", "", "## Observed", "", *failures]
    if degraded:
        lines.append(
            f"- Plain: plain-{deep}'s final training error ({pct(p_d.final_train_error)}) "
            f"is ABOVE plain-{shallow}'s ({pct(p_s.final_train_error)}), by "
            f"{100 * plain_gap:.2f} points"
            + (": the degradation the paper reports appears." if judge else "."))
    else:
        lines.append(
            f"- Plain: plain-{deep}'s final training error ({pct(p_d.final_train_error)}) "
            f"is NOT above plain-{shallow}'s ({pct(p_s.final_train_error)}) by more than "
            f"{tol}" + (": the degradation did not appear in this run." if judge else "."))
    if fixed:
        lines.append(
            f"- ResNet: ResNet-{deep}'s final training error ({pct(r_d.final_train_error)}) "
            f"is at or below ResNet-{shallow}'s ({pct(r_s.final_train_error)}) within "
            f"{tol}" + (": with shortcuts the deeper network is not worse, as the paper "
                        "reports." if judge else "."))
    else:
        lines.append(
            f"- ResNet: ResNet-{deep}'s final training error ({pct(r_d.final_train_error)}) "
            f"is ABOVE ResNet-{shallow}'s ({pct(r_s.final_train_error)}) by "
            f"{100 * res_gap:.2f} points"
            + (": the paper's claim did not hold in this run." if judge else "."))
    lines.append(f"- Validation (not part of the claim checked above): "
                 f"{_compare_val(p_d, p_s, split)}; {_compare_val(r_d, r_s, split)}.")
    lines += ["", conclusion(s, degraded and fixed,
                             "the paper trains 64k iterations of 128 CIFAR-10 images",
                             failures)]
    return "\n".join(lines) + "\n"


def _compare_val(deep, shallow, split) -> str:
    gap = deep.final_val_error - shallow.final_val_error
    images = round(abs(gap) * split.num_val)
    how = ("equal" if abs(gap) <= TOLERANCE else
           f"{deep.label} {'higher' if gap > 0 else 'lower'} by {100 * abs(gap):.2f} points, "
           f"{images} of {split.num_val:,} images")
    return (f"{deep.label} {pct(deep.final_val_error)} vs {shallow.label} "
            f"{pct(shallow.final_val_error)} ({how})")


