"""Training any registry model under ``tf.distribute`` with the papers' recipes.

``fit(...)`` is what the tests call; ``python -m tfresnet.train`` is a thin CLI over it.

Strategies (:mod:`tfresnet.training.strategy`): ``"mirrored"`` (default; every local GPU, else
the CPU, or every logical CPU device configured), ``"multiworker"``
(MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``), ``"one"`` (one device)
and ``"default"`` (no distribution). ``--batch-size`` is per replica; the global batch
is ``batch_size x replicas`` and the recipe's learning rate is scaled with it
(:mod:`tfresnet.training.recipes`). The model is built inside ``strategy.scope()`` and
``model.fit`` distributes the tf.data pipeline; under multi-worker the data is sharded
by element (``AutoShardPolicy.DATA``), so no file-level sharding is needed.

The run directory (config.json, labels.txt, history.csv, best.keras, model.keras,
logs/, backup/) and how an interrupted run resumes: :mod:`tfresnet.training.rundir`.

This module is the front door: :func:`fit`, the CLI, and the names of the modules it
is made of, so ``tfresnet.train.X`` keeps working:

* :mod:`tfresnet.training.strategy`: the tf.distribute strategy;
* :mod:`tfresnet.training.optim`: the trainable copy, schedule, optimizer, compile;
* :mod:`tfresnet.training.rundir`: the run directory, written, checked, resumed;
* :mod:`tfresnet.training.fitting`: one run (:func:`tfresnet.training.fitting.fit_run`) and its health;
* :mod:`tfresnet.training.transfer_fit`: the two phases of transfer learning.
"""

from __future__ import annotations

import math
import os
import sys

from tfresnet.utils import cli
from tfresnet.data import pipelines
from tfresnet.training import fitting
from tfresnet.training import phases
from tfresnet.training import recipes
from tfresnet.models import registry
from tfresnet.training import transfer_fit
from tfresnet.training.config import FitConfig
from tfresnet.training.fitting import FitResult
from tfresnet.training.rundir import default_run_dir, has_backup
from tfresnet.training.strategy import DEFAULT_WORKER_TIMEOUT, STRATEGIES, make_strategy
from tfresnet.training.phases import PHASE_DIRS
from tfresnet.training.transfer_fit import transfer_summary

PROG = "python -m tfresnet.train"
MAX_EPOCHS = 100_000        # bounds on --epochs/--patience and --steps-per-epoch, far above
MAX_STEPS = 10_000_000      # any real run, so that a typo is refused instead of run
MAX_LR = 100.0


__all__ = ["fit", "main", "build_parser", "summary_table", "PROG", "MAX_EPOCHS", "MAX_STEPS", "MAX_LR"]


def fit(model="resnet20", config: FitConfig | None = None, **overrides) -> FitResult:
    """Trains ``model`` under a tf.distribute strategy with ``config`` and ``overrides``.

    ``fit("resnet20", epochs=3, batch_size=8)`` is ``fit("resnet20",
    FitConfig(epochs=3, batch_size=8))``: every setting and its default is a field of
    :class:`tfresnet.training.config.FitConfig` (the transfer-learning ones of its
    :class:`~tfresnet.training.config.TransferConfig`: ``weights=``, ``freeze_epochs=``,
    ``unfreeze_from=``, ``fine_tune_lr=``, ``fine_tune_batchnorm=``). With ``weights``
    the run trains in two phases, in ``out_dir/1_head`` and ``out_dir/2_fine_tune``
    (:mod:`tfresnet.training.transfer_fit`); ``model`` must then be a registry name.

    Everything is checked (settings, strategy, data, model, output folder) before
    anything is written. With ``out_dir``, a run directory is written (see the module
    docstring) and an interrupted run in it is resumed at its next epoch.

    Args:
      model: a registry name (``"resnet20"``) or a functional/Sequential keras.Model.
      config: the settings; None: ``FitConfig()``.
      **overrides: fields of FitConfig or TransferConfig replacing ``config``'s.

    Returns:
      A FitResult.

    Raises:
      TypeError: an override that is no setting (the message lists them).
      ValueError: one line naming the bad input.
    """
    config = FitConfig.create(config, **overrides)
    if config.transfer.weights is not None:
        return transfer_fit.fit_transfer(model, config)
    return fitting.fit_run(model, config)


# ----------------------------------------------------------------------------- CLI


