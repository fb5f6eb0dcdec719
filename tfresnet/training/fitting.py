"""One training run: :func:`tfresnet.train.fit` without pretrained weights.

:func:`fit_run` checks its arguments, makes the strategy, loads the data, builds and
compiles the model inside ``strategy.scope()``, trains it with ``model.fit`` over the
distributed tf.data pipeline and writes the run directory (:mod:`tfresnet.training.rundir`).
Its settings and their defaults are :class:`tfresnet.training.config.FitConfig`'s; config.json
records them resolved (:data:`tfresnet.training.config.RUN_SETTINGS`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfresnet.data import pipelines, sources
from tfresnet.data.split import DataSplit
from tfresnet.models import registry
from tfresnet.models.variant import ModelVariant, check_input_memory
from tfresnet.training import precise_bn, recipes, rundir, transfer
from tfresnet.training.config import RUN_SETTINGS, FitConfig
from tfresnet.training.optim import (
    compile_model,
    lr_schedule,
    make_optimizer,
    model_depth,
    portable_model,
    prepare_model,
)
from tfresnet.training.runschema import RUN_FILES
from tfresnet.training.strategy import is_chief, make_strategy, strategy_name
from tfresnet.utils import stats
from tfresnet.utils.flags import STEPS_PER_EXECUTION, divides_epoch

MIN_STEPS_PER_EPOCH = 10  # fewer at the recipe's batch: the data is small, see SMALL_DATA_BATCH
SMALL_DATA_BATCH = 8      # global batch on small data (as export.tflite's short runs)
DEFAULT_RECIPE = "resnet_imagenet"  # for a keras.Model no registry name matches


@dataclasses.dataclass
class FitResult:
    """What :func:`tfresnet.training.api.fit` returns.

    Attributes:
      model: the trained model as plain float32 Keras layers outside any strategy
        (:func:`portable_model`), what model.keras holds.
      run_dir: the run directory, or None when nothing was written.
      history: per-epoch lists (``epoch``, ``loss``, ``accuracy``, ``val_loss``,
        ``val_accuracy``, ``lr``), including epochs of an earlier, resumed session.
      val_accuracy: validation accuracy of ``model``.
      best_val_accuracy, best_epoch: the best epoch by :func:`tfresnet.training.rundir.better`
        (validation accuracy, ties to the lower loss) and its accuracy during training.
      data: the DataSplit trained on.
      labels: class names.
      images_per_second: training throughput (the first epoch of a session, which
        traces and compiles, is left out when there are more).
      wall_time: seconds from the call to the end of training.
      initial_epoch: epochs already done when this session started (0 unless resumed).
      config: the run configuration (what config.json holds).
      kept_epoch: the epoch whose weights ``model`` holds: the best one (see
        :meth:`tfresnet.training.rundir.EpochRecorder.restore_best`).
    """

    model: keras.Model
    run_dir: str | None
    history: dict
    val_accuracy: float
    best_val_accuracy: float
    best_epoch: int
    data: DataSplit
    labels: list
    images_per_second: float
    wall_time: float
    initial_epoch: int
    config: dict
    kept_epoch: int = 0

# ----------------------------------------------------------------------------- arguments


def resolve_model(model, model_kwargs):
    """(registry name or None, ModelInfo or None, builder kwargs)."""
    kwargs = dict(model_kwargs or {})
    if isinstance(model, keras.Model):
        if kwargs:
            raise ValueError(f"model_kwargs apply to a registry name, not a keras.Model. "
                             f"Received: model_kwargs={kwargs!r}")
        return None, None, kwargs
    info = registry.model_info(model)
    for key in ("input_shape", "classes", "include_top"):
        if key in kwargs:
            raise ValueError(f"{key} is set by fit (from image_size and the data). "
                             f"Received: model_kwargs={kwargs!r}")
    unknown = sorted(set(kwargs) - set(info.extra_args) - {"weights", "name", "shortcut"})
    if unknown:
        allowed = ", ".join(info.extra_args) or "none"
        raise ValueError(f"{', '.join(unknown)} do(es) not apply to {model!r} (its extra "
                         f"arguments: {allowed}). Received: model_kwargs={kwargs!r}")
    return model, info, kwargs


def resolve_image_size(image_size, info, model, kwargs):
    if image_size is None:
        if "res" in kwargs and kwargs["res"] is not None:
            return (kwargs["res"], kwargs["res"])
        if info is not None:
            return tuple(info.input_shape[:2])
        return tuple(model.input_shape[1:3])
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                       for s in image_size)):
        raise ValueError(f"image_size must be a positive integer or (height, width). "
                         f"Received: image_size={image_size!r}")
    if info is not None and min(image_size) < info.min_side:
        raise ValueError(f"{info.name} needs images of at least {info.min_side}x"
                         f"{info.min_side}. Received: image_size={tuple(image_size)!r}")
    return tuple(image_size)


def resolve_recipe(recipe, info, overrides, model=None):
    """(Recipe, why it was chosen)."""
    if isinstance(recipe, recipes.Recipe):
        base, why = recipe, "given"
    elif recipe:
        base, why = recipes.get_recipe(recipe), "given"
    elif info is not None:
        base, why = recipes.get_recipe(info.recipe), f"the {info.name} recipe"
    else:
        guess = registry.find_model(getattr(model, "name", ""))
        if guess is not None:
            base = recipes.get_recipe(guess.recipe)
            why = (f"the model is named {model.name!r}: a registry {guess.name} "
                   f"({guess.family}), whose recipe this is")
        else:
            base = recipes.get_recipe(DEFAULT_RECIPE)
            why = (f"the model's name {getattr(model, 'name', '')!r} matches no registry "
                   f"model, so the default; pass recipe= to choose")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return (base.replace(**changes) if changes else base), why


def _build(name, info, kwargs, model, *, size, classes):
    """The base model: built from the registry, or ``model`` checked against the data."""
    if info is None:
        if tuple(model.input_shape[1:3]) != tuple(size):
            raise ValueError(f"the model takes {model.input_shape[1:3]} images, not "
                             f"{tuple(size)}. Received: image_size={tuple(size)!r}")
        if model.output_shape[-1] != classes:
            raise ValueError(f"the model has {model.output_shape[-1]} outputs but the data "
                             f"has {classes} classes")
        return model
    shape_kwargs = {} if kwargs.get("res") else {"input_shape": (*size, 3)}
    return registry.get_model(name, classes=classes, **shape_kwargs, **kwargs)


def _distributable(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)

# ----------------------------------------------------------------------------- fit_run


def fit_run(model, config: FitConfig, *, phase=None) -> FitResult:
    """Trains ``model`` from its current weights with ``config``, a FitConfig without
    ``weights``; ``phase``: a :class:`tfresnet.training.phases.PhaseRule` (a phase of a
    transfer run). The model returned (and saved as model.keras) holds the weights of
    the best epoch (:func:`tfresnet.training.rundir.better`), not necessarily the last.

    Raises:
      ValueError: one line naming the bad input, before anything is written.
    """
    start = time.perf_counter()
    run = _settle(model, config, phase)
    c, split, recipe = run.config, run.split, run.recipe
    keras.utils.set_random_seed(c.seed)
    if c.deterministic:
        tf.config.experimental.enable_op_determinism()
    base = _build(run.name, run.info, c.model_kwargs, model, size=c.image_size,
                  classes=len(run.labels))
    with run.strategy.scope():
        net = prepare_model(base, weight_decay=recipe.weight_decay,
                            depthwise_weight_decay=recipe.depthwise_weight_decay,
                            mixed_precision=c.mixed_precision, sync_batchnorm=c.sync_batchnorm)
        schedule = lr_schedule(recipe, lr=c.lr, steps_per_epoch=c.steps_per_epoch,
                               total_steps=run.total_steps, depth=model_depth(net))
        compile_model(net, make_optimizer(recipe, schedule), jit_compile=c.jit_compile,
                      steps_per_execution=c.steps_per_execution)

    record = {  # config.json: the settings, resolved, and what they made
        "model": run.name or base.name, "registry": run.name is not None,
        **c.record(RUN_SETTINGS), "classes": len(run.labels),
        "num_train": split.num_train, "num_val": split.num_val,
        "recipe_reason": run.recipe_reason, "batch_reason": run.batch_reason,
        "hyperparameters": dataclasses.asdict(recipe), "lr_source": run.lr_source,
        "batch_size_per_replica": c.batch_size, "replicas": run.replicas,
        "global_batch": run.global_batch,
        "normalization": {"mean": pipelines.MEAN, "std": pipelines.STD},
        "tfresnet_version": _version(),
        # the setting (a resumed run must keep it); what it did is added at the end
        "precise_bn": {"enabled": bool(c.precise_bn)},
    }
    if c.skip_bad_images or split.skipped:
        record["skipped_images"] = list(split.skipped)
    run_dir = None if c.out_dir is None else os.fspath(c.out_dir)
    if run_dir is not None:
        rundir.open_run_dir(run_dir, record, run.labels, overwrite=c.overwrite, chief=run.chief)
    net, recorder, val_ds, kept = _train(net, run, schedule, run_dir, record, phase)
    result = _result(net, recorder, val_ds, split, run.labels, record, run_dir, start, kept)
    if run_dir is not None:
        result.config["result"] = _result_record(result)
        if not recorder.save_best:
            rundir.save_model(result.model, os.path.join(run_dir, RUN_FILES.best), chief=run.chief)
        rundir.close_run_dir(run_dir, result.model, result.config, chief=run.chief)
    return result


@dataclasses.dataclass(frozen=True)
class _Run:
    """A run's FitConfig resolved (the recipe's epochs, the rate used, ...) and more."""

    config: FitConfig
    name: str | None
    info: object
    recipe: recipes.Recipe
    recipe_reason: str
    strategy: tf.distribute.Strategy
    chief: bool
    replicas: int
    global_batch: int
    batch_reason: str
    split: DataSplit
    labels: list
    total_steps: int
    lr_source: str
    drop: bool  # steps_per_epoch given: the data repeats, the last partial batch dropped
    head_steps_per_execution: int  # the cached-feature classifier's (one device)


def _settle(model, c: FitConfig, phase) -> _Run:
    """Makes the strategy, loads the data, resolves the defaults that depend on them."""
    name, info, kwargs = resolve_model(model, c.model_kwargs)
    recipe, recipe_reason = resolve_recipe(c.recipe, info, {
        **(c.recipe_overrides or {}), "weight_decay": c.weight_decay,
        "momentum": c.momentum}, model)
    if phase is not None and phase.recipe_reason:
        recipe_reason = phase.recipe_reason
    if phase is not None and phase.optimizer:  # the head's own optimizer, constant rate
        recipe = recipe.replace(optimizer=phase.optimizer, schedule="constant",
                                warmup_depth=None)
        recipe_reason += f"; {phase.optimizer} at a constant rate for the {phase.kind} phase"
    size = resolve_image_size(c.image_size, info, model, kwargs)
    # MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    strat = make_strategy(c.strategy)
    replicas = strat.num_replicas_in_sync
    per_replica = c.batch_size or max(1, recipe.ref_batch // replicas)
    global_batch = per_replica * replicas
    if name is not None:  # refuse what cannot fit before the data or model is allocated
        if "res" not in kwargs:  # the side is image_size's: said in its name
            check_input_memory(max(size), per_replica)
        ModelVariant(name, kwargs.get("alpha"), kwargs.get("res") or max(size)).check_memory(
            classes=2, batch=per_replica)

    if isinstance(c.dataset, DataSplit):
        split = c.dataset
        if tuple(split.image_size) != tuple(size):
            raise ValueError(f"the DataSplit holds {split.image_size} images, the model "
                             f"takes {size}. Received: image_size={c.image_size!r}")
    else:
        split = sources.load(c.dataset, image_size=size, data_dir=c.data_dir,
                             manual_dir=c.manual_dir, seed=int(c.seed),
                             val_fraction=c.val_fraction, skip_bad_images=c.skip_bad_images)
    batch_reason = "given" if c.batch_size else "the recipe's batch"
    small_data_lr = None
    if not c.batch_size and not c.steps_per_epoch and \
            split.num_train < MIN_STEPS_PER_EPOCH * global_batch and \
            global_batch > SMALL_DATA_BATCH:
        per_replica = max(1, SMALL_DATA_BATCH // replicas)
        batch_reason = (f"small data: {split.num_train} training images would make fewer "
                        f"than {MIN_STEPS_PER_EPOCH} steps an epoch at the recipe's batch "
                        f"{global_batch}, too few for BatchNorm's statistics to settle"
                        + ("" if phase is not None else
                           "; the recipe's own lr, not scaled down to the batch"))
        small_data_lr = recipe.lr
        global_batch = per_replica * replicas
    if global_batch > split.num_train:
        raise ValueError(f"the global batch ({per_replica} x {replicas} replicas = "
                         f"{global_batch}) is larger than the {split.num_train} training "
                         f"images. Received: batch_size={per_replica}")
    if split.num_val < 1:
        raise ValueError(f"the data has no validation images ({split.name!r})")
    augment = c.augment
    if augment is None and small_data_lr is not None:
        augment = "none"
        batch_reason += "; no augmentation (a short run on few images learns faster without)"
    augment = augment or (info.augment if info else "none")
    steps = c.steps_per_epoch or math.ceil(split.num_train / global_batch)
    # The paper's length in steps when neither the call nor the recipe gives epochs.
    total_steps = (recipe.total_steps if c.epochs is None and recipe.epochs is None
                   else (c.epochs or recipe.epochs) * steps)
    learning_rate, lr_source = _learning_rate(c.lr, phase, recipe, small_data_lr, global_batch)
    resolved = dataclasses.replace(
        c, model_kwargs=kwargs, image_size=tuple(size), dataset=split.name, augment=augment,
        recipe=recipe.name, lr=learning_rate, strategy=strategy_name(strat),
        epochs=c.epochs or recipe.total_epochs(steps), steps_per_epoch=steps,
        seed=int(c.seed), batch_size=per_replica, mixed_precision=bool(c.mixed_precision),
        jit_compile=bool(c.jit_compile), sync_batchnorm=bool(c.sync_batchnorm),
        steps_per_execution=_steps_per_execution(c, replicas))
    return _Run(resolved, name, info, recipe, recipe_reason, strat, is_chief(strat),
                replicas, global_batch, batch_reason, split,
                [str(label) for label in split.labels], total_steps, lr_source,
                c.steps_per_epoch is not None, _steps_per_execution(c, 1))


def _train(net, run, schedule, run_dir, record, phase):
    """``model.fit`` over the pipelines (or the cached features); (the network with the
    best epoch's weights, the EpochRecorder, the validation data, the epoch kept)."""
    c, split, global_batch, drop = run.config, run.split, run.global_batch, run.drop
    epochs, steps = c.epochs, c.steps_per_epoch
    train_ds = pipelines.pipeline(split.train, batch_size=global_batch, training=True,
                                  augment=c.augment, seed=c.seed, drop_remainder=drop)
    if drop:
        train_ds = train_ds.repeat()
    val_ds = pipelines.pipeline(split.val, batch_size=global_batch, training=False,
                                augment="none")
    early = phase is not None and phase.patience is not None
    recorder = rundir.EpochRecorder(run_dir, chief=run.chief, schedule=schedule, save_best=not early,
                                    images_per_epoch=steps * global_batch if drop else split.num_train)
    cbs = rundir.run_callbacks(recorder, run_dir, run.recipe, chief=run.chief, verbose=c.verbose)
    precise = None
    if c.precise_bn and precise_bn.trained_batchnorm(net):
        precise = precise_bn.PreciseBatchNorm(train_ds, batch_size=c.batch_size,
                                              num_train=split.num_train)
        cbs.insert(0, precise)  # before the recorder, which keeps each epoch's weights
    if early:
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=phase.patience,
                                                min_delta=phase.min_delta)
        cbs.append(stopper)
    trainee, fit_train, fit_val = net, train_ds, val_ds
    cache_reason = ("cache_features=False" if not c.cache_features else transfer.feature_cache_reason(
        net, augment=c.augment, drop=drop, mixed_precision=c.mixed_precision))
    fit_verbose = c.verbose
    if cache_reason is None:  # frozen backbone, no augmentation: its features once
        feature_start = time.perf_counter()
        # The classifier alone trains outside the strategy, on one device: a linear
        # layer gains nothing from replicas, and under MirroredStrategy every epoch
        # would build multi-device iterators that cost more than the epoch itself.
        trainee = transfer.head_model(net)
        compile_model(trainee, make_optimizer(run.recipe, schedule), jit_compile=c.jit_compile,
                      steps_per_execution=run.head_steps_per_execution)
        # Keras 3 draws a batch from a fresh iterator of the training data before it
        # fits a model made under a distribution strategy (its symbolic build), which
        # uses up one shuffle of the data; the head, outside any strategy, skips that
        # shuffle, so that its epochs see the batches training ``net`` would.
        distributed = net.distribute_strategy is not tf.distribute.get_strategy()
        fit_train, fit_val = transfer.cached_features(net, split, batch_size=global_batch,
                                                      seed=c.seed, skip_shuffles=int(distributed))
        recorder.save_best = False  # best.keras is written once, at the end
        record["feature_cache"] = {
            "used": True, "seconds": round(time.perf_counter() - feature_start, 3),
            "steps_per_execution": run.head_steps_per_execution}
        if c.verbose and epochs > 20:  # many cheap epochs: a line every tenth
            fit_verbose = 0
            cbs.append(_every_tenth_epoch(epochs))
    else:
        record["feature_cache"] = {"used": False, "reason": cache_reason}
        fit_train, fit_val = _distributable(fit_train), _distributable(fit_val)
    trainee.fit(fit_train, validation_data=fit_val, epochs=epochs, verbose=fit_verbose,
                steps_per_epoch=steps if drop else None, callbacks=cbs + list(c.callbacks),
                shuffle=False)  # the pipelines shuffle, seeded
    kept = recorder.restore_best(net)
    record["precise_bn"].update(
        {"used": True, "images": precise.images, "layers": precise.layers}
        if precise is not None and precise.images else {"used": False})
    if trainee is not net:  # the trained classifier back into the network
        net.get_layer(transfer.HEAD).set_weights(trainee.layers[-1].get_weights())
    if early:
        ran = len(recorder.rows)
        record["stopping"] = {
            "epochs_run": ran, "steps_run": ran * steps, "bound": epochs,
            "patience": phase.patience, "min_delta": phase.min_delta,
            "why": (f"early stopping: the validation loss did not improve by "
                    f"{phase.min_delta:g} for {phase.patience} epochs"
                    if stopper.stopped_epoch else f"reached its bound of {epochs} epochs")}
    return net, recorder, val_ds, kept


