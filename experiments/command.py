"""``python -m experiments NAME [flags]``: the command line over the experiment modules.

Each experiment module (``experiments.degradation`` etc.) gives its ``NAME``,
``DEFAULTS``, ``add_parser(sub, parents)``, ``experiment_args(args, settings)``
(validates its own flags into keyword arguments) and ``run(settings, split, log=...,
**kwargs)``; this module parses and validates the shared flags, loads the data, runs
the experiment and prints its table and observations.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os

from tfresnet import data
from tfresnet.utils import cli
from tfresnet.models.variant import check_input_memory
from experiments import EXPERIMENTS
from experiments.common import (DEFAULT_OUT, DIGITS_SIDE, LOG_POINTS, PROG, QUICK, Settings,
                                text_table)


def module(name: str):
    """The module of experiment ``name``."""
    return importlib.import_module(f"experiments.{name}")


def _parser():
    common = cli.ArgumentParser(add_help=False)
    common.add_argument("--out", type=cli.non_empty, help="output folder (default reports/experiments/NAME)")
    length = common.add_mutually_exclusive_group()
    length.add_argument("--steps", type=cli.positive_int(10_000_000), help="training steps of every run (default: "
                        "the experiment's, see the description above)")
    length.add_argument("--epochs", type=cli.float_range(0, 100_000, low_open=True),
                        help="training length in passes over the training set instead")
    common.add_argument("--seed", type=cli.seed, default=0, help="seed of weights, data split, "
                        "shuffling and augmentation (default 0)")
    common.add_argument("--dataset", type=cli.non_empty, default="digits", help="'digits' (bundled, default), "
                        "'tfds:<name>' (e.g. tfds:cifar10, prepared offline) or an image "
                        "folder with one sub-folder per class")
    common.add_argument("--batch-size", type=cli.positive_int(), help="images per step (default: the "
                        "experiment's, see the description above)")
    common.add_argument("--quick", action="store_true", help=f"a smoke test: "
                        f"{QUICK['steps']} steps of {QUICK['batch_size']} images, for tests; "
                        f"its summary draws no conclusion")
    curves = cli.ArgumentParser(add_help=False)
    curves.add_argument("--image-size", type=cli.positive_int(), help=f"input side (default: the "
                        f"experiment's for digits, {DIGITS_SIDE} unless said, their own size; "
                        f"else 32, the CIFAR size)")
    curves.add_argument("--log-every", type=cli.positive_int(), help=f"steps between two logged points "
                        f"(default: steps / {LOG_POINTS})")
    curves.add_argument("--lr", type=cli.float_range(0, 100, low_open=True), help="learning rate at that batch size")
    curves.add_argument("--augment", choices=data.AUGMENTATIONS,
                        help="training augmentation (default: 'none' on digits, where the "
                        "paper's 4-pixel pad-and-crop would shift an 8x8 digit by half its "
                        "size; 'cifar', the paper's, on other data)")
    curves.add_argument("--data-dir", type=cli.non_empty, help="tensorflow-datasets folder with prepared data")
    curves.add_argument("--manual-dir", type=cli.non_empty, help="folder with a tfds data set's original archives")
    p = cli.ArgumentParser(
        prog=PROG, description="Reproduce the papers' experiments on a CPU; each writes a "
        "PNG figure, the raw numbers (CSV) and summary.md into --out.")
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name in EXPERIMENTS:
        m = module(name)
        m.add_parser(sub, [common, curves] if m.CURVES else [common])
    return p


def settings_from_args(args) -> Settings:
    """Validates the common flags into :class:`Settings` (nothing is written yet)."""
    name = args.experiment
    m = module(name)
    defaults = m.DEFAULTS
    digits = args.dataset == "digits"
    side = args.image_size or (getattr(m, "DIGITS_SIDE", DIGITS_SIDE) if digits
                               else getattr(m, "OTHER_SIDE", 32))
    batch = args.batch_size or (QUICK["batch_size"] if args.quick else defaults["batch_size"])
    steps = args.steps or (QUICK["steps"] if args.quick else defaults.get("steps"))
    every = getattr(args, "log_every", None) or (QUICK["log_every"] if args.quick else 0)
    lr = getattr(args, "lr", None)
    if lr is None and "lr" in defaults:
        lr = defaults["lr"] * batch / defaults["batch_size"]
    augment = getattr(args, "augment", None)
    if m.CURVES:
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
    epochs = epochs or (None if s.steps else module(s.name).DEFAULTS.get("epochs"))
    steps = s.steps
    if epochs is not None:
        steps = max(1, math.ceil(epochs * split.num_train / s.batch_size))
    # An experiment without curves logs none: one "window" is the whole run.
    every = s.log_every or (max(1, steps // LOG_POINTS) if module(s.name).CURVES else steps)
    if every > steps:
        raise cli.UsageError(f"--log-every ({every}) is larger than the {steps} steps")
    return dataclasses.replace(s, steps=math.ceil(steps / every) * every, log_every=every)


def main(argv=None):
    """``python -m experiments NAME [flags]``; returns the experiment's Result."""
    args = _parser().parse_args(argv)
    s = settings_from_args(args)
    m = module(s.name)
    kwargs = m.experiment_args(args, s)
    if m.CURVES and s.image_size < DIGITS_SIDE:
        raise cli.UsageError(f"--image-size must be at least {DIGITS_SIDE}. "
                             f"Received: {s.image_size}")
    cli.check_writable_dir(s.out)  # checked now, created when the first file is written
    check_input_memory(max(kwargs.get("resolutions", (s.image_size,))), s.batch_size)
    side = min(kwargs.get("resolutions", (s.image_size,)))
    split = data.load(s.dataset, image_size=side, data_dir=s.data_dir,
                      manual_dir=s.manual_dir, seed=s.seed)
    s = finish_settings(s, split, args.epochs)
    what = (f"lr {s.lr:g}, augment {s.augment!r}, " if s.lr is not None else "")
    print(f"{PROG} {s.name}: {split.name}, {s.steps} steps of {s.batch_size} images, "
          f"{what}seed {s.seed} -> {s.out}", flush=True)
    result = m.run(s, split, log=_printer(), **kwargs)
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
