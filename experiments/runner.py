"""The job behind ``python -m experiments NAME``: the parsed flags into
:class:`~experiments.common.Settings`, the data loaded, the experiment run and its table
and observations printed (:func:`run`; :mod:`experiments.command` parses the flags and
calls it once TensorFlow is loaded).

Each experiment module (``experiments.degradation`` etc.) gives its ``NAME``,
``DEFAULTS``, ``experiment_args(args, settings)`` (its own flags into keyword arguments)
and ``run(settings, split, log=..., **kwargs)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os

from experiments.common import Settings, text_table
from experiments.defaults import DEFAULT_OUT, DEPTH_FLAGS, DIGITS_SIDE, LOG_POINTS, PROG, QUICK
from tfresnet import check_cifar_depth, data
from tfresnet.models.variant import check_input_memory
from tfresnet.utils import cli, fileio


def module(name: str):
    """The module of experiment ``name``."""
    return importlib.import_module(f"experiments.{name}")


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


def run(args):
    """Runs the experiment the parsed flags name (TensorFlow loaded): the checks that need
    the registry or the data, then the run, its table and observations printed; returns
    the experiment's Result."""
    _check_depths(args)
    s = settings_from_args(args)
    m = module(s.name)
    kwargs = m.experiment_args(args, s)
    if m.CURVES and s.image_size < DIGITS_SIDE:
        raise cli.UsageError(f"--image-size must be at least {DIGITS_SIDE}. "
                             f"Received: {s.image_size}")
    fileio.check_writable_dir(s.out)  # checked now, created when the first file is written
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


def _check_depths(args):
    """The 6n+2 rule of every CIFAR depth flag (its bound was checked while parsing)."""
    for name in DEPTH_FLAGS:
        value = getattr(args, name, None)
        for depth in ([] if value is None else [value] if isinstance(value, int) else value):
            try:
                check_cifar_depth(depth)
            except ValueError as err:
                raise cli.UsageError(f"argument --{name}: {err}") from None


def _printer():
    def log(text):
        print(text, flush=True)
    return log
