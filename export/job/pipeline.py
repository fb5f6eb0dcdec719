"""The main job behind ``python -m export.tflite``: model -> QAT -> verified INT8 files.

:func:`plan_export` checks every flag and loads the checkpoint and the data, before
anything is trained or written; :func:`export` runs the plan:

1. the float model: ``--checkpoint`` (a tfresnet.train run or .keras file), or trained
   here on the data (default: the bundled digits, a few epochs, said on the terminal);
2. quantization-aware fine-tuning (``export.convert.qat.quantize_model`` inside the
   strategy's scope, trained with ``tfresnet.train.fit``);
3. conversions (``export.convert``): QAT -> full INT8, and the baselines float32 and
   post-training INT8 from the same calibration images; metadata embedded
   (``export.metadata``);
4. evaluation on the held-out data (float Keras, QAT Keras and the three files; top-1
   agreement of the INT8 file with the QAT Keras model, which must reach
   ``--min-agreement``), latency (``export.convert.latency``: the three files timed side by
   side in ``LATENCY_ROUNDS`` rounds, the best round quoted), params and MACs
   (``tfresnet.profile``);
5. files: the three ``.tflite``, ``labels.txt``, the results JSON and the merged
   ``models.json``, written by ``export.job.manifest.publish``: under a lock on the folder,
   to temporary names first, renamed so that no manifest entry ever describes a file
   it does not match, even when the export is killed between the renames.

``--qat-epochs 0`` skips step 2: the INT8 file is the float model post-training
quantized (converted once, no separate PTQ baseline), compared with the float Keras model,
and the report says no QAT was done. ``--weights imagenet --epochs 0 --qat-epochs 0
--calibration-images FOLDER`` exports the ImageNet classifier itself with the 1,000 ImageNet
labels (:func:`export.job.plan.imagenet_labels`), calibrated on the unlabeled images of FOLDER, which
also measure the INT8 file's top-1 agreement with the float model (no accuracy: no labels).

The job is split along its steps: :mod:`export.job.plan` (the settings, the flag
checks, :class:`ExportPlan`), :mod:`export.job.training` (float training, QAT, the
calibration sample), :mod:`export.job.results` (evaluation, the manifest entries,
the table), :mod:`export.job.flags` (the flags, parsed before TensorFlow loads); this
module runs the steps in order (:func:`export`) and holds the command line's :func:`main`.
"""

from __future__ import annotations

import os

from export.job import class_report
from export.job.gates import (AgreementError, ChanceError, agreement_check,
                              agreement_refusal, chance_check, choose_int8, loss_warnings)
from export.convert import formats
from export.job import model_card
from export.convert.converter import calibration_images, to_float32, to_int8
from export import names
from export.job.manifest import publish
from export.names import LABELS_FILE, MANIFEST
from export.job.flags import PROG, parse
from export.job.plan import FILE_KINDS, LATENCY_ROUNDS, ExportPlan, plan_export
from export.job.results import (EXTRA_FORMATS, MIXED_NOTE,
                                NO_QAT_LABEL, Variant,
                                evaluate, float_kept, manifest_entry, manifest_header,
                                quantization, results_table, shipped_checkpoint,
                                shipped_command, top1_agreement, with_metadata)
from export.job.training import say, train_float, train_qat
from tfresnet.data import sources

__all__ = ["AgreementError", "ChanceError", "export", "main"]

# How shipped files name the --epochs 0 model (the terminal names its cache file too).
IMAGENET_CHECKPOINT = "the ImageNet classifier (keras.applications weights)"


