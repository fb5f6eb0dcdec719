"""The export job's two training steps: the float model (when none is given) and its
quantization-aware fine-tuning.

Both train with ``tfresnet.train.fit`` on the plan's data with the short-run preset
(``tfresnet.training.recipes.short_run_settings``, :func:`training_settings`); QAT wraps the
float model with ``export.convert.qat.quantize_model`` inside the strategy's scope.
:func:`float_kept` says which epoch of the float training the export took.
"""

from __future__ import annotations

import dataclasses
import math

from export.convert import qat
from export.job.config import QAT_LR_FACTOR
from export.job.progress import say
from tfresnet.training import recipes


def training_settings(plan, qat: bool) -> dict:
    """fit() arguments shared by the float training and the QAT fine-tuning
    (``tfresnet.training.recipes.short_run_settings``); QAT runs at ``QAT_LR_FACTOR`` times the
    float rate."""
    c = plan.config
    base = c.lr or recipes.get_recipe(plan.info.recipe).lr
    lr = (c.qat_lr or base * QAT_LR_FACTOR) if qat else base
    return dict(dataset=plan.split, verbose=c.verbose,
                **recipes.short_run_settings(plan.info.recipe,
                                             epochs=c.qat_epochs if qat else c.epochs,
                                             batch_size=c.batch_size, lr=lr,
                                             augment=c.augment, seed=c.seed))


def train_float(plan, strategy):
    """Trains the float model on the plan's data (when there is no checkpoint)."""
    from tfresnet.training import api as train

    c = plan.config
    say(f"No trained model given: training the float {plan.stem} on {plan.split.name} "
        f"({plan.split.num_train} images) for {c.epochs} epoch(s) first "
        f"(give a model trained with tfresnet.train to export it instead)")
    settings = training_settings(plan, qat=False)
    if c.transfer.weights is not None:  # the phases' own rates and the model's own recipe
        say(f"Starting from the weights {c.transfer.weights}")
        settings.update(lr=c.lr, recipe=None)
    result = train.fit(plan.name, strategy=strategy, image_size=(plan.res, plan.res),
                       model_kwargs=plan.model_kwargs or None, **settings,
                       **dataclasses.asdict(c.transfer))
    return result.model, result  # fit returns the portable model (train.portable_model)


def qat_twin(float_model, strategy, *, unfreeze=False):
    """The QAT twin of ``float_model``, built inside ``strategy.scope()``, and the names
    of its layers that stay frozen: those frozen in the float model, or none with
    ``unfreeze`` (``--qat-unfreeze``: every layer trains)."""
    with strategy.scope():
        qat_model = qat.quantize_model(float_model)
    if unfreeze:
        for layer in qat_model.layers:
            layer.trainable = True
    return qat_model, [layer.name for layer in qat_model.layers
                       if layer.weights and not layer.trainable]


def train_qat(plan, float_model, strategy, float_fit=None):
    """Quantization-aware fine-tuning of ``float_model`` (its QAT twin built inside the
    strategy's scope, so its variables are distributed); returns the trained QAT model
    and its FitResult.

    Layers frozen in the float model (a transfer run's backbone) stay frozen: their
    weights do not move, while their activation ranges still follow the data.
    ``--qat-unfreeze`` trains every layer.

    After a transfer run (``float_fit`` with phases) QAT goes on at the fine-tuning
    phase's rate (without ``--qat-lr``): the float rule's rate would undo what the low
    fine-tuning rate kept."""
    from tfresnet.training import api as train

    say(f"Quantization-aware fine-tuning for {plan.config.qat_epochs} epoch(s)")
    qat_model, frozen = qat_twin(float_model, strategy, unfreeze=plan.config.qat_unfreeze)
    if frozen:
        say(f"QAT keeps the {len(frozen)} layers frozen in the float model frozen "
            f"({sum(math.prod(w.shape) for w in qat_model.trainable_weights):,} trainable "
            f"weights; qat_unfreeze trains them too)")
    settings = training_settings(plan, qat=True)
    tuned = [p for p in ((float_fit.config.get("phases") if float_fit else None) or [])
             if p["phase"] == "fine_tune"]
    if tuned and plan.config.qat_lr is None:
        settings["lr"] = tuned[-1]["lr"]
    result = train.fit(qat_model, strategy=strategy, **settings)
    return result.model, result


def float_kept(plan, fit) -> dict | None:
    """Which epoch of the float training the export took (``fit``: trained here, else
    the checkpoint's config.json): ``{"epoch", "of", "phase", "phase_epoch",
    "val_accuracy"}`` (``phase`` a transfer run's, else None); None when not recorded
    (a bare ``.keras`` file)."""
    result = ((fit.config.get("result") if fit is not None else
               plan.source and plan.source.result) or {})
    epoch = fit.kept_epoch if fit is not None else result.get("kept_epoch")
    if not epoch:
        return None
    kept = result.get("kept") or {}
    final = len(fit.history.get("epoch", [])) if fit is not None else result.get("final_epoch")
    accuracy = (fit.val_accuracy if fit is not None else
                kept.get("val_accuracy", result.get("val_accuracy")))
    return {"epoch": epoch, "of": final, "phase": kept.get("phase"),
            "phase_epoch": kept.get("phase_epoch"), "val_accuracy": accuracy}
