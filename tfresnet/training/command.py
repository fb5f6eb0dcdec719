"""``python -m tfresnet.train``: its flags, then :func:`main`, which trains.

The top of this module imports no TensorFlow: :func:`parse` builds the parser, parses
and checks everything that needs no model or data, so ``--help`` and a bad flag answer
before TensorFlow loads. :func:`main` parses, then imports TensorFlow quietly and the
job (:func:`tfresnet.training.api.fit`), trains and prints the summary. The library
raises in its settings' words (``Received: batch_size=8``); :func:`flag_words` says
them in this command's flags, the one place that does (``Received: --batch-size=8``).
"""

from __future__ import annotations

import argparse
import os
import sys

from tfresnet.training import phases, recipes
from tfresnet.utils import cli, flags, quiet
from tfresnet.utils.flags import (
    DEFAULT_WORKER_TIMEOUT,
    MAX_EPOCHS,
    MAX_STEPS_PER_EXECUTION,
    MAX_WORKER_TIMEOUT,
)

PROG = "python -m tfresnet.train"


def build_parser() -> cli.ArgumentParser:
    """The ``python -m tfresnet.train`` flags."""
    p = cli.ArgumentParser(
        prog=PROG, description="Train a registry model under tf.distribute with its paper's "
        "recipe. Rerunning the same command after an interruption resumes at the next epoch.")
    flags.add_model(p, default="resnet20")
    flags.add_variant(p)
    flags.add_dataset(p)
    flags.add_skip_bad_images(p)
    p.add_argument("--val-fraction", type=cli.float_range(0, 1, low_open=True, high_open=True),
                   default=flags.DEFAULT_VAL_FRACTION,
                   help="share of each class held out for validation (digits, folders)")
    flags.add_image_size(p)
    flags.add_epochs(p, help="epochs (default: the recipe's length)")
    flags.add_steps_per_epoch(p, help="steps per epoch, the data repeating (default: one pass)")
    flags.add_batch_size(p, help="images per replica per step (default: recipe batch / "
                         "replicas)")
    p.add_argument("--recipe", choices=sorted(recipes.RECIPES),
                   help="training recipe (default: the model's)")
    flags.add_lr(p, help=f"learning rate at the global batch, used as given (default: the "
                 f"recipe's, scaled with the global batch); with --weights: the classifier "
                 f"phase's (default {phases.HEAD_LR:g}, {phases.HEAD_OPTIMIZER})")
    p.add_argument("--optimizer", choices=recipes.OPTIMIZERS, help="override the recipe's")
    p.add_argument("--momentum", type=cli.float_range(0, 1, high_open=True), help="SGD/RMSprop momentum")
    p.add_argument("--weight-decay", type=cli.float_range(0, 1), help="L2 decay on Conv2D/Dense kernels")
    p.add_argument("--depthwise-weight-decay", type=cli.float_range(0, 1),
                   help="L2 decay on depthwise kernels")
    p.add_argument("--schedule", choices=recipes.SCHEDULES, help="learning-rate schedule")
    p.add_argument("--lr-boundaries", type=_fractions,
                   help="'steps' schedule: decay points as fractions of all steps, e.g. 0.5,0.75")
    p.add_argument("--lr-factor", type=cli.float_range(0, 1, low_open=True),
                   help="LR multiplier at each decay (0.1)")
    p.add_argument("--patience", type=cli.positive_int(MAX_EPOCHS), help="'plateau' schedule: "
                   "epochs without val_loss improvement before a decay")
    p.add_argument("--epoch-decay", type=cli.float_range(0, 1, low_open=True),
                   help="'exponential' schedule: LR x this each epoch")
    p.add_argument("--warmup-fraction", type=cli.float_range(0, 1, high_open=True),
                   help="warm-up share of all steps (deep CIFAR ResNets; 0 turns it off)")
    flags.add_augment(p)
    flags.add_strategy(p)
    p.add_argument("--worker-timeout", type=cli.float_range(0, MAX_WORKER_TIMEOUT, low_open=True),
                   help=f"multiworker: seconds to wait for the other workers of TF_CONFIG's "
                   f"cluster before giving up (default {DEFAULT_WORKER_TIMEOUT})")
    p.add_argument("--sync-bn", action="store_true",
                   help="BatchNorm statistics over the global batch, not per replica")
    p.add_argument("--mixed-precision", action="store_true",
                   help="float16 (GPU) / bfloat16 (CPU) compute, float32 variables")
    p.add_argument("--jit-compile", action="store_true", help="compile the step with XLA")
    p.add_argument("--steps-per-execution", type=cli.int_range(1, MAX_STEPS_PER_EXECUTION),
                   metavar="N",
                   help=f"training steps per call of the compiled train function: the same "
                   f"results with less per-step Python work (default {flags.STEPS_PER_EXECUTION}"
                   f" on one device, the largest divisor of --steps-per-epoch up to it; 1 "
                   f"with several replicas, which Keras 3 cannot run otherwise); N must "
                   f"divide --steps-per-epoch")
    p.add_argument("--precise-bn", action=argparse.BooleanOptionalAction, default=True,
                   help=f"before each validation, recompute BatchNorm's moving statistics "
                   f"from up to {flags.PRECISE_BN_IMAGES} training images with the current "
                   f"weights (PreciseBN); --no-precise-bn keeps Keras' moving averages")
    add_transfer(p)
    flags.add_seed(p)
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (slower on GPU)")
    flags.add_out(p, help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished or interrupted run in --out")
    return p


def _fractions(text):
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, e.g. 0.5,0.75. "
                         f"Received: {text!r}") from None


