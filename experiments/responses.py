"""``responses`` (He et al. 2016, Fig. 7): standard deviations of the layer responses.

plain-20, plain-56, ResNet-20 and ResNet-56 trained with one recipe, seed and data; for
each 3x3 layer, the standard deviation of its response: the output of its BN, before
the ReLU or the addition (layers ``..._bn`` after every 3x3 conv), over the validation
images in inference mode. Plotted by layer index and sorted by magnitude, as the
paper's Fig. 7. The paper: ResNets have smaller responses than their plain
counterparts, and the deeper ResNet smaller still ("residual functions might be
generally closer to zero than the non-residual functions").
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import time

import keras
import numpy as np

import tfresnet
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
    setup_lines,
    train_curve,
)
from experiments.degradation import check_depths
from tfresnet import data

NAME = "responses"
PAPER = ("He et al. 2016 (ResNet), Fig. 7: the standard deviations of the 3x3 layers' "
         "responses (after BN, before the nonlinearity or addition) are smaller in ResNets "
         "than in their plain counterparts, and smaller in ResNet-56 than in ResNet-20")
DEFAULTS = experiment_defaults.DEFAULTS[NAME]
CURVES = experiment_defaults.CURVES[NAME]
CSV_COLUMNS = ("model", "layer_index", "layer", "response_std")
# Median stds within this factor of each other count as equal.
RATIO_TOLERANCE = 1.05


def experiment_args(args, s: Settings) -> dict:
    check_depths(args.depths)
    return {"depths": tuple(args.depths)}


def response_stds(model, images, batch_size=256) -> list:
    """Per 3x3 layer: the standard deviation of its BN output over ``images``.

    Inference mode (BN moving statistics); the std is over every image, position and
    channel of the layer's output (population std), accumulated in float64.
    """
    layers = response_layers(model)
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    count, total, squares = np.zeros(len(layers)), np.zeros(len(layers)), np.zeros(len(layers))
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start:start + batch_size], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, out in enumerate(outputs):
            values = np.asarray(out, dtype="float64")
            count[i] += values.size
            total[i] += values.sum()
            squares[i] += np.square(values).sum()
    means = total / count
    return [float(np.sqrt(max(0.0, v))) for v in squares / count - means * means]


def run(s: Settings, split, *, depths=(20, 56), log=print) -> Result:
    """Trains plain/ResNet at two depths and measures their layer responses (Fig. 7)."""
    started = time.perf_counter()
    images, _ = data.as_numpy(split.val)
    images = data.normalize(images).astype("float32")
    curves, stds = [], {}
    runs = [(kind, d) for kind in ("plain", "resnet") for d in depths]
    for i, (kind, depth) in enumerate(runs, 1):
        key = f"{kind}{depth}"
        label = f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"
        log(f"[{i}/{len(runs)}] {label}: {s.steps} steps, lr {s.lr:g}")
        keras.utils.set_random_seed(s.seed)
        net = tfresnet.resnet_cifar(depth, plain=kind == "plain", name=key,
                                    input_shape=(s.image_size, s.image_size, 3),
                                    classes=len(split.labels))
        curve = train_curve(net, key=key, label=label, split=split, s=s, log=log)
        stds[key] = response_stds(curve.model, images)
        curves.append(curve)
    names = {c.key: [layer.name for layer in response_layers(c.model)] for c in curves}
    files = {"png": os.path.join(s.out, "responses.png"),
             "csv": os.path.join(s.out, "responses.csv"),
             "curves": os.path.join(s.out, "curves.csv"),
             "summary": os.path.join(s.out, "summary.md")}
    figures.layer_lines(
        [("by layer (original order)", [(c.label, stds[c.key]) for c in curves]),
         ("sorted by magnitude", [(c.label, sorted(stds[c.key], reverse=True))
                                  for c in curves])],
        files["png"], ylabel="std of the response", xlabel="layer index",
        title=f"{split.name} {s.image_size}x{s.image_size}: responses of the 3x3 layers "
              f"(after BN, before ReLU/addition), validation images")
    return finish(s, files, started, curves=curves,
                  summary=responses_summary(s, split, curves, stds, depths),
                  table=responses_table(curves, stds),
                  data=[("csv", stds_csv(stds, names)), ("curves", curves_csv(curves))])


def stds_csv(stds, names) -> str:
    """``model,layer_index,layer,response_std``, one row per 3x3 layer."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for key, values in stds.items():
        for i, (name, value) in enumerate(zip(names[key], values), 1):
            writer.writerow([key, i, name, f"{value:.6g}"])
    return out.getvalue()


def responses_table(curves, stds):
    """(header, rows) of the responses summary table."""
    header = ("model", "3x3 layers", "median std", "mean std", "max std",
              "final train error", "final val error")
    rows = [(c.key, len(stds[c.key]), f"{statistics.median(stds[c.key]):.3f}",
             f"{statistics.mean(stds[c.key]):.3f}", f"{max(stds[c.key]):.3f}",
             pct(c.final_train_error), pct(c.final_val_error)) for c in curves]
    return header, rows


def responses_summary(s: Settings, split, curves, stds, depths) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim."""
    shallow, deep = depths
    failures = failure_lines(curves, len(split.labels))
    judge = judged(s, failures)
    med = {k: statistics.median(v) for k, v in stds.items()}
    lines = [f"# Layer responses: plain vs ResNet, {shallow} vs {deep} layers", "",
             f"Paper: {PAPER}.", "", "Setup:",
             *setup_lines(s, split, curves, [
                 f"- responses: the output of the BN after every 3x3 conv (before the "
                 f"ReLU or the addition), on all {split.num_val:,} validation images in "
                 f"inference mode; std over images, positions and channels",
                 f"- compared by the median over layers; medians within a factor "
                 f"{RATIO_TOLERANCE:g} count as equal"]), "",
             f"Command: `{command_line(s, '--depths', shallow, deep)}`", "",
             markdown_table(*responses_table(curves, stds)), "", "## Observed", "",
             *failures]
    claims = []
    for depth in depths:
        p, r = med[f"plain{depth}"], med[f"resnet{depth}"]
        held = r * RATIO_TOLERANCE < p
        claims.append(held)
        lines.append(f"- Depth {depth}: ResNet median std {r:.3f} vs plain {p:.3f} "
                     f"({p / r:.2f}x)" + ((": ResNet's responses are smaller, as the paper "
                                          "reports." if held else ": NOT smaller; the "
                                          "paper's claim did not hold here.")
                                         if judge else "."))
    r_s, r_d = med[f"resnet{shallow}"], med[f"resnet{deep}"]
    held = r_d * RATIO_TOLERANCE < r_s
    claims.append(held)
    lines.append(f"- ResNet-{deep} median std {r_d:.3f} vs ResNet-{shallow} {r_s:.3f}"
                 + ((": the deeper ResNet's responses are smaller, as the paper reports."
                     if held else ": NOT smaller; the paper's claim did not hold here.")
                    if judge else "."))
    lines += ["", conclusion(s, all(claims), "the paper trains 64k iterations of 128 "
                                             "CIFAR-10 images", failures)]
    return "\n".join(lines) + "\n"
