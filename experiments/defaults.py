"""The ``python -m experiments`` command's name and every experiment's defaults; no
TensorFlow, so the parser (:mod:`experiments.command`) shows them in its help before
TensorFlow loads, and each experiment module reads its ``DEFAULTS`` and ``CURVES`` here.
"""

from __future__ import annotations

import os

from experiments import EXPERIMENTS

PROG = "python -m experiments"
DEFAULT_OUT = os.path.join("reports", "experiments")
DIGITS_SIDE = 8  # the bundled digits are 8x8: no upsampling by default
LOG_POINTS = 40  # default number of points on each curve
QUICK = {"steps": 4, "log_every": 2, "batch_size": 16}
MAX_CIFAR_DEPTH = 1202  # the ResNet paper's deepest CIFAR network (Sec. 4.2, ResNet-1202)

# Each experiment's training defaults (steps or epochs, batch, learning rate).
DEFAULTS = {
    "degradation": {"steps": 2000, "batch_size": 128, "lr": 0.1},
    "batchnorm": {"steps": 600, "batch_size": 128, "lr": 0.01},
    "multipliers": {"epochs": 40, "batch_size": 96},
    "shortcuts": {"steps": 1000, "batch_size": 128, "lr": 0.1},
    "gradients": {"steps": 400, "batch_size": 128, "lr": 0.01},
    "responses": {"steps": 600, "batch_size": 128, "lr": 0.1},
    "separable": {"steps": 500, "batch_size": 64, "lr": 0.05},
}
# The multipliers grid besides its training: the largest side (digits are 8x8: every
# MobileNet resolution only upsamples them, and 40 epochs at 128/96 would take hours on
# a CPU, so the digits grid is 64/32; other data: the paper's 224), the timed runs of a
# latency, and --quick's smaller grid.
MULTIPLIERS_SIDE = {"digits": 64, "other": 224}
LATENCY_RUNS = {"default": 50, "quick": 5}
QUICK_ALPHAS, QUICK_RESOLUTIONS = (0.5, 0.25), (32,)
# The experiments that log training curves (and so take the curve flags).
CURVES = {name: name != "multipliers" for name in EXPERIMENTS}
BATCHNORM_MULTIPLIERS = (5.0, 30.0)  # the BN paper's BN-x5 and BN-x30
GRADIENTS_DEPTH = 56  # the gradients experiment's default depth
SEPARABLE_ALPHA = 0.5  # the separable experiment's default width (its full-conv twin: 29M weights at 1)
# The flags that hold CIFAR ResNet depths: bounded by MAX_CIFAR_DEPTH while parsing, their
# 6n+2 rule checked by experiments.runner once TensorFlow is loaded.
DEPTH_FLAGS = ("depth", "depths")
