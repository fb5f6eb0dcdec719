"""``separable`` (Howard et al. 2017, Tables 4 and 5): separable vs full convs, thinner
vs shallower.

Four MobileNet v1 networks trained with one recipe, seed and data:

* ``mobilenet``: the paper's network at width ``alpha`` (depthwise-separable blocks);
* ``conv``: the same with full 3x3 convolutions (``mobilenet_v1(separable=False)``,
  Table 4's "Conv MobileNet");
* ``thinner``: width ``0.75 * alpha`` (Table 5's "0.75 MobileNet");
* ``shallow``: width ``alpha`` without the five 14x14x512 separable layers
  (``mobilenet_v1(shallow=True)``, Table 5's "Shallow MobileNet").

The paper (ImageNet, alpha 1, 224): Conv MobileNet 71.7% at 4866M mult-adds / 29.3M
parameters against MobileNet's 70.6% at 569M / 4.2M ("only reduces accuracy by 1% ...
while saving tremendously on mult-adds and parameters"); 0.75 MobileNet 68.4% at 325M /
2.6M against Shallow MobileNet 65.3% at 307M / 2.9M ("making MobileNets thinner is 3%
better than making them shallower"). MACs and parameters here are the profiler's at
this experiment's resolution and classes.
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
from tfresnet.models import published
from tfresnet.models.profiling import profile
from tfresnet.models.registry import model_info
from tfresnet.models.variant import ModelVariant
from tfresnet.utils import cli, plots

NAME = "separable"
# MobileNet's alpha and resolution rules and how an alpha is written, from the registry.
_MULTIPLIERS = model_info("mobilenet_v1").multipliers
alpha_text = _MULTIPLIERS.alpha_text
PAPER = ("Howard et al. 2017 (MobileNet), Table 4: full convolutions instead of separable "
         "ones cost 8.6x the mult-adds and 7x the parameters for 1.1 points of ImageNet "
         "accuracy (71.7% vs 70.6%); Table 5: at about equal cost, the thinner network "
         "(0.75 MobileNet, 68.4%) beats the shallower one (Shallow MobileNet, 65.3%)")
DEFAULTS = experiment_defaults.DEFAULTS[NAME]
CURVES = experiment_defaults.CURVES[NAME]
# MobileNet's smallest input side (its side rule's multiple); the 8x8 digits are upsampled
DIGITS_SIDE = OTHER_SIDE = _MULTIPLIERS.res_multiple
# Table 4 holds when separable is within this of the full convs (a fraction): the
# paper's gap is 1.1 points.
CLOSE = 0.02
# Table 5 holds when the thinner network is better than the shallower by more than this
# (the paper's margin is 3.1 points; on the digits' few hundred validation images one
# image is about 0.3 points, so a smaller edge is a handful of images).
BETTER = 0.01
PAPER_FIGURES = {  # key -> (registry model, alpha at 224) for the published figures
    "mobilenet": ("mobilenet_v1", 1.0), "conv": ("mobilenet_v1_conv", 1.0),
    "thinner": ("mobilenet_v1", 0.75), "shallow": ("mobilenet_v1_shallow", 1.0),
}


def experiment_args(args, s: Settings) -> dict:
    if _MULTIPLIERS.alpha_problem(0.75 * args.alpha):
        raise cli.UsageError(f"--alpha must leave the thinner network a channel (alpha >= "
                             f"{1 / (0.75 * _MULTIPLIERS.first_channels):.3f}). "
                             f"Received: {args.alpha}")
    # the widest of the four networks (its side rule too), as tfresnet.train and
    # export.tflite check it
    ModelVariant("mobilenet_v1", args.alpha, s.image_size).check(
        classes=2, batch=s.batch_size)
    return {"alpha": args.alpha}


def networks(alpha):
    """``[(key, label, builder keyword arguments)]`` of the four networks."""
    return [("mobilenet", f"MobileNet {alpha_text(alpha)}", {"alpha": alpha}),
            ("conv", f"Conv MobileNet {alpha_text(alpha)}",
             {"alpha": alpha, "separable": False}),
            ("thinner", f"{alpha_text(0.75 * alpha)} MobileNet (thinner)",
             {"alpha": 0.75 * alpha}),
            ("shallow", f"Shallow MobileNet {alpha_text(alpha)}",
             {"alpha": alpha, "shallow": True})]


def run(s: Settings, split, *, alpha=0.5, log=print) -> Result:
    """The four MobileNets of Tables 4 and 5, one recipe."""
    started = time.perf_counter()
    curves, costs = [], {}
    nets = networks(alpha)
    for i, (key, label, kwargs) in enumerate(nets, 1):
        keras.utils.set_random_seed(s.seed)
        net = tfresnet.mobilenet_v1(res=s.image_size, classes=len(split.labels), **kwargs)
        costs[key] = profile(net, print_table=False)
        log(f"[{i}/{len(nets)}] {label}: {costs[key].macs / 1e6:.2f}M MACs, "
            f"{costs[key].trainable:,} params; {s.steps} steps, lr {s.lr:g}")
        curves.append(train_curve(net, key=key, label=label, split=split, s=s, log=log))
    files = {"png": os.path.join(s.out, "separable.png"),
             "csv": os.path.join(s.out, "curves.csv"),
             "summary": os.path.join(s.out, "summary.md")}
    by = {c.key: c for c in curves}
    panels = [("Table 4: separable vs full convolutions",
               [_line(by[k], costs[k]) for k in ("mobilenet", "conv")]),
              ("Table 5: thinner vs shallower",
               [_line(by[k], costs[k]) for k in ("thinner", "shallow")])]
    plots.error_curves(panels, files["png"], title=(
        f"MobileNet v1 on {split.name} {s.image_size}x{s.image_size}: thin = training "
        f"error, bold = validation error"))
    return finish(s, files, started, curves=curves,
                  summary=separable_summary(s, split, curves, costs, alpha),
                  table=separable_table(curves, costs), data=[("csv", curves_csv(curves))])


def _line(curve, cost):
    return (f"{curve.label}: {cost.macs / 1e6:.1f}M MACs, {cost.trainable / 1e6:.2f}M params",
            curve.steps, curve.train_error, curve.val_error)


def paper_figures(key):
    """(top-1 %, million MACs, million parameters) at 224 that the paper prints."""
    model, alpha = PAPER_FIGURES[key]
    return (published.TOP1[(model, alpha, 224)][0], published.MACS[(model, alpha, 224)][0] / 1e6,
            published.PRINTED_PARAMS[(model, alpha, None)][0] / 1e6)


def separable_table(curves, costs):
    """(header, rows) of the separable summary table, the paper's figures beside."""
    header = ("network", "MACs", "trainable params", "final val accuracy",
              "best val accuracy", "paper (224): top-1 / MACs / params", "time (s)")
    rows = []
    for c in curves:
        top1, macs, params = paper_figures(c.key)
        rows.append((c.key, f"{costs[c.key].macs / 1e6:.2f}M", f"{costs[c.key].trainable:,}",
                     pct(1 - c.final_val_error), pct(1 - c.best_val_error),
                     f"{top1}% / {macs:g}M / {params:g}M", f"{c.seconds:.0f}"))
    return header, rows