def _every_tenth_epoch(epochs):
    """A callback printing one line every tenth epoch (and the last)."""
    def report(epoch, logs):
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            figures = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if k != "lr")
            print(f"classifier epoch {epoch + 1}/{epochs}: {figures}", flush=True)
    return keras.callbacks.LambdaCallback(on_epoch_end=report)


# Keras runs these once a call of the train (or validation) function.
_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
                "on_test_batch_begin", "on_test_batch_end")


def _has_batch_hooks(callback) -> bool:
    """True when ``callback`` does something on a batch: a hook overridden in its class
    or set on the instance (``keras.callbacks.LambdaCallback(on_train_batch_end=f)``)."""
    base = keras.callbacks.Callback
    for hook in _BATCH_HOOKS:
        method = getattr(callback, hook, None)
        if getattr(method, "__func__", method) is not getattr(base, hook):
            return True
    return False


def check_steps_per_execution(c, replicas) -> None:
    """Refuses a given ``c.steps_per_execution`` that cannot run (see
    :func:`_steps_per_execution`), in one line, before anything is written."""
    given, steps = c.steps_per_execution, c.steps_per_epoch
    if given is None:
        return
    if int(given) > 1 and replicas > 1:
        raise ValueError(f"steps_per_execution above 1 fails under {replicas} replicas "
                         f"in Keras 3 (keras#19246): give 1 or one device. Received: "
                         f"steps_per_execution={given}")
    if not divides_epoch(steps, int(given)):
        raise ValueError(f"steps_per_execution must divide steps_per_epoch ({steps}): "
                         f"Keras runs whole calls of the train function. Received: "
                         f"steps_per_execution={given}")