def export(plan: ExportPlan, argv=None) -> dict:
    """Runs the export the plan describes and writes its files; returns the results.

    Steps: float model (trained unless a checkpoint was given) -> QAT fine-tuning ->
    conversions (QAT INT8, PTQ INT8, float32; INT8 checked full-integer) -> metadata ->
    evaluation on the held-out data, latency, params and MACs -> files (all renamed
    into place together at the end).

    Of the QAT and PTQ INT8 files the one right on more held-out images ships as
    ``STEM_int8.tflite`` (:func:`export.job.gates.choose_int8`); files an earlier export
    of the stem wrote and this one does not are removed.

    Raises:
      AgreementError: when the shipped INT8 file's top-1 agreement with its Keras model
        is clearly below ``plan.min_agreement`` for the number of held-out images
        (:func:`export.job.gates.agreement_check`; nothing is written).
      ChanceError: a float model not above chance (without ``plan.allow_chance``).
    """
    import tfresnet
    from export.convert import latency
    from tfresnet.utils import fileio
    from tfresnet.training import fitting
    from tfresnet.training import train

    strategy = train.make_strategy(plan.strategy)
    float_fit = None
    if plan.checkpoint is None:
        float_model, float_fit = train_float(plan, strategy)
    else:
        float_model = plan.checkpoint
        say(f"Float model from {plan.checkpoint_path}")
    if plan.qat:
        qat_model, qat_fit = train_qat(plan, float_model, strategy, float_fit)
    else:
        qat_model = qat_fit = None
        say("--qat-epochs 0: no quantization-aware training; the INT8 file is the float "
            "model with post-training full-INT8 quantization")

    images = "images" if plan.imagenet else "training images"
    calibration = calibration_images(plan.split, plan.calibration, plan.seed)
    say(f"Converting (calibration: {len(calibration)} {images}"
        + ("" if len(calibration) == plan.calibration else
           f", all there are; --calibration {plan.calibration}")
        + f"; INT8 I/O {plan.io})")
    if plan.qat:
        converted = {"int8": to_int8(qat_model, calibration, io=plan.io),
                     "ptq_int8": to_int8(float_model, calibration, io=plan.io),
                     "float32": to_float32(float_model)}
        keras_kinds = ("float32_keras", "qat_keras")
    else:  # the PTQ file is the INT8 file: converted and written once
        converted = {"int8": to_int8(float_model, calibration, io=plan.io),
                     "float32": to_float32(float_model)}
        keras_kinds = ("float32_keras",)
    for kind in EXTRA_FORMATS:  # post-training, from the float model; graph checked
        if kind in plan.formats:
            converted[kind] = formats.convert_format(float_model, kind, calibration)
    if plan.float_layers:
        from export.convert import debug
        converted["mixed_int8"] = debug.mixed_int8(float_model, calibration,
                                                   plan.float_layers, io=plan.io)
        say(f"--float-layers: {', '.join(debug.float_layers_of(converted['mixed_int8']))} "
            f"compute in float in {plan.file('mixed_int8')}")
    debug_rows = None
    if plan.debug_quantization:
        from export.convert import debug
        say("Measuring the per-layer INT8 error (--debug-quantization)")
        debug_rows = debug.layer_errors(float_model, calibration)
    variants = [Variant(kind) for kind in keras_kinds] + [
        Variant(kind, converted[kind],
                name=None if plan.qat or kind != "int8" else NO_QAT_LABEL)
        for kind in FILE_KINDS if kind in converted]

    what = (f"{plan.split.num_val} --calibration-images (unlabeled)" if plan.imagenet else
            f"{plan.split.num_val} held-out images")
    say(f"Evaluating on {what}; timing ({plan.threads} thread, XNNPACK)")
    count, truth = evaluate(plan.split, float_model, qat_model, variants, threads=plan.threads)
    prof = tfresnet.profile(float_model, print_table=False)
    timed = latency.alternate_rounds({v.kind: v.tflite for v in variants if v.tflite},
                                     rounds=LATENCY_ROUNDS, threads=plan.threads)
    by_kind = {v.kind: v for v in variants}
    ships = "int8" if plan.imagenet else choose_int8(by_kind)
    for v in variants:
        if v.tflite is not None:  # named once the shipped file is known; metadata inside
            v.latency = latency.best_round(timed[v.kind])
            v.file = plan.file(v.kind, ships)
            v.tflite = with_metadata(plan, v.tflite, v.kind, ships)
    shipped = by_kind[ships]
    reference = by_kind["qat_keras" if ships == "int8" and plan.qat else "float32_keras"]
    agreement = top1_agreement(shipped, reference)
    rows = [{"model": v.label, "file": v.file, "quantization": quantization(v.kind),
             "ship": v is shipped, "size_bytes": v.size,
             "params": prof.params, "macs": prof.macs,
             "latency_ms": v.latency.median_ms if v.latency else None,
             "latency": v.latency.to_dict() if v.latency else None,
             "accuracy": None if plan.imagenet else (v.correct / count if count else
                                                     float("nan"))} for v in variants]
    per_class = None if plan.imagenet or not count else class_report.class_figures(
        {v.label: v.top1 for v in variants}, truth, plan.labels,
        reference=by_kind["float32_keras"].label, shipped=shipped.label)
    for row in rows:
        row["per_class_accuracy"] = per_class and per_class["per_class_accuracy"][row["model"]]
    agreement_key = f"agreement_int8_vs_{reference.kind}"
    images = "images (unlabeled)" if plan.imagenet else "held-out images"
    gate = agreement_check(round(agreement * count), count, plan.min_agreement)
    warnings = list(plan.training_warnings)
    for fit in (float_fit, qat_fit):
        warnings += [w for w in ((fit.config.get("result") or {}).get("warnings") or
                                 fitting.health_warnings(fit)) if w not in warnings] \
            if fit is not None else []
    chance = None if plan.imagenet else chance_check(plan, by_kind["float32_keras"].correct,
                                                     count)
    warnings += [chance] if chance else []
    losses, comparisons = ([], []) if plan.imagenet or not count else \
        loss_warnings(by_kind, truth, count)
    warnings += [w for w in losses if w not in warnings]
    kept = float_kept(plan, float_fit)
    results = {
        "command": shipped_command(argv or []), "model": plan.name,
        "paper": plan.info.paper, "recipe": plan.info.recipe,
        "results_file": plan.results_file, "environment": model_card.environment(),
        "model_kwargs": plan.model_kwargs, "res": plan.res, "io": plan.io,
        "dataset": "imagenet" if plan.imagenet else sources.shipped_name(plan.split.name),
        "calibration_images_folder": (sources.shipped_name(plan.split.name) if plan.imagenet
                                      else None),
        "labels": plan.labels,
        "labels_source": ("tensorflow-datasets imagenet2012/labels.txt (order) and "
                          "siscore IMAGENET_LABELS_LIST (names)") if plan.imagenet else None,
        "accuracy_note": ("no labels: the images are unlabeled, so no accuracy; the INT8 "
                          "file's top-1 agreement with the float model is reported")
                         if plan.imagenet else None,
        "num_train": plan.split.num_train, "held_out_images": count,
        "skipped_images": [os.path.relpath(os.path.abspath(path), plan.split.name)
                           for path in plan.split.skipped],  # inside the data folder
        "checkpoint": (IMAGENET_CHECKPOINT if plan.imagenet else
                       shipped_checkpoint(plan.checkpoint_path)), "seed": plan.seed,
        "weights": None if plan.weights is None else sources.shipped_name(plan.weights),
        "transfer_phases": (float_fit.config.get("phases") if float_fit is not None
                            and plan.weights is not None else None),
        "float_epochs": None if float_fit is None else plan.epochs,
        "float_kept": kept,
        "qat_epochs": plan.qat_epochs, "qat": plan.qat, "formats": list(plan.formats),
        "quantization": ("quantization-aware training, then full INT8" if plan.qat else
                         "post-training full-INT8 quantization only; no QAT was done"),
        "batch_size_per_replica": plan.batch_size,
        "augment": plan.augment, "calibration_images": len(calibration),
        "float_lr": None if float_fit is None else float_fit.config.get("lr"),
        "qat_lr": qat_fit.config.get("lr") if qat_fit else None, "threads": plan.threads,
        "shipped_file": shipped.file, "shipped_model": shipped.label,
        agreement_key: agreement, "agreement_reference": reference.label,
        "min_agreement": plan.min_agreement, "agreement_test": gate,
        "int8_comparisons": comparisons, "warnings": warnings,
        "class_counts": per_class and per_class["class_counts"],
        "class_difference_points": class_report.DIFFERENCE_POINTS,
        "classes_int8_differs": per_class and [
            {"class": name, "float32_keras": a, "int8": b}
            for name, a, b in per_class["differing"]],
        "rows": rows,
    }
    table = results_table(rows, agreement, count, reference=reference.label,
                          int8=shipped.label,
                          images=images)
    if ships == "ptq_int8":
        table += (f"\nThe post-training file ships as {shipped.file}: right on "
                  f"{shipped.correct} of {count} held-out images, the quantization-aware "
                  f"one ({by_kind['int8'].file}) on {by_kind['int8'].correct}")
    if kept:
        table += f"\nfloat32 Keras: {model_card.kept_text(kept)} kept (the best held-out accuracy)"
    if not plan.qat:
        table += "\nNo quantization-aware training (--qat-epochs 0): post-training INT8 only."
    if plan.float_layers:
        results["float_layers"] = list(plan.float_layers)
        table += (f"\n{MIXED_NOTE}: {', '.join(plan.float_layers)} in "
                  f"{plan.file('mixed_int8')}")
    if debug_rows is not None:
        results["quantization_debug"] = {
            "file": f"{plan.report_stem}{names.QUANT_DEBUG_SUFFIXES[1]}",
            "worst": [{"layer": r.layer, "op": r.op, "rmse_over_scale": r.normalised,
                       "mac_share": r.mac_share} for r in debug.worst(debug_rows)]}
        table += f"\n{debug.worst_text(debug_rows)}"
    if per_class and per_class["text"]:
        table += f"\n{per_class['text']}"
    table += "".join(f"\nWARNING {w}" for w in warnings)
    print(table, flush=True)
    if not gate["passed"]:
        raise agreement_refusal(gate, file=shipped.file, reference=reference.label,
                                images=images)

    accuracy = {r["file"]: r["accuracy"] for r in rows if r["file"]}
    entries = [{**manifest_entry(plan, v, accuracy[v.file], prof, ship=v is shipped),
                "warnings": warnings} for v in variants if v.tflite]
    files = {v.file: v.tflite for v in variants if v.tflite}
    files[LABELS_FILE] = "".join(f"{label}\n" for label in plan.labels).encode()
    if per_class:
        files[plan.confusion_file] = per_class["png"]
    if debug_rows is not None:
        files.update(debug.report_files(debug_rows, plan.report_stem))
    files[plan.results_file] = fileio.to_json(results).encode()
    files[plan.model_card_file] = model_card.model_card(results).encode()
    stale = sorted(plan.own_files() - set(files))
    earlier = [name for name in stale if os.path.lexists(os.path.join(plan.out, name))]
    removed = publish(plan.out, files, entries, header=manifest_header(), say=say,
                      stale=stale)
    if earlier:
        say(f"Removed {', '.join(earlier)}: an earlier export's files of this stem that "
            f"this export does not write")
    if removed:
        say(f"Removed {len(removed)} temporary file(s) an interrupted export left in "
            f"{plan.out}")
    say(f"Wrote {', '.join(files)}, {MANIFEST} to {plan.out}")
    results["files"] = sorted([*files, MANIFEST])
    results["table"] = table
    return results


def main(argv=None):
    """``python -m export.tflite``: returns the results dict (exit status 0), or exits
    1 when the INT8 model fails its agreement check, 2 on bad input."""
    import sys

    args = parse(argv)
    plan = plan_export(args)
    plan.verbose = 1 if sys.stdout.isatty() else 2
    try:
        return export(plan, argv=list(sys.argv[1:] if argv is None else argv))
    except (AgreementError, ChanceError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(1)
