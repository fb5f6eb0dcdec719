"""Transfer learning as runs: the two phases of :func:`tfresnet.train.fit` with ``weights``.

:func:`fit_transfer` loads the weights into a new classifier for the data's classes
(:mod:`tfresnet.training.transfer`), then trains the classifier alone with the backbone frozen
(``1_head/``) and fine-tunes (``2_fine_tune/``), each phase a :func:`tfresnet.training.fitting.fit_run`
run in its sub-folder, resumed or skipped when done; the run directory gets the whole
run's history, config (with the phases) and model.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import keras

from tfresnet.data import sources
from tfresnet.data.split import DataSplit
from tfresnet.training import checkpoint, fitting, phases, rundir, transfer
from tfresnet.training.config import FIT_SETTINGS, TRANSFER_SETTINGS, FitConfig, TransferConfig
from tfresnet.training.runschema import RUN_FILES
from tfresnet.training.strategy import make_strategy
from tfresnet.utils import fileio


def _say(text, verbose):
    if verbose:
        print(f"[transfer] {text}", flush=True)


def fit_transfer(model, config: FitConfig) -> fitting.FitResult:
    """:func:`tfresnet.train.fit` with ``weights``: transfer learning in two phases
    (see :mod:`tfresnet.training.transfer`), each phase a run in its own sub-folder.

    Args:
      model: registry name (``config.model_kwargs``: its builder arguments).
      config: a :class:`~tfresnet.training.config.FitConfig` with
        ``config.transfer.weights`` (see :func:`tfresnet.training.transfer.load_weights`);
        ``epochs`` is the run's (default ``phases.DEFAULT_EPOCHS``), the last ``epochs -
        freeze_epochs`` fine-tune (default: the second half); ``lr`` the head phase's
        rate (default ``phases.HEAD_LR``, Adam); ``out_dir`` the run directory (phases
        in ``1_head/`` and ``2_fine_tune/``). Each phase's config is this one with
        :func:`dataclasses.replace` (:func:`phase_config`).

    Returns:
      A FitResult with the whole run's history and config and the better phase's model
      (``config["result"]["kept"]`` says which phase and epoch).

    Raises:
      ValueError: one line naming the bad input, before anything is written.
    """
    c, weights = config, config.transfer.weights
    plan = c.phases()
    # One strategy for both phases, made before any other TensorFlow op (as
    # MultiWorkerMirroredStrategy needs), so that what its replicas refuse is refused
    # before the run folder is written.
    strat = make_strategy(c.strategy)
    fitting.check_steps_per_execution(c, strat.num_replicas_in_sync)
    name, info, kwargs = fitting.resolve_model(model, c.model_kwargs)
    size = fitting.resolve_image_size(c.image_size, info, None, kwargs)
    if kwargs.get("res") and tuple(size) != (kwargs["res"], kwargs["res"]):
        raise ValueError(f"res and image_size disagree; give one of them. "
                         f"Received: res={kwargs['res']}, image_size={c.image_size!r}")
    if weights == "imagenet":  # a missing file fails before the data are read
        transfer.imagenet_path(name, kwargs, size, keep_head=False)
    split = (c.dataset if isinstance(c.dataset, DataSplit) else
             sources.load(c.dataset, image_size=size, data_dir=c.data_dir,
                          manual_dir=c.manual_dir, seed=int(c.seed),
                          val_fraction=c.val_fraction, skip_bad_images=c.skip_bad_images))
    labels = [str(label) for label in split.labels]
    keras.utils.set_random_seed(int(c.seed))
    net, note = transfer.load_weights(weights, name, classes=len(labels), labels=labels,
                                      model_kwargs=kwargs, image_size=size)
    transfer.unfreeze_index(net, plan.unfreeze_from)  # an unknown name fails before training
    run_dir = None if c.out_dir is None else os.fspath(c.out_dir)
    record = {
        "model": name, "registry": True, "weights": os.fspath(weights), "weights_note": note,
        "dataset": split.name, "classes": len(labels),
        **dataclasses.replace(c, model_kwargs=kwargs, image_size=tuple(size),
                              seed=int(c.seed), epochs=plan.epochs).record(TRANSFER_SETTINGS),
        "freeze_epochs": plan.freeze_epochs, "fine_tune_epochs": plan.fine_tune_epochs,
        "unfreeze_from": plan.unfreeze_from, "fine_tune_lr": plan.fine_tune_lr,
        "fine_tune_batchnorm": plan.fine_tune_batchnorm,
        "fit": c.record(FIT_SETTINGS),
    }
    if run_dir is not None:
        state = rundir.plan_run_dir(run_dir, record, c.overwrite)
        if state == "overwrite":
            rundir.clear_run_dir(run_dir)
            for sub in phases.PHASE_DIRS:
                shutil.rmtree(os.path.join(run_dir, sub), ignore_errors=True)
        os.makedirs(run_dir, exist_ok=True)
        if state != "resume":
            fileio.write_text(os.path.join(run_dir, RUN_FILES.config), rundir.run_json(record))
        fileio.write_text(os.path.join(run_dir, RUN_FILES.labels), "\n".join(labels) + "\n")
    _say(note, c.verbose)

    recipe_reason = "given" if c.recipe else f"the {name} recipe"
    results, records = [], []

    def run_phase(index, epochs, rule, **extra):
        result = _phase(net, phase_config(dataclasses.replace(c, strategy=strat), split, info,
                                          index, epochs, run_dir), rule)
        results.append(result)
        records.append({"phase": phases.PHASES[index], "epochs": epochs,
                        "lr": result.config["lr"], "lr_source": result.config.get("lr_source"),
                        **extra, "trainable_weights": transfer.trainable_count(net),
                        "kept_epoch": result.kept_epoch,
                        "val_accuracy": result.val_accuracy})
        return result

    if plan.freeze_epochs != 0:
        transfer.freeze_backbone(net)
        cached = c.cache_features and transfer.feature_cache_reason(
            net, augment=c.augment or transfer.DEFAULT_AUGMENT,
            drop=c.steps_per_epoch is not None,
            mixed_precision=c.mixed_precision) is None
        bound = plan.head_bound(cached)
        rule = phases.head_rule(c.lr, recipe_reason)
        _say(f"phase 1: the classifier alone ({transfer.trainable_count(net):,} trainable "
             f"weights), the backbone frozen with BatchNorm in inference mode: "
             f"{rule.optimizer} at lr {rule.lr:g} until the validation loss stops improving, "
             f"at most {bound} epochs", c.verbose)
        head = run_phase(0, bound, rule, trainable="classifier only")
        records[-1]["feature_cache"] = head.config.get("feature_cache")
        records[-1]["stopping"] = head.config.get("stopping")
        net = head.model
    if plan.fine_tune_epochs:
        transfer.unfreeze(net, plan.unfreeze_from, batchnorm=plan.fine_tune_batchnorm)
        bn = ("BatchNorm trained too" if plan.fine_tune_batchnorm else
              "BatchNorm frozen in inference mode")
        _say(f"phase 2: fine-tuning from {plan.unfreeze_from} for "
             f"{plan.fine_tune_epochs} epoch(s) ({transfer.trainable_count(net):,} trainable "
             f"weights, {bn})", c.verbose)
        run_phase(1, plan.fine_tune_epochs,
                  phases.fine_tune_rule(plan.fine_tune_lr, recipe_reason),
                  unfreeze_from=plan.unfreeze_from,
                  batchnorm="trained" if plan.fine_tune_batchnorm else "frozen")
    return _finish(results, records, record, run_dir)


def phase_config(config: FitConfig, split, info, index, epochs, run_dir) -> FitConfig:
    """Phase ``index``'s config: the user's, with :func:`dataclasses.replace`, on the
    loaded ``split`` (the network is built: no image size or builder arguments), in
    its sub-folder of ``run_dir``, with the model's recipe, transfer's augmentation by
    default, and the rate left to the phase's rule (:class:`phases.PhaseRule`)."""
    sub = None if run_dir is None else os.path.join(run_dir, phases.PHASE_DIRS[index])
    return dataclasses.replace(
        config, transfer=TransferConfig(), dataset=split, epochs=epochs, out_dir=sub,
        lr=None, recipe=config.recipe or info.recipe, image_size=None, model_kwargs=None,
        data_dir=None, manual_dir=None, overwrite=False, skip_bad_images=False,
        augment=config.augment or transfer.DEFAULT_AUGMENT)