def _steps_per_execution(c, replicas) -> int:
    """The steps per train-function call: as given, else 1 when a user's callback has
    batch-level hooks (so it sees every batch, as it would in plain Keras) or the
    strategy has several replicas, else ``STEPS_PER_EXECUTION``.

    Several steps a call fail under several replicas in Keras 3.15 (its while loop holds
    a cond the replicas' merge_call cannot run: "You must feed a value for placeholder
    tensor 'while/cond/Placeholder'", keras#19246; measured with 2 logical CPUs). With
    ``steps_per_epoch`` (the data repeats) the number must divide the epoch: Keras then
    runs whole calls (3 a call into 5 steps trains 6 an epoch, measured), while a finite
    pass ends its last call early. The default takes the largest divisor.
    """
    steps = c.steps_per_epoch
    if c.steps_per_execution is not None:
        check_steps_per_execution(c, replicas)
        return int(c.steps_per_execution)
    if replicas > 1 or any(_has_batch_hooks(cb) for cb in c.callbacks):
        return 1
    if steps is None:
        return STEPS_PER_EXECUTION
    return max(n for n in range(1, STEPS_PER_EXECUTION + 1) if divides_epoch(steps, n))


def _learning_rate(lr, phase, recipe, small_data_lr, global_batch):
    """(rate, where it comes from): given, the phase's rule, or the recipe's rate
    (scaled to the global batch, or its own on small data) times the phase's factor."""
    if lr is not None:
        return float(lr), "given"
    if phase is not None and phase.lr is not None:
        return float(phase.lr), phase.lr_source or "given"
    if small_data_lr is not None and phase is None:  # fine-tuning scales with the batch
        base, source = small_data_lr, f"the {recipe.name} recipe's own rate (small data)"
    else:
        base = recipe.scaled_lr(global_batch)
        source = (f"the {recipe.name} recipe's {recipe.lr:g} at batch {recipe.ref_batch}"
                  + ("" if global_batch == recipe.ref_batch else
                     f", scaled to the global batch {global_batch}"))
    factor = 1.0 if phase is None else phase.lr_factor
    if factor == 1.0:
        return base, source
    return base * factor, f"{phase.kind} rule: {factor:g} x {source} ({base:g})"


