"""``gradients``: per-layer gradient norms of plain nets without and with BN, and ResNets.

Three networks of one depth (default 56) from one seed: the plain net without BN (the
BN-free twin of the next, same initial kernels), the plain net with BN, and the ResNet
(option A). For every 3x3 convolution, the norm of the loss gradient with respect to its
kernel, averaged over a few fixed training batches (BN in training mode, as in
training), at initialization and after a short training, against the layer's depth.

The papers: "vanishing/exploding gradients ... largely addressed by normalized
initialization and intermediate normalization layers" (ResNet Sec. 1); of plain nets
trained with BN, "we also verify that the backward propagated gradients exhibit healthy
norms with BN" (ResNet Sec. 4.1); a shortcut adds an identity term to each block's
gradient.

Gradient norms are called (definitions stated in the summary): *vanishing* when the
median layer's norm is below ``VANISHING`` (a step of learning rate 0.1 would move a
kernel by less than 1e-4); *exploding toward the input* when the layers nearest the
input have norms more than ``SPREAD`` times those nearest the output, *vanishing toward
the input* when less than 1/``SPREAD`` times; else *healthy*.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

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
    setup_lines,
    train_curve,
    without_batchnorm,
)
from tfresnet import data

NAME = "gradients"
PAPER = ("He et al. 2016 (ResNet), Sec. 1 and 4.1: vanishing/exploding gradients are largely "
         "addressed by normalized initialization and BN; plain nets trained with BN show "
         "\"healthy\" backward gradient norms, so their degradation is not caused by "
         "vanishing gradients")
DEFAULTS = experiment_defaults.DEFAULTS[NAME]
CURVES = experiment_defaults.CURVES[NAME]
PROBE_BATCHES = 4        # fixed training batches the norms are averaged over
VANISHING = 1e-3         # median kernel-gradient norm below this: vanishing
SPREAD = 10.0            # input-end / output-end ratio beyond this: not even across depth
END_LAYERS = 5           # layers averaged at each end for that ratio
CSV_COLUMNS = ("model", "when", "layer_index", "layer", "grad_norm")


def experiment_args(args, s: Settings) -> dict:
    return {"depth": args.depth}


def conv3x3_layers(model) -> list:
    """The model's 3x3 convolutions in depth order (1x1 projections excluded)."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D) and tuple(layer.kernel_size) == (3, 3)]


def gradient_norms(model, batches) -> list:
    """Per 3x3 conv: the norm of d(mean cross-entropy)/d(kernel), averaged over batches.

    BN runs in training mode (batch statistics), as during training; the model's
    weights, BN moving statistics included, are left as they were.
    """
    layers = conv3x3_layers(model)
    saved = model.get_weights()
    total = np.zeros(len(layers))
    for images, labels in batches:
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, probabilities))
        grads = tape.gradient(loss, [layer.kernel for layer in layers])
        total += [float(tf.norm(g)) for g in grads]
    model.set_weights(saved)
    return list(total / len(batches))


def probe_batches(split, batch_size, seed, count=PROBE_BATCHES):
    """``count`` fixed, normalized training batches."""
    images, labels = data.as_numpy(split.train, limit=count * batch_size)
    images = data.normalize(images).astype("float32")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    return [(images[order[i::count]], labels[order[i::count]]) for i in range(count)]


def verdict(norms) -> str:
    """"vanishing", "exploding toward the input", "vanishing toward the input", "healthy"."""
    if not all(np.isfinite(norms)):
        return "not finite"
    if statistics.median(norms) < VANISHING:
        return "vanishing"
    ratio = end_ratio(norms)
    if ratio > SPREAD:
        return "exploding toward the input"
    if ratio < 1 / SPREAD:
        return "vanishing toward the input"
    return "healthy"


