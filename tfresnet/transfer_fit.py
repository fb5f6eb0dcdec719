"""Transfer learning as runs: the two phases of :func:`tfresnet.train.fit` with ``weights``.

:func:`fit_transfer` loads the weights into a new classifier for the data's classes
(:mod:`tfresnet.transfer`), then trains the classifier alone with the backbone frozen
(``1_head/``) and fine-tunes (``2_fine_tune/``), each phase a :func:`tfresnet.fitting.fit_run`
run in its sub-folder, resumed or skipped when done; the run directory gets the whole
run's history, config (with the phases) and model.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import tf_keras as keras

from tfresnet import checkpoint, cli, data, fitting, recipes, rundir, transfer


def _say(text, verbose):
    if verbose:
        print(f"[transfer] {text}", flush=True)


def fit_transfer(model, *, weights, dataset, epochs, freeze_epochs, unfreeze_from,
                 fine_tune_lr, lr, recipe, model_kwargs, image_size, out_dir, overwrite,
                 seed, val_fraction, data_dir, manual_dir, verbose,
                 **fit_kwargs) -> fitting.FitResult:
    """:func:`tfresnet.train.fit` with ``weights``: transfer learning in two phases
    (see :mod:`tfresnet.transfer`), each phase a run in its own sub-folder.

    Args:
      model: registry name; model_kwargs: its builder arguments.
      weights: see :func:`tfresnet.transfer.load_weights`.
      epochs: all epochs (default ``DEFAULT_EPOCHS``); freeze_epochs: the first of them
        that train the classifier alone (default half); unfreeze_from: where fine-tuning
        starts (default ``"all"``); fine_tune_lr: its rate (default a tenth of the first
        phase's); lr: the first phase's rate (default the recipe's, scaled with the batch).
      out_dir: run directory (phases in ``1_head/`` and ``2_fine_tune/``); None writes nothing.
      fit_kwargs: other :func:`tfresnet.train.fit` arguments (batch_size, strategy, ...).

    Returns:
      The last phase's FitResult, with the whole run's history and config.

    Raises:
      ValueError: one line naming the bad input, before anything is written.
    """
    phases = transfer.plan_phases(epochs, freeze_epochs, unfreeze_from, fine_tune_lr)
    name, info, kwargs = fitting.resolve_model(model, model_kwargs)
    size = fitting.resolve_image_size(image_size, info, None, kwargs)
    if kwargs.get("res") and tuple(size) != (kwargs["res"], kwargs["res"]):
        raise ValueError(f"res and image_size disagree; give one of them. "
                         f"Received: res={kwargs['res']}, image_size={image_size!r}")
    if weights == "imagenet":  # a missing file fails before the data are read
        transfer.imagenet_path(name, kwargs, size, keep_head=False)
    skip_bad_images = fit_kwargs.pop("skip_bad_images", False)  # the phases get the split
    split = (dataset if isinstance(dataset, data.DataSplit) else
             data.load(dataset, image_size=size, data_dir=data_dir, manual_dir=manual_dir,
                       seed=int(seed), val_fraction=val_fraction,
                       skip_bad_images=skip_bad_images))
    labels = [str(label) for label in split.labels]
    keras.utils.set_random_seed(int(seed))
    net, note = transfer.load_weights(weights, name, classes=len(labels), labels=labels,
                                      model_kwargs=kwargs, image_size=size)
    transfer.unfreeze_index(net, phases.unfreeze_from)  # an unknown name fails before training
    run_dir = None if out_dir is None else os.fspath(out_dir)
    config = {
        "model": name, "registry": True, "model_kwargs": kwargs, "weights": os.fspath(weights),
        "weights_note": note, "dataset": split.name, "val_fraction": val_fraction,
        "seed": int(seed), "image_size": list(size), "classes": len(labels),
        "epochs": phases.epochs, "freeze_epochs": phases.freeze_epochs,
        "unfreeze_from": phases.unfreeze_from, "fine_tune_lr": phases.fine_tune_lr,
        "lr": lr, "fit": {k: v for k, v in fit_kwargs.items() if k != "callbacks"},
    }
    if run_dir is not None:
        state = rundir.plan_run_dir(run_dir, config, overwrite)
        if state == "overwrite":
            rundir.clear_run_dir(run_dir)
            for sub in transfer.PHASE_DIRS:
                shutil.rmtree(os.path.join(run_dir, sub), ignore_errors=True)
        os.makedirs(run_dir, exist_ok=True)
        if state != "resume":
            cli.write_text(os.path.join(run_dir, "config.json"), rundir.run_json(config))
        cli.write_text(os.path.join(run_dir, "labels.txt"), "\n".join(labels) + "\n")
    _say(note, verbose)

    fit_kwargs = {**fit_kwargs, "augment": fit_kwargs.get("augment") or transfer.DEFAULT_AUGMENT}
    lr = lr or recipes.get_recipe(recipe or info.recipe).lr
    common = dict(dataset=split, recipe=recipe or info.recipe, seed=seed, verbose=verbose,
                  val_fraction=val_fraction, **fit_kwargs)
    results, records = [], []

    def run_phase(index, epochs, phase_lr, **record):
        result = _phase(net, index, run_dir, epochs, phase_lr, common)
        results.append(result)
        records.append({"phase": ("head", "fine_tune")[index], "epochs": epochs,
                        "lr": result.config["lr"], **record,
                        "trainable_weights": transfer.trainable_count(net),
                        "val_accuracy": result.val_accuracy})
        return result

    if phases.freeze_epochs:
        transfer.freeze_backbone(net)
        _say(f"phase 1: {phases.freeze_epochs} epoch(s) of the classifier alone "
             f"({transfer.trainable_count(net):,} trainable weights), the backbone frozen with "
             f"BatchNorm in inference mode", verbose)
        result = run_phase(0, phases.freeze_epochs, lr, trainable="classifier only")
        records[-1]["feature_cache"] = result.config.get("feature_cache")
        net = result.model
    if phases.fine_tune_epochs:
        first_lr = results[0].config["lr"] if results else lr
        tune_lr = phases.fine_tune_lr or first_lr * transfer.FINE_TUNE_LR_FACTOR
        transfer.unfreeze(net, phases.unfreeze_from)
        _say(f"phase 2: fine-tuning from {phases.unfreeze_from} for "
             f"{phases.fine_tune_epochs} epoch(s) at lr {tune_lr:g} "
             f"({transfer.trainable_count(net):,} trainable weights)", verbose)
        run_phase(1, phases.fine_tune_epochs, tune_lr, unfreeze_from=phases.unfreeze_from)
    return _finish(results, records, config, run_dir)


def _phase(net, index, run_dir, epochs, lr, common):
    """One phase as a tfresnet.train run in its sub-folder (resumed or skipped when done)."""
    sub = None if run_dir is None else os.path.join(run_dir, transfer.PHASE_DIRS[index])
    if sub is not None and os.path.isfile(os.path.join(sub, "model.keras")) and \
            not rundir.has_backup(sub):
        done, config, _ = checkpoint.load_run(sub)
        history = {k: [r.get(k) for r in rundir.read_history(sub)]
                   for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")}
        result = config.get("result", {})
        return fitting.FitResult(
            model=done, run_dir=sub, history=history,
            val_accuracy=result.get("val_accuracy", float("nan")),
            best_val_accuracy=result.get("best_val_accuracy", float("nan")),
            best_epoch=result.get("best_epoch", 0), data=common["dataset"],
            labels=common["dataset"].labels, images_per_second=result.get(
                "images_per_second", float("nan")),
            wall_time=result.get("wall_time_seconds", 0.0), initial_epoch=epochs,
            config=config)
    return fitting.fit_run(net, epochs=epochs, lr=lr, out_dir=sub, image_size=None,
                           model_kwargs=None, data_dir=None, manual_dir=None,
                           overwrite=False, skip_bad_images=False, **common)


def _finish(results, records, config, run_dir):
    last = results[-1]
    history, offset = {}, 0
    for record, result in zip(records, results):
        n = len(result.history.get("epoch", []))
        for key, values in result.history.items():
            history.setdefault(key, []).extend(
                [v + offset for v in values] if key == "epoch" else values)
        history.setdefault("phase", []).extend([record["phase"]] * n)
        offset += n
    config = {**config, "phases": records, "lr": records[0]["lr"],
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
    best = int(np.nanargmax(history["val_accuracy"])) if history.get("val_accuracy") else 0
    result = dataclasses.replace(
        last, history=history, config=config,
        best_val_accuracy=float(history["val_accuracy"][best]) if history.get(
            "val_accuracy") else float("nan"),
        best_epoch=best + 1, wall_time=sum(r.wall_time for r in results),
        run_dir=run_dir)
    warnings = fitting.health_warnings(result)
    config["result"] = {"val_accuracy": result.val_accuracy,
                        "best_val_accuracy": result.best_val_accuracy,
                        "best_epoch": result.best_epoch, "warnings": warnings,
                        "wall_time_seconds": result.wall_time}
    if run_dir is not None:
        rundir.save_model(result.model, os.path.join(run_dir, "model.keras"))
        rows = [{k: history[k][i] for k in history if k != "phase"}
                for i in range(len(history["epoch"]))]
        cli.write_text(os.path.join(run_dir, "history.csv"), rundir.history_csv(rows))
        cli.write_text(os.path.join(run_dir, "config.json"), rundir.run_json(config))
    return result


def transfer_summary(result) -> str:
    """The phases, one line each, for the end-of-run summary."""
    lines = [result.config.get("weights_note", "")]
    for p in result.config.get("phases", []):
        lines.append(f"phase {p['phase']}: {p['epochs']} epoch(s) at lr {p['lr']:g}, "
                     f"{p['trainable_weights']:,} trainable weights, val accuracy "
                     f"{p['val_accuracy']:.4f}")
        cache = p.get("feature_cache")
        if cache:
            lines.append(f"  features cached: the backbone ran once ({cache['seconds']:.1f} s), "
                         f"the classifier trained on its stored features" if cache["used"] else
                         f"  features not cached: {cache['reason']}")
    return "\n".join(lines)