def summary_table(result: FitResult) -> str:
    """The end-of-run summary as aligned ``name  value`` lines."""
    c = result.config
    resumed = f" (resumed after epoch {result.initial_epoch})" if result.initial_epoch else ""
    final = len(result.history.get("epoch", [])) or c["epochs"]
    kept = (f"epoch {result.kept_epoch} of {final}, the best validation accuracy"
            if result.kept_epoch else "the final epoch")
    if result.kept_epoch and result.kept_epoch != final:
        last = (result.history.get("val_accuracy") or [None])[-1]
        kept += f"; the last epoch had {last:.4f}" if last is not None else ""
    rows = [
        ("model", f"{c['model']} ({result.model.count_params():,} parameters)"),
        ("data", f"{c['dataset']}: {c['num_train']:,} train / {c['num_val']:,} validation "
                 f"images, {c['image_size'][0]}x{c['image_size'][1]}, {c['classes']} classes"),
        *([("skipped", f"{len(c['skipped_images'])} undecodable image(s) left out "
                       f"(listed in config.json)")] if "skipped_images" in c else []),
        ("strategy", f"{c['strategy']}, {c['replicas']} replica(s), global batch "
                     f"{c['global_batch']}" + (f" ({c['batch_reason']})" if
                                               c.get("batch_reason", "").startswith("small")
                                               else "")),
        ("recipe", f"{c['recipe']}: {c['hyperparameters']['optimizer']}, "
                   f"{c['hyperparameters']['schedule']} schedule, weight decay "
                   f"{c['hyperparameters']['weight_decay']:g} ({c.get('recipe_reason', '')})"),
        *([] if "phases" in c else [("lr", f"{c['lr']:g} ({c.get('lr_source') or 'given'})")]),
        ("epochs", f"{final} x {c['steps_per_epoch']} steps" + (
            f" (of at most {c['epochs']}: {c['stopping']['why']})" if c.get("stopping") else
            f" (phases below)" if "phases" in c else "") + resumed),
        ("val accuracy", f"{result.val_accuracy:.4f} (the saved model.keras: {kept})"),
        ("images/s", f"{result.images_per_second:,.0f} (training)"
                     if math.isfinite(result.images_per_second)
                     else "n/a (no epoch trained in this session)"),
        ("wall time", f"{result.wall_time:.1f} s"),
        ("run dir", result.run_dir or "(none)"),
    ]
    warnings = (c.get("result") or {}).get("warnings")
    if warnings is None:
        warnings = fitting.health_warnings(result)
    rows += [("WARNING", w) for w in warnings]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def build_parser() -> cli.ArgumentParser:
    """The ``python -m tfresnet.train`` flags."""
    p = cli.ArgumentParser(
        prog=PROG, description="Train a registry model under tf.distribute with its paper's "
        "recipe. Rerunning the same command after an interruption resumes at the next epoch.")
    p.add_argument("--model", type=cli.non_empty, default="resnet20", help="registry name (default resnet20): "
                   + ", ".join(registry.list_models()))
    p.add_argument("--alpha", type=cli.float_range(), help="MobileNet width multiplier (e.g. 0.75)")
    p.add_argument("--res", type=cli.int_range(), help="MobileNet input side, a multiple of 32 (e.g. 160)")
    p.add_argument("--dataset", type=cli.non_empty, default="digits", help="'digits' (bundled, default), "
                   "'tfds:<name>[/config][:version]' or an image folder (one sub-folder a class)")
    p.add_argument("--data-dir", type=cli.non_empty, help="tensorflow-datasets folder with prepared data")
    p.add_argument("--manual-dir", type=cli.non_empty, help="folder with a tfds data set's original archives")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: leave out the files TensorFlow cannot decode "
                   "(truncated, corrupt), each named in a warning and listed in "
                   "config.json, instead of stopping with an error that names the first")
    p.add_argument("--val-fraction", type=cli.float_range(0, 1, low_open=True, high_open=True), default=0.2,
                   help="share of each class held out for validation (digits, folders)")
    p.add_argument("--image-size", type=cli.int_range(1), help="input side (default: the model's)")
    p.add_argument("--epochs", type=cli.positive_int(MAX_EPOCHS), help="epochs (default: the recipe's length)")
    p.add_argument("--steps-per-epoch", type=cli.positive_int(MAX_STEPS),
                   help="steps per epoch, the data repeating (default: one pass)")
    p.add_argument("--batch-size", type=cli.positive_int(),
                   help="images per replica per step (default: recipe batch / replicas)")
    p.add_argument("--recipe", choices=sorted(recipes.RECIPES),
                   help="training recipe (default: the model's)")
    p.add_argument("--lr", type=cli.float_range(0, MAX_LR, low_open=True), help="learning rate at the global batch, used as "
                   "given (default: the recipe's, scaled with the global batch); with "
                   "--weights: the classifier phase's (default 0.01, Adam)")
    p.add_argument("--optimizer", choices=recipes.OPTIMIZERS, help="override the recipe's")
    p.add_argument("--momentum", type=cli.float_range(0, 1, high_open=True), help="SGD/RMSprop momentum")
    p.add_argument("--weight-decay", type=cli.float_range(0, 1), help="L2 decay on Conv2D/Dense kernels")
    p.add_argument("--depthwise-weight-decay", type=cli.float_range(0, 1),
                   help="L2 decay on depthwise kernels")
    p.add_argument("--schedule", choices=recipes.SCHEDULES, help="learning-rate schedule")
    p.add_argument("--lr-boundaries", type=_fractions,
                   help="'steps' schedule: decay points as fractions of all steps, e.g. 0.5,0.75")
    p.add_argument("--lr-factor", type=cli.float_range(0, 1, low_open=True), help="LR multiplier at each decay (0.1)")
    p.add_argument("--patience", type=cli.positive_int(MAX_EPOCHS), help="'plateau' schedule: epochs without "
                   "val_loss improvement before a decay")
    p.add_argument("--epoch-decay", type=cli.float_range(0, 1, low_open=True), help="'exponential' schedule: LR x this "
                   "each epoch")
    p.add_argument("--warmup-fraction", type=cli.float_range(0, 1, high_open=True), help="warm-up share of all steps "
                   "(deep CIFAR ResNets; 0 turns it off)")
    p.add_argument("--augment", choices=pipelines.AUGMENTATIONS,
                   help="augmentation (default: the model family's)")
    p.add_argument("--strategy", choices=STRATEGIES, default="mirrored",
                   help="mirrored (all local GPUs, else the CPU; default), multiworker "
                   "(cluster from TF_CONFIG), one (one device), default (no distribution)")
    p.add_argument("--worker-timeout", type=cli.float_range(0, 86_400, low_open=True),
                   help=f"multiworker: seconds to wait for the other workers of TF_CONFIG's "
                   f"cluster before giving up (default {DEFAULT_WORKER_TIMEOUT})")
    p.add_argument("--sync-bn", action="store_true",
                   help="BatchNorm statistics over the global batch, not per replica")
    p.add_argument("--mixed-precision", action="store_true",
                   help="float16 (GPU) / bfloat16 (CPU) compute, float32 variables")
    p.add_argument("--jit-compile", action="store_true", help="compile the step with XLA")
    p.add_argument("--weights", help="start from pretrained weights: 'imagenet' (the Keras "
                   "cache, never downloaded), a keras.applications .h5 file, or a "
                   "tfresnet.train run directory / .keras file; a new classifier is built "
                   "for the data's classes (see tfresnet.training.transfer)")
    p.add_argument("--freeze-epochs", type=cli.int_range(0, MAX_EPOCHS),
                   help=phases.FLAG_HELP["freeze_epochs"])
    p.add_argument("--unfreeze-from", help="with --weights: fine-tune from this stage "
                   "(e.g. conv4) or layer name on after the frozen epochs (default all)")
    p.add_argument("--fine-tune-lr", type=cli.float_range(0, MAX_LR, low_open=True),
                   help=phases.FLAG_HELP["fine_tune_lr"])
    p.add_argument("--fine-tune-batchnorm", action="store_const", const=True,
                   help=phases.FLAG_HELP["fine_tune_batchnorm"])
    p.add_argument("--seed", type=cli.seed, default=0, help="seed of everything random (0)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (slower on GPU)")
    p.add_argument("--out", type=cli.non_empty, help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished or interrupted run in --out")
    return p


def _fractions(text):
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, e.g. 0.5,0.75. "
                         f"Received: {text!r}") from None