def _result(net, recorder, val_ds, split, labels, config, run_dir, start, kept) -> FitResult:
    rows = recorder.rows
    history = {k: [r.get(k) for r in rows] for k in ["epoch"] + sorted(
        {k for r in rows for k in r} - {"epoch"})}
    best = recorder.best or {}
    final = portable_model(net)
    return FitResult(
        model=final, run_dir=run_dir, history=history, val_accuracy=accuracy(final, val_ds),
        best_val_accuracy=float(best.get("val_accuracy", float("nan"))),
        best_epoch=int(best.get("epoch", 0)), data=split, labels=labels,
        images_per_second=recorder.images_per_second, wall_time=time.perf_counter() - start,
        initial_epoch=recorder.initial_epoch or 0, config=config, kept_epoch=kept)


def _result_record(result) -> dict:
    """config.json's ``result``: the figures and the run's health warnings."""
    return {
        "val_accuracy": result.val_accuracy, "best_val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch, "kept_epoch": result.kept_epoch,
        "final_epoch": len(result.history.get("epoch", [])),
        "images_per_second": result.images_per_second,
        "wall_time_seconds": result.wall_time, "resumed_at_epoch": result.initial_epoch,
        "warnings": health_warnings(result)}


def _version() -> str:
    from tfresnet import __version__
    return __version__

