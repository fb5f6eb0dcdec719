"""``batchnorm`` (Ioffe & Szegedy 2015, Fig. 2 and Table 2): with and without BN.

One network without BatchNormalization, with BN, and with BN at a higher learning
rate; the steps each needs to reach a common validation accuracy: by default the
highest accuracy every run reaches (the lowest of the runs' best accuracies);
``--target baseline`` takes the paper's rule, the best accuracy of the network
without BN (72.2% for its Inception, which every BN variant passed, so there the
two rules agree).
"""

from __future__ import annotations

import os
import time

import tf_keras as keras

from tfresnet import cli, plots, registry
from experiments.common import (Result, Settings, check_positive, command_line, conclusion,
                                curves_csv, failure_lines, judged, markdown_table, pct,
                                run_failure, setup_lines, train_curve, without_batchnorm)

NAME = "batchnorm"
PAPER = ("Ioffe & Szegedy 2015 (BatchNorm), Fig. 2 / Table 2: BN reaches the baseline's best "
         "accuracy in about half the steps (BN with a 5x learning rate: about 1/14)")
DEFAULTS = {"steps": 600, "batch_size": 128, "lr": 0.01}
CURVES = True


def add_parser(sub, parents):
    b = sub.add_parser(NAME, parents=parents, help="with and without BN, and BN at 5x the "
                       "learning rate (BN paper Fig. 2)", description=(
                           "Train one network without BN, with BN, and with BN at a higher "
                           "learning rate; plot validation accuracy against steps and report "
                           "the steps each needs to reach a common accuracy. Defaults: "
                           f"{DEFAULTS['steps']} steps, batch 128, lr 0.01 (a rate the "
                           "network without BN can train at)."))
    b.add_argument("--model", default="plain20", help="registry network with BN (default "
                   "plain20: like the BN paper's Inception, it has no shortcuts)")
    b.add_argument("--lr-multiplier", type=float, default=5.0,
                   help="learning-rate multiplier of the third run (default 5, the paper's)")
    b.add_argument("--target", default="common", help="validation accuracy to reach: a "
                   "number in (0, 1], 'common' (default: the highest accuracy every run "
                   "reaches) or 'baseline' (the best the no-BN run reaches, the paper's rule)")


def experiment_args(args, s: Settings) -> dict:
    registry.model_info(args.model)
    check_positive("lr-multiplier", args.lr_multiplier, float)
    return {"model": args.model, "multiplier": args.lr_multiplier,
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


def run(s: Settings, split, *, model="plain20", multiplier=5.0, target="common",
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
    target, rule = resolve_target(target, curves, len(split.labels))
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


def batchnorm_summary(s: Settings, split, curves, target, rule, model, multiplier) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim.

    A run that diverged, collapsed or never learned is named, and then (as at
    ``--quick``) the figures are stated without calling the paper's effect shown.
    """
    _, bn, fast = curves
    base, with_bn, with_fast = (c.steps_to(target) for c in curves)
    repeat = command_line(s, "--model", model, "--lr-multiplier", f"{multiplier:g}",
                     "--target", rule if rule != "given" else f"{target:g}")
    extra = [f"- network: {model} (registry) with BN; the no-BN twin is the same network "
             f"with every BatchNormalization replaced by an identity layer and a bias "
             f"added to every convolution (same initial kernels); the third run is BN "
             f"at {multiplier:g}x the learning rate"]
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
    for label, steps in ((bn.label, with_bn), (fast.label, with_fast)):
        if steps is None:
            lines.append(f"- {label} did NOT reach {pct(target)} within {s.steps:,} steps.")
            shown = False
        elif base is None:
            lines.append(f"- {label} reached {pct(target)} at step {steps:,}; the no-BN "
                         f"run never did" + (": BN is faster, as the paper reports."
                                             if judge else "."))
        elif steps < base:
            lines.append(f"- {label} reached {pct(target)} at step {steps:,}, "
                         f"{base / steps:.1f}x fewer steps than without BN ({base:,})"
                         + (": BN reaches the target in fewer steps, as the paper reports."
                            if judge else "."))
        else:
            lines.append(f"- {label} reached {pct(target)} at step {steps:,}, NOT fewer "
                         f"than without BN ({base:,})"
                         + (": the paper's claim did not hold here." if judge else "."))
            shown = False
    lines += ["", conclusion(s, shown, "the paper trains Inception for 31M steps", failures)]
    return "\n".join(lines) + "\n"