def end_ratio(norms) -> float:
    """Mean norm of the ``END_LAYERS`` layers nearest the input over the nearest the output."""
    k = min(END_LAYERS, len(norms) // 2) or 1
    return float(np.mean(norms[:k]) / np.mean(norms[-k:]))


def run(s: Settings, split, *, depth=56, log=print) -> Result:
    """Gradient norms per layer of plain-``depth`` without/with BN and ResNet-``depth``."""
    started = time.perf_counter()
    shape = (s.image_size, s.image_size, 3)
    classes = len(split.labels)
    keras.utils.set_random_seed(s.seed)
    plain = tfresnet.resnet_cifar(depth, plain=True, input_shape=shape, classes=classes)
    keras.utils.set_random_seed(s.seed)
    resnet = tfresnet.resnet_cifar(depth, input_shape=shape, classes=classes)
    nets = [(f"plain{depth}_nobn", f"plain-{depth} without BN", without_batchnorm(plain)),
            (f"plain{depth}", f"plain-{depth} with BN", plain),
            (f"resnet{depth}", f"ResNet-{depth}", resnet)]
    batches = probe_batches(split, min(s.batch_size, 128), s.seed)
    norms, curves = {}, []
    for i, (key, label, net) in enumerate(nets, 1):
        norms[(key, "init")] = gradient_norms(net, batches)
        log(f"[{i}/{len(nets)}] {label}: gradient norms at init measured; {s.steps} steps, "
            f"lr {s.lr:g}")
        curve = train_curve(net, key=key, label=label, split=split, s=s, log=log)
        norms[(key, "trained")] = gradient_norms(curve.model, batches)
        curves.append(curve)
    names = [layer.name for layer in conv3x3_layers(plain)]
    files = {"png": os.path.join(s.out, "gradients.png"),
             "csv": os.path.join(s.out, "grad_norms.csv"),
             "curves": os.path.join(s.out, "curves.csv"),
             "summary": os.path.join(s.out, "summary.md")}
    figures.layer_lines(
        [("at initialization", [(c.label, norms[(c.key, "init")]) for c in curves]),
         (f"after {s.steps:,} steps", [(c.label, norms[(c.key, "trained")]) for c in curves])],
        files["png"], ylabel="gradient norm of the 3x3 conv kernel (log)", log=True,
        xlabel="layer (1 = nearest the input)",
        title=f"{split.name} {s.image_size}x{s.image_size}, {depth} layers: per-layer "
              f"gradient norms")
    return finish(s, files, started, curves=curves,
                  summary=gradients_summary(s, split, curves, norms, depth),
                  table=gradients_table(curves, norms),
                  data=[("csv", norms_csv(norms, names)), ("curves", curves_csv(curves))])


def norms_csv(norms, names) -> str:
    """``model,when,layer_index,layer,grad_norm``, one row per layer and moment."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for (key, when), values in norms.items():
        for i, (name, value) in enumerate(zip(names, values), 1):
            writer.writerow([key, when, i, name, f"{value:.6g}"])
    return out.getvalue()


def gradients_table(curves, norms):
    """(header, rows): per model and moment, the median norm, end ratio and verdict."""
    header = ("model", "when", "median norm", "input/output end", "gradients",
              "final train loss", "final val error")
    rows = []
    for c in curves:
        for when in ("init", "trained"):
            values = norms[(c.key, when)]
            rows.append((c.key, when, f"{statistics.median(values):.3g}",
                         f"{end_ratio(values):.3g}x", verdict(values),
                         f"{c.loss[-1]:.3g}" if when == "trained" and c.loss else "–",
                         pct(c.final_val_error) if when == "trained" else "–"))
    return header, rows


def gradients_summary(s: Settings, split, curves, norms, depth) -> str:
    """The Markdown summary: setup, table, observation against the paper's claims."""
    failures = failure_lines(curves, len(split.labels))
    nobn, bn, res = curves
    v = {(c.key, w): verdict(norms[(c.key, w)]) for c in curves for w in ("init", "trained")}
    judge = judged(s, [f for f in failures if "diverged" in f])
    lines = [f"# Gradient norms per layer: plain-{depth} without and with BN, "
             f"ResNet-{depth}", "", f"Paper: {PAPER}.", "", "Setup:",
             *setup_lines(s, split, curves, [
                 f"- norms: for every 3x3 conv, the norm of the gradient of the mean "
                 f"cross-entropy with respect to its kernel, averaged over {PROBE_BATCHES} "
                 f"fixed training batches (BN in training mode), at initialization and "
                 f"after training",
                 f"- terms: vanishing = median layer norm below {VANISHING:g}; the "
                 f"input/output end ratio = mean norm of the {END_LAYERS} layers nearest "
                 f"the input over the {END_LAYERS} nearest the output; beyond {SPREAD:g}x "
                 f"(or below 1/{SPREAD:g}) the norms explode (or vanish) toward the "
                 f"input; else healthy"]), "",
             f"Command: `{command_line(s, '--depth', depth)}`", "",
             markdown_table(*gradients_table(curves, norms)), "", "## Observed", "",
             *[line.replace(" FAILED: it never learned", " never learned").rstrip(".")
               + ": here a finding about its gradients, not a failed measurement."
               if "never learned" in line else line for line in failures]]
    for c in curves:
        lines.append(f"- {c.label}: at initialization {v[(c.key, 'init')]} (median "
                     f"{statistics.median(norms[(c.key, 'init')]):.3g}, ends "
                     f"{end_ratio(norms[(c.key, 'init')]):.3g}x); after {s.steps:,} steps "
                     f"{v[(c.key, 'trained')]} (median "
                     f"{statistics.median(norms[(c.key, 'trained')]):.3g}, ends "
                     f"{end_ratio(norms[(c.key, 'trained')]):.3g}x).")
    claims = [
        (v[(nobn.key, "init")] != "healthy",
         f"without BN (the same kernels, He-normal initialization) plain-{depth}'s "
         f"gradients are not healthy at initialization"),
        (v[(bn.key, "trained")] == "healthy",
         f"with BN, plain-{depth}'s gradients are healthy after training (the paper "
         f"verifies this)"),
        (v[(res.key, "init")] == "healthy" and v[(res.key, "trained")] == "healthy",
         f"with shortcuts, ResNet-{depth}'s gradients are healthy at initialization and "
         f"after training"),
    ]
    lines.append("- After training a small median also follows from a small loss (a network "
                 "that fits its training set has little left to learn): the final training "
                 "loss is in the table; the input/output end ratio shows whether the norms "
                 "stay even across depth.")
    if judge:
        for held, text in claims:
            lines.append(f"- {'As the papers say' if held else 'NOT as the papers say'}: "
                         f"{text}{'' if held else ' (it did not hold here)'}.")
    shown = all(held for held, _ in claims)
    lines += ["", conclusion(s, shown, "the paper trains 64k iterations of 128 CIFAR-10 "
                                       "images", [f for f in failures if "diverged" in f])]
    return "\n".join(lines) + "\n"