def _phase(net, config, rule):
    """One phase as a tfresnet.train run in its sub-folder (resumed or skipped when done)."""
    sub, split = config.out_dir, config.dataset
    if sub is not None and os.path.isfile(os.path.join(sub, RUN_FILES.model)) and \
            not rundir.has_backup(sub):
        done, saved, _ = checkpoint.load_run(sub)
        history = {k: [r.get(k) for r in rundir.read_history(sub)]
                   for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")}
        result = saved.get("result", {})
        return fitting.FitResult(
            model=done, run_dir=sub, history=history,
            val_accuracy=result.get("val_accuracy", float("nan")),
            best_val_accuracy=result.get("best_val_accuracy", float("nan")),
            best_epoch=result.get("best_epoch", 0), data=split,
            labels=split.labels, images_per_second=result.get(
                "images_per_second", float("nan")),
            wall_time=result.get("wall_time_seconds", 0.0), initial_epoch=config.epochs,
            config=saved, kept_epoch=result.get("kept_epoch", len(history["epoch"])))
    return fitting.fit_run(net, config, phase=rule)


def _kept_row(result):
    rows = [{k: result.history[k][i] for k in result.history}
            for i in range(len(result.history.get("epoch", [])))]
    row = next((r for r in rows if r["epoch"] == result.kept_epoch), None)
    return row or {"val_accuracy": result.val_accuracy}


def _choose(results, records):
    """(index of the phase whose model the run keeps, warning or None): the fine-tuned
    model only when it beats the head's (:func:`tfresnet.training.rundir.better`)."""
    if len(results) < 2:
        return len(results) - 1, None
    head, tuned = _kept_row(results[0]), _kept_row(results[1])
    if rundir.better(tuned, head):
        return 1, None
    return 0, (f"fine-tuning did not improve on the frozen backbone: kept the phase-1 "
               f"(head) model, val accuracy {head['val_accuracy']:.4f} vs "
               f"{tuned.get('val_accuracy', float('nan')):.4f} at fine-tuning's best epoch; "
               f"try a lower `fine_tune_lr` or a later `unfreeze_from`")


def _finish(results, records, config, run_dir):
    history, offset, offsets = {}, 0, []
    for record, result in zip(records, results):
        n = len(result.history.get("epoch", []))
        for key, values in result.history.items():
            history.setdefault(key, []).extend(
                [v + offset for v in values] if key == "epoch" else values)
        history.setdefault("phase", []).extend([record["phase"]] * n)
        offsets.append(offset)
        offset += n
    index, warning = _choose(results, records)
    last, kept = results[-1], results[index]
    if index == 0 and len(results) > 1:
        transfer.freeze_backbone(kept.model)  # phase 2 unfroze the layers of this model
    config = {**config, "phases": records, "lr": records[0]["lr"],
              "lr_source": records[0].get("lr_source"),
              "recipe": last.config.get("recipe"),
              "recipe_reason": last.config.get("recipe_reason"),
              "batch_reason": last.config.get("batch_reason"),
              "hyperparameters": last.config.get("hyperparameters"),
              "global_batch": last.config.get("global_batch"),
              "batch_size_per_replica": last.config.get("batch_size_per_replica"),
              "replicas": last.config.get("replicas"), "strategy": last.config.get("strategy"),
              "steps_per_epoch": last.config.get("steps_per_epoch"),
              "num_train": last.config.get("num_train"), "num_val": last.config.get("num_val"),
              "normalization": last.config.get("normalization"),
              "augment": last.config.get("augment")}
    run_epoch = offsets[index] + kept.kept_epoch
    result = dataclasses.replace(
        kept, history=history, config=config, val_accuracy=kept.val_accuracy,
        best_val_accuracy=float(_kept_row(kept).get("val_accuracy", kept.val_accuracy)),
        best_epoch=run_epoch, kept_epoch=run_epoch,
        wall_time=sum(r.wall_time for r in results), run_dir=run_dir,
        images_per_second=last.images_per_second, initial_epoch=last.initial_epoch)
    warnings = fitting.health_warnings(result) + ([warning] if warning else [])
    config["result"] = {"val_accuracy": result.val_accuracy,
                        "best_val_accuracy": result.best_val_accuracy,
                        "best_epoch": result.best_epoch, "kept_epoch": run_epoch,
                        "final_epoch": offset,
                        "kept": {"phase": records[index]["phase"],
                                 "phase_epoch": kept.kept_epoch, "run_epoch": run_epoch,
                                 "val_accuracy": kept.val_accuracy},
                        "warnings": warnings,
                        "images_per_second": last.images_per_second,
                        "resumed_at_epoch": last.initial_epoch,
                        "wall_time_seconds": result.wall_time}
    if run_dir is not None:
        rundir.save_model(result.model, os.path.join(run_dir, RUN_FILES.model))
        rows = [{k: history[k][i] for k in history if k != "phase"}
                for i in range(len(history["epoch"]))]
        fileio.write_text(os.path.join(run_dir, RUN_FILES.history), rundir.history_csv(rows))
        fileio.write_text(os.path.join(run_dir, RUN_FILES.config), rundir.run_json(config))
    return result


def transfer_summary(result) -> str:
    """The phases, a few lines each, and the phase kept, for the end-of-run summary."""
    lines = [result.config.get("weights_note", "")]
    for p in result.config.get("phases", []):
        stop = p.get("stopping")
        length = (f"{stop['epochs_run']} of at most {stop['bound']} epoch(s) "
                  f"({stop['steps_run']:,} steps; {stop['why']})" if stop else
                  f"{p['epochs']} epoch(s)")
        lines.append(f"phase {p['phase']}: {length}, lr {p['lr']:g} "
                     f"({p.get('lr_source') or 'given'}), {p['trainable_weights']:,} trainable "
                     f"weights" + (f", BatchNorm {p['batchnorm']}" if p.get("batchnorm") else "")
                     + f", val accuracy {p['val_accuracy']:.4f} (its epoch {p['kept_epoch']})")
        cache = p.get("feature_cache")
        if cache:
            lines.append(f"  features cached: the backbone ran once ({cache['seconds']:.1f} s), "
                         f"the classifier trained on its stored features" if cache["used"] else
                         f"  features not cached: {cache['reason']}")
    kept = (result.config.get("result") or {}).get("kept")
    if kept:
        lines.append(f"kept: the {kept['phase']} phase's epoch {kept['phase_epoch']} (run "
                     f"epoch {kept['run_epoch']}), val accuracy {kept['val_accuracy']:.4f}: "
                     f"model.keras, the model the export ships")
    return "\n".join(lines)
