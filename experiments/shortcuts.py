"""``shortcuts`` (He et al. 2016, Table 3): shortcut options A, B and C on one network.

The same CIFAR ResNet (default ResNet-20) is trained three times with one recipe, seed
and data, changing only its shortcuts (``tfresnet.resnet_cifar(depth, shortcut=...)``):
A, zero-padding where the shape changes (parameter-free); B, a 1x1 projection + BN
where the shape changes; C, a projection + BN on every shortcut. The paper (ImageNet,
ResNet-34, top-1 error 25.03 / 24.52 / 24.19%): "the small differences among A/B/C
indicate that projection shortcuts are not essential for addressing the degradation
problem".
"""

from __future__ import annotations

import os
import time

import keras

import tfresnet
from experiments import defaults as experiment_defaults
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
    setup_lines,
    train_curve,
)
from tfresnet.models.profiling import profile
from tfresnet.utils import plots

NAME = "shortcuts"
PAPER = ("He et al. 2016 (ResNet), Table 3: ResNet-34 with shortcut options A / B / C has "
         "ImageNet top-1 error 25.03 / 24.52 / 24.19%; \"the small differences among A/B/C "
         "indicate that projection shortcuts are not essential\"")
DEFAULTS = experiment_defaults.DEFAULTS[NAME]
CURVES = experiment_defaults.CURVES[NAME]
OPTIONS = ("A", "B", "C")
# Final errors within this (a fraction: 1.5 percentage points) count as "close": the
# paper's A-to-C spread is 0.84 points on 50,000 ImageNet images; the digits'
# validation set has a few hundred images, where one image is about 0.3 points.
CLOSE = 0.015


def experiment_args(args, s: Settings) -> dict:
    return {"depth": args.depth}


def run(s: Settings, split, *, depth=20, log=print) -> Result:
    """ResNet-``depth`` with shortcut options A, B and C, one recipe (ResNet Table 3)."""
    started = time.perf_counter()
    curves, params = [], {}
    for i, option in enumerate(OPTIONS, 1):
        key = f"resnet{depth}{option.lower()}"
        log(f"[{i}/{len(OPTIONS)}] ResNet-{depth} option {option}: {s.steps} steps, "
            f"lr {s.lr:g}")
        keras.utils.set_random_seed(s.seed)
        net = tfresnet.resnet_cifar(depth, shortcut=option, name=key,
                                    input_shape=(s.image_size, s.image_size, 3),
                                    classes=len(split.labels))
        params[key] = profile(net, print_table=False)
        curves.append(train_curve(net, key=key, label=f"option {option}", split=split, s=s,
                                  log=log))
    files = {"png": os.path.join(s.out, "shortcuts.png"),
             "csv": os.path.join(s.out, "curves.csv"),
             "summary": os.path.join(s.out, "summary.md")}
    plots.error_curves(
        [(f"ResNet-{depth}, shortcut options",
          [(f"{c.label} ({params[c.key].trainable:,} params)", c.steps, c.train_error,
            c.val_error) for c in curves])],
        files["png"], title=f"{split.name} {s.image_size}x{s.image_size}: thin = training "
                            f"error, bold = validation error")
    return finish(s, files, started, curves=curves,
                  summary=shortcuts_summary(s, split, curves, params, depth),
                  table=shortcuts_table(curves, params), data=[("csv", curves_csv(curves))])


def shortcuts_table(curves, params):
    """(header, rows) of the shortcuts summary table."""
    header = ("model", "trainable params", "MACs", "final train error", "final val error",
              "best val error", "time (s)")
    rows = [(c.key, f"{params[c.key].trainable:,}", f"{params[c.key].macs / 1e6:.2f}M",
             pct(c.final_train_error), pct(c.final_val_error), pct(c.best_val_error),
             f"{c.seconds:.0f}") for c in curves]
    return header, rows


def spread(curves, attribute="final_val_error") -> float:
    """Largest minus smallest of ``attribute`` over the runs (a fraction)."""
    values = [getattr(c, attribute) for c in curves]
    return max(values) - min(values)


def shortcuts_summary(s: Settings, split, curves, params, depth) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim."""
    failures = failure_lines(curves, len(split.labels))
    judge = judged(s, failures)
    val, train = spread(curves), spread(curves, "final_train_error")
    close = val <= CLOSE
    a, b, c = (params[k.key].trainable for k in curves)
    lines = [f"# Shortcut options A, B, C on ResNet-{depth}", "",
             f"Paper: {PAPER}.", "", "Setup:",
             *setup_lines(s, split, curves, [
                 f"- network: tfresnet.resnet_cifar({depth}, shortcut=A/B/C), the same "
                 f"seed, so the same initial weights wherever the layers coincide"]), "",
             f"Command: `{command_line(s, '--depth', depth)}`", "",
             markdown_table(*shortcuts_table(curves, params)), "",
             f"Final = the last logged point. \"Close\": final validation errors within "
             f"{100 * CLOSE:.1f} points of each other.", "", "## Observed", "", *failures,
             f"- Parameters: A {a:,} < B {b:,} (+{b - a:,}, projections where the shape "
             f"changes) < C {c:,} (+{c - a:,}, a projection on every shortcut).",
             f"- Final validation errors span {100 * val:.2f} points "
             f"({', '.join(f'{k.label} {pct(k.final_val_error)}' for k in curves)}); final "
             f"training errors span {100 * train:.2f} points"
             + ((": the three options are close, as the paper reports (projections are "
                 "not essential)." if close else
                 ": NOT close; the paper's claim did not hold in this run.") if judge
                else ".")]
    best = min(curves, key=lambda k: k.final_val_error)
    if judge and close:
        lines.append(f"- The lowest final validation error is {best.label}'s; the paper's "
                     f"order (C < B < A by 0.3-0.5 points) is below what this validation "
                     f"set ({split.num_val:,} images) resolves.")
    lines += ["", conclusion(s, close, "the paper trains 60e4 iterations on ImageNet",
                             failures)]
    return "\n".join(lines) + "\n"