# ----------------------------------------------------------------------------- health


def accuracy(model, dataset) -> float:
    """Top-1 accuracy of ``model`` on a batched ``(images, labels)`` dataset."""
    correct = total = 0
    for images, labels in dataset:
        predicted = np.argmax(model(images, training=False).numpy(), axis=-1)
        correct += int(np.sum(predicted == labels.numpy()))
        total += len(predicted)
    return correct / max(total, 1)


def health_warnings(result) -> list[str]:
    """Plain-words warnings about a finished run: collapse and divergence.

    * collapsed: the validation accuracy (final and best) is near the majority-class
      share (:func:`tfresnet.utils.stats.near_chance`, the one rule for "at chance"),
      i.e. the model answers one class whatever the image;
    * diverged: a non-finite training loss, or a final training loss above both the
      first epoch's and chance level (ln of the number of classes).
    """
    out = []
    losses = [v for v in result.history.get("loss", []) if v is not None]
    if any(not math.isfinite(v) for v in losses):
        out.append("diverged: the training loss became NaN or infinite; lower the "
                   "learning rate (`lr`)")
    elif len(losses) > 1:
        chance = math.log(max(len(result.labels), 2))
        if losses[-1] > losses[0] and losses[-1] > chance:
            out.append(f"diverged: the training loss rose from {losses[0]:.3g} to "
                       f"{losses[-1]:.3g}, above chance level {chance:.3g}; lower the "
                       f"learning rate (`lr`)")
    share = stats.majority_share(result.data.val_labels())
    best = max(result.val_accuracy, result.best_val_accuracy
               if math.isfinite(result.best_val_accuracy) else 0.0)
    if math.isfinite(share) and stats.near_chance(best, share):
        out.append(f"collapsed: validation accuracy {result.val_accuracy:.4f} (best "
                   f"{best:.4f}) is about the majority-class share {share:.4f}: the model "
                   f"answers one class whatever the image; try a smaller `batch_size`, a "
                   f"lower `lr`, more `epochs`, or `weights` to start from a trained backbone")
    return out
