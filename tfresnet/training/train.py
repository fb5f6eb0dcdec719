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
from tfresnet.training import fitting
from tfresnet.training import transfer_fit
from tfresnet.training.fitting import FitResult
from tfresnet.training.rundir import default_run_dir, has_backup
from tfresnet.training.flags import PROG, build_parser, parse  # noqa: F401  (the CLI's flags)
from tfresnet.training.strategy import make_strategy
from tfresnet.utils.flags import DEFAULT_WORKER_TIMEOUT, MAX_EPOCHS, MAX_LR, MAX_STEPS, STRATEGIES  # noqa: F401
from tfresnet.training.phases import PHASE_DIRS
from tfresnet.training.transfer_fit import transfer_summary

TRANSFER_ARGS = ("weights", "freeze_epochs", "unfreeze_from", "fine_tune_lr",
                 "fine_tune_batchnorm")


__all__ = ["fit", "main", "build_parser", "summary_table", "PROG", "MAX_EPOCHS", "MAX_STEPS", "MAX_LR"]


def fit(model="resnet20", *, dataset="digits", epochs=None, batch_size=None, lr=None,
        recipe=None, strategy="mirrored", out_dir=None, seed=0, steps_per_epoch=None,
        image_size=None, model_kwargs=None, jit_compile=False, mixed_precision=False,
        data_dir=None, manual_dir=None, verbose=1, weight_decay=None, momentum=None,
        val_fraction=0.2, augment=None, sync_batchnorm=False, deterministic=False,
        overwrite=False, callbacks=(), recipe_overrides=None,
        skip_bad_images=False, weights=None, freeze_epochs=None, unfreeze_from=None,
        fine_tune_lr=None, fine_tune_batchnorm=None, cache_features=True) -> FitResult:
    """Trains ``model`` on ``dataset`` under a tf.distribute strategy.

    Everything is checked (arguments, strategy, data, model, output folder) before
    anything is written. With ``out_dir``, a run directory is written (see the module
    docstring) and an interrupted run in it is resumed at its next epoch.

    Args:
      model: a registry name (``"resnet20"``) or a functional/Sequential keras.Model.
      dataset: a :func:`tfresnet.data.load` spec ("digits", "tfds:cifar10", a folder)
        or a loaded :class:`tfresnet.data.DataSplit`.
      epochs: epochs to train; None: the recipe's length.
      batch_size: images per replica per step; None: the recipe's batch / replicas.
      lr: the learning rate at the global batch, used as given; None: the recipe's
        rate scaled by global batch / recipe batch. With ``weights``: the head phase's
        rate (default ``tfresnet.training.phases.HEAD_LR``, Adam).
      recipe: a name in ``tfresnet.training.recipes.RECIPES`` or a Recipe; None: the model's.
      strategy: one of ``STRATEGIES`` or a tf.distribute.Strategy.
      out_dir: the run directory; None writes nothing.
      seed: seeds Keras, NumPy, Python and the data split, shuffle and augmentation.
      steps_per_epoch: steps per epoch (the data repeats); None: one pass over the data.
      image_size: int or (height, width); None: the model's input size.
      model_kwargs: extra builder arguments (e.g. ``{"alpha": 0.5}``).
      jit_compile: compile the train step with XLA.
      mixed_precision: float16 (GPU) / bfloat16 (CPU) compute with float32 variables.
      data_dir, manual_dir, val_fraction: passed to :func:`tfresnet.data.load`.
      verbose: 0 silent, 1 progress bar, 2 one line per epoch.
      weight_decay, momentum: override the recipe's values.
      augment: one of ``tfresnet.data.AUGMENTATIONS``; None: the model family's.
      sync_batchnorm: BatchNormalization statistics over the global batch.
      deterministic: ``tf.config.experimental.enable_op_determinism()`` (process-wide).
      overwrite: replace a run already in ``out_dir`` instead of refusing/resuming.
      callbacks: extra keras callbacks, run after the package's own.
      recipe_overrides: other Recipe fields to change, e.g. ``{"patience": 2}``.
      skip_bad_images: an image folder's undecodable files are left out (a warning
        names each; config.json's ``skipped_images`` lists them) instead of failing.
      weights: start from pretrained weights (transfer learning, see
        :mod:`tfresnet.training.transfer`): ``"imagenet"``, a keras.applications ``.h5`` file or
        a tfresnet run / ``.keras`` file; ``model`` must then be a registry name. The
        run trains in two phases, in ``out_dir/1_head`` and ``out_dir/2_fine_tune``.
      freeze_epochs: with ``weights``: the bound on the phase that trains the new
        classifier alone, the backbone frozen, until its validation loss stops
        improving; the other ``epochs - freeze_epochs`` fine-tune (default: at most
        ``tfresnet.training.phases.HEAD_MAX_EPOCHS`` on cached features, else half of
        ``epochs``; the second half of ``epochs``, which defaults to
        ``tfresnet.training.phases.DEFAULT_EPOCHS``, fine-tunes).
      unfreeze_from: with ``weights``: the stage or layer fine-tuning starts at (default all).
      fine_tune_lr: with ``weights``: the fine-tuning rate (default a tenth of the
        recipe's rate at the run's batch).
      fine_tune_batchnorm: with ``weights``: BatchNormalization trains while fine-tuning
        (default: it stays frozen in inference mode, with the loaded statistics).
      cache_features: when only the ``predictions`` classifier trains and nothing is
        augmented (the frozen phase of transfer learning), run the frozen backbone once
        and train the classifier on its stored features (see :func:`feature_cache_reason`);
        False trains through the whole network every step.

    Returns:
      A FitResult.

    Raises:
      ValueError: one line naming the bad input.
    """
    options = dict(locals())  # every argument by name: the defaults live in this signature
    model = options.pop("model")
    transfer_options = {k: options.pop(k) for k in TRANSFER_ARGS}
    if weights is not None:
        return transfer_fit.fit_transfer(model, **transfer_options, **options)
    given = [k for k, v in transfer_options.items() if v is not None]
    if given:
        raise ValueError(f"--{given[0].replace('_', '-')} applies to transfer learning: add "
                         f"--weights (imagenet, a .h5 file or a run). "
                         f"Received: {given[0]}={transfer_options[given[0]]!r}")
    return fitting.fit_run(model, **options)


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


