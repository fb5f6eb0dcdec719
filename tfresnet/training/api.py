"""Training's API: :func:`fit`, which trains one run or a transfer run, and
:func:`summary_table`, the end-of-run summary of what it returns.

``fit(...)`` is what users' scripts and the tests call (through the ``tfresnet.train``
door); ``python -m tfresnet.train`` (:mod:`tfresnet.training.command`) is a thin CLI over it.

Strategies (:mod:`tfresnet.training.strategy`): ``"mirrored"`` (default; every local GPU, else
the CPU, or every logical CPU device configured), ``"multiworker"``
(MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``), ``"one"`` (one device)
and ``"default"`` (no distribution). ``batch_size`` is per replica; the global batch
is ``batch_size x replicas`` and the recipe's learning rate is scaled with it
(:mod:`tfresnet.training.recipes`). The model is built inside ``strategy.scope()`` and
``model.fit`` distributes the tf.data pipeline; under multi-worker the data is sharded
by element (``AutoShardPolicy.DATA``), so no file-level sharding is needed.

The run directory (config.json, labels.txt, history.csv, best.keras, model.keras,
logs/, backup/) and how an interrupted run resumes: :mod:`tfresnet.training.rundir`.
:func:`fit` dispatches to :func:`tfresnet.training.fitting.fit_run` (one run) and
:mod:`tfresnet.training.transfer_fit` (the two phases of transfer learning).
"""

from __future__ import annotations

import math

from tfresnet.training import fitting, transfer_fit
from tfresnet.training.config import FitConfig
from tfresnet.training.fitting import FitResult

__all__ = ["fit", "summary_table"]


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
            " (phases below)" if "phases" in c else "") + resumed),
        *([("batchnorm", f"statistics of each epoch's weights over "
                         f"{c['precise_bn']['images']:,} training images (PreciseBN), "
                         f"{c['precise_bn']['layers']} layers")]
          if (c.get("precise_bn") or {}).get("used") else []),
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