def separable_summary(s: Settings, split, curves, costs, alpha) -> str:
    """The Markdown summary: setup, table, observation against the paper's claims."""
    by = {c.key: c for c in curves}
    acc = {k: 1 - c.final_val_error for k, c in by.items()}
    failures = failure_lines(curves, len(split.labels))
    judge = judged(s, failures)
    sep, conv = costs["mobilenet"], costs["conv"]
    lines = ["# MobileNet: separable vs full convolutions, thinner vs shallower", "",
             f"Paper: {PAPER}.", "", "Setup:",
             *setup_lines(s, split, curves, [
                 f"- networks: tfresnet.mobilenet_v1 at res {s.image_size}, "
                 f"{len(split.labels)} classes: alpha {alpha_text(alpha)} separable, the "
                 f"same with separable=False, alpha {alpha_text(0.75 * alpha)}, and alpha "
                 f"{alpha_text(alpha)} with shallow=True; MACs and parameters by "
                 f"tfresnet.profile"]), "",
             f"Command: `{command_line(s, '--alpha', alpha_text(alpha))}`", "",
             markdown_table(*separable_table(curves, costs)), "",
             "Accuracy = the last logged point (final).", "", "## Observed", "", *failures,
             f"- Cost (a count, true at any budget): full convolutions cost "
             f"{conv.macs / sep.macs:.1f}x the MACs and {conv.trainable / sep.trainable:.1f}x "
             f"the parameters of the separable network (paper at 224: 8.6x and 7.0x); "
             f"the thinner network costs {costs['thinner'].macs / 1e6:.2f}M MACs / "
             f"{costs['thinner'].trainable:,} params, the shallow one "
             f"{costs['shallow'].macs / 1e6:.2f}M / {costs['shallow'].trainable:,}."]
    gap = acc["conv"] - acc["mobilenet"]
    table4 = gap <= CLOSE
    lines.append(f"- Table 4: separable {pct(acc['mobilenet'])} vs full convs "
                 f"{pct(acc['conv'])} ({100 * gap:+.2f} points for the full convs)"
                 + ((f": separable is within {100 * CLOSE:g} points at a fraction of the "
                     f"cost, as the paper reports." if table4 else
                     f": separable is more than {100 * CLOSE:g} points worse; the paper's "
                     f"claim did not hold here.") if judge else "."))
    edge = acc["thinner"] - acc["shallow"]
    table5 = edge > BETTER
    lines.append(f"- Table 5: thinner {pct(acc['thinner'])} vs shallower "
                 f"{pct(acc['shallow'])} ({100 * edge:+.2f} points for the thinner)"
                 + ((": thinner beats shallower, as the paper reports." if table5 else
                     f": thinner is NOT better by more than {100 * BETTER:g} points; the "
                     f"paper's claim did not appear here.") if judge else "."))
    if acc["thinner"] > acc["mobilenet"] + BETTER:
        lines.append(f"- Caution: the thinner network ({pct(acc['thinner'])}) beat the "
                     f"full-width separable one ({pct(acc['mobilenet'])}), which the paper's "
                     f"Table 6 does not allow: differences of a few points are within one "
                     f"seed's noise here (one validation image is "
                     f"{100 / split.num_val:.2f} points).")
    if split.name == "digits":
        lines.append(f"- The digits are 8x8 images upsampled to {s.image_size}x"
                     f"{s.image_size}, 10 easy classes: far less room between networks "
                     f"than ImageNet's 1000.")
    lines += ["", conclusion(s, table4 and table5, "the paper trains on ImageNet",
                             failures)]
    return "\n".join(lines) + "\n"