def main(argv=None):
    """``python -m tfresnet.train``: trains, prints progress and a summary table."""
    args = build_parser().parse_args(argv)
    model_kwargs = {k: getattr(args, k) for k in ("alpha", "res") if getattr(args, k) is not None}
    overrides = {"optimizer": args.optimizer, "depthwise_weight_decay":
                 args.depthwise_weight_decay, "schedule": args.schedule,
                 "boundaries": args.lr_boundaries, "decay_factor": args.lr_factor,
                 "patience": args.patience, "epoch_decay": args.epoch_decay,
                 "warmup_fraction": args.warmup_fraction}
    out = args.out or default_run_dir(args.model, args.dataset)
    strategy = args.strategy
    if args.worker_timeout is not None and strategy != "multiworker":
        raise cli.UsageError(f"--worker-timeout applies to --strategy multiworker. "
                             f"Received: --worker-timeout={args.worker_timeout:g}")
    if strategy == "multiworker":  # before any other TensorFlow op (a TensorFlow rule)
        strategy = make_strategy(strategy, worker_timeout=args.worker_timeout
                                 or DEFAULT_WORKER_TIMEOUT)
    try:
        result = _fit_from_args(args, out, model_kwargs, overrides, strategy)
    except KeyboardInterrupt:  # the phases of a transfer run have their own backup/
        if any(has_backup(os.path.join(out, sub)) for sub in ("", *PHASE_DIRS)):
            raise cli.Interrupted(f"run the same command again to resume {out!r} at its "
                                  f"next epoch") from None
        raise
    print(summary_table(result))
    if args.weights is not None:
        print(transfer_summary(result))
    return result


def _fit_from_args(args, out, model_kwargs, overrides, strategy):
    """The flags onto a FitConfig: each flag named as a setting is that setting; the
    others are mapped here."""
    given = {k: v for k, v in vars(args).items() if k in FitConfig.names()}
    config = FitConfig.create(**{
        **given, "strategy": strategy, "out_dir": out, "model_kwargs": model_kwargs,
        "sync_batchnorm": args.sync_bn, "verbose": 1 if sys.stdout.isatty() else 2,
        "recipe_overrides": {k: v for k, v in overrides.items() if v is not None}})
    return fit(args.model, config)