def parse(argv=None):
    """The parsed flags, checked across flags; raises UsageError (argparse exits 2)."""
    args = build_parser().parse_args(argv)
    if args.worker_timeout is not None and args.strategy != "multiworker":
        raise cli.UsageError(f"--worker-timeout applies to --strategy multiworker. "
                             f"Received: --worker-timeout={args.worker_timeout:g}")
    if not flags.divides_epoch(args.steps_per_epoch, args.steps_per_execution):
        raise cli.UsageError(f"--steps-per-execution must divide --steps-per-epoch "
                             f"({args.steps_per_epoch}): Keras runs whole calls of the train "
                             f"function. Received: --steps-per-execution={args.steps_per_execution}")
    return args


def add_transfer(p):
    """``--weights`` and the transfer phases' flags, for every CLI that trains
    (``tfresnet.train``, ``export.tflite``); their rules: :mod:`tfresnet.training.phases`."""
    p.add_argument("--weights", type=cli.non_empty, help="start from pretrained weights "
                   "(transfer learning): 'imagenet' (the Keras cache, never downloaded), a "
                   "keras.applications .h5 file, or a tfresnet.train run directory / "
                   ".keras file; a new classifier is built for the data's classes")
    p.add_argument("--freeze-epochs", type=cli.int_range(0, flags.MAX_EPOCHS),
                   help=phases.FLAG_HELP["freeze_epochs"])
    p.add_argument("--unfreeze-from", type=cli.non_empty, help="with --weights: fine-tune "
                   "from this stage (e.g. conv4) or layer name on after the frozen epochs "
                   "(default all)")
    flags.add_lr(p, "--fine-tune-lr", help=phases.FLAG_HELP["fine_tune_lr"])
    p.add_argument("--fine-tune-batchnorm", action="store_const", const=True,
                   help=phases.FLAG_HELP["fine_tune_batchnorm"])