def main(argv=None):
    """``python -m tfresnet.train``: trains, prints progress and a summary table."""
    args = parse(argv)
    model_kwargs = {k: getattr(args, k) for k in ("alpha", "res") if getattr(args, k) is not None}
    overrides = {"optimizer": args.optimizer, "depthwise_weight_decay":
                 args.depthwise_weight_decay, "schedule": args.schedule,
                 "boundaries": args.lr_boundaries, "decay_factor": args.lr_factor,
                 "patience": args.patience, "epoch_decay": args.epoch_decay,
                 "warmup_fraction": args.warmup_fraction}
    out = args.out or default_run_dir(args.model, args.dataset)
    strategy = args.strategy
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
    return fit(
        args.model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, recipe=args.recipe, strategy=strategy, out_dir=out, seed=args.seed,
        steps_per_epoch=args.steps_per_epoch, image_size=args.image_size,
        model_kwargs=model_kwargs, jit_compile=args.jit_compile,
        mixed_precision=args.mixed_precision, data_dir=args.data_dir,
        manual_dir=args.manual_dir, verbose=1 if sys.stdout.isatty() else 2,
        weight_decay=args.weight_decay, momentum=args.momentum,
        val_fraction=args.val_fraction, augment=args.augment, sync_batchnorm=args.sync_bn,
        deterministic=args.deterministic, overwrite=args.overwrite,
        skip_bad_images=args.skip_bad_images,
        recipe_overrides={k: v for k, v in overrides.items() if v is not None},
        weights=args.weights, freeze_epochs=args.freeze_epochs,
        unfreeze_from=args.unfreeze_from, fine_tune_lr=args.fine_tune_lr,
        fine_tune_batchnorm=args.fine_tune_batchnorm)