# ----------------------------------------------------------------------------- the job
def main(argv=None):
    """``python -m tfresnet.train``: the flags checked, then TensorFlow and the job loaded;
    trains, prints progress and a summary table, returns the FitResult. Bad input is a
    ValueError in the flags' words (:func:`flag_words`)."""
    args = parse(argv)
    quiet.import_tensorflow_quietly()
    from tfresnet.training.phases import PHASE_DIRS
    from tfresnet.training.rundir import default_run_dir, has_backup
    from tfresnet.training.strategy import make_strategy

    model_kwargs = {k: getattr(args, k) for k in ("alpha", "res") if getattr(args, k) is not None}
    overrides = {"optimizer": args.optimizer, "depthwise_weight_decay":
                 args.depthwise_weight_decay, "schedule": args.schedule,
                 "boundaries": args.lr_boundaries, "decay_factor": args.lr_factor,
                 "patience": args.patience, "epoch_decay": args.epoch_decay,
                 "warmup_fraction": args.warmup_fraction}
    out = args.out or default_run_dir(args.model, args.dataset)
    strategy = args.strategy
    try:
        if strategy == "multiworker":  # before any other TensorFlow op (a TensorFlow rule)
            strategy = make_strategy(strategy, worker_timeout=args.worker_timeout
                                     or DEFAULT_WORKER_TIMEOUT)
        result = _fit_from_args(args, out, model_kwargs, overrides, strategy)
    except KeyboardInterrupt:  # the phases of a transfer run have their own backup/
        if any(has_backup(os.path.join(out, sub)) for sub in ("", *PHASE_DIRS)):
            raise cli.Interrupted(f"run the same command again to resume {out!r} at its "
                                  f"next epoch") from None
        raise
    except ValueError as err:  # the one place the library's words become flags
        if cli.is_disk_full(err):
            raise
        raise cli.UsageError(flag_words(str(err), args)) from None
    _print_summary(result, args)
    return result


def _fit_from_args(args, out, model_kwargs, overrides, strategy):
    """The flags onto a FitConfig: each flag named as a setting is that setting; the
    others are mapped here."""
    from tfresnet.training import api
    from tfresnet.training.config import FitConfig

    given = {k: v for k, v in vars(args).items() if k in FitConfig.names()}
    config = FitConfig.create(**{
        **given, "strategy": strategy, "out_dir": out, "model_kwargs": model_kwargs,
        "sync_batchnorm": args.sync_bn, "verbose": 1 if sys.stdout.isatty() else 2,
        "recipe_overrides": {k: v for k, v in overrides.items() if v is not None}})
    return api.fit(args.model, config)


def _print_summary(result, args):
    """The summary table (and a transfer run's phases), its warnings in the flags' words."""
    from tfresnet.training.api import summary_table
    from tfresnet.training.transfer_fit import transfer_summary

    print(flag_words(summary_table(result), args))
    if args.weights is not None:
        print(flag_words(transfer_summary(result), args))


# Settings (FitConfig's and the recipe's fields) whose flag is not their name with dashes.
SETTING_FLAGS = {"sync_batchnorm": "--sync-bn", "out_dir": "--out",
                 "decay_factor": "--lr-factor", "boundaries": "--lr-boundaries"}


def setting_flags() -> dict:
    """``{setting name: (its flag, the flag's argparse dest)}`` for every setting this
    command has a flag for."""
    actions = [a for a in build_parser()._actions if a.option_strings]
    named = {a.dest: (max(a.option_strings, key=len), a.dest) for a in actions}
    dests = {flag: dest for flag, dest in named.values()}
    return {**named, **{name: (flag, dests[flag]) for name, flag in SETTING_FLAGS.items()}}


def flag_words(text: str, args) -> str:
    """A library error's or warning's text in this command's flags (``args``: the parsed
    flags; :func:`tfresnet.utils.cli.flag_words` with this command's table): after
    "Received:" only the values its flags gave become flags, so a key of a run's
    config.json or the recipe's batch stays as written."""
    table = setting_flags()
    return cli.flag_words(text, {name: flag for name, (flag, _) in table.items()},
                          {name: getattr(args, dest, None) for name, (_, dest) in table.items()})
