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

from export.job import class_report
from export.convert import formats
from export.job import model_card
from export.convert.converter import calibration_images, to_float32, to_int8
from export import names
from export.job.manifest import publish
from export.names import LABELS_FILE, MANIFEST
from export.job.flags import PROG, parse
from export.job.plan import LATENCY_ROUNDS, ExportPlan, plan_export
from export.job.results import (EXTRA_FORMATS, FILE_KINDS, MIXED_NOTE,
                                NO_QAT_LABEL, Variant,
                                evaluate, manifest_entry, manifest_header,
                                quantization, results_table, top1_agreement,
                                with_metadata)
from export.job.training import say, train_float, train_qat
from tfresnet.data import sources

__all__ = ["AgreementError", "ChanceError", "export", "main"]


class AgreementError(RuntimeError):
    """The INT8 model disagrees with the QAT Keras model more than allowed."""


class ChanceError(RuntimeError):
    """The float model is no better than chance on the held-out images."""


def chance_check(plan, correct, count):
    """(warning or None): the float model's held-out accuracy against chance.

    Chance is the majority-class share of the held-out images; the model passes when
    random guessing would reach its count of correct answers less than
    ``tfresnet.training.fitting.CHANCE_P_VALUE`` of the time (one-sided exact binomial test).

    Raises:
      ChanceError: when it does not pass and ``plan.allow_chance`` is False.
    """
    from tfresnet.training import fitting

    share = fitting.majority_share(plan.split)
    passed, p = fitting.above_chance(correct, count, share)
    if passed:
        return None
    text = (f"the float model's held-out accuracy {100 * correct / max(count, 1):.2f}% "
            f"({correct} of {count}) is not above chance: the largest class holds "
            f"{100 * share:.2f}% of the held-out images, and a model answering at chance "
            f"gets {correct} or more right {100 * p:.1f}% of the time (one-sided binomial "
            f"test; below {100 * fitting.CHANCE_P_VALUE:g}% required)")
    if not plan.allow_chance:
        raise ChanceError(
            f"{text}; nothing was written. Try more --epochs, --weights from a trained "
            f"backbone, more images a class, or a lower --lr; --allow-chance ships it anyway")
    return f"at chance: {text}; shipped anyway (--allow-chance)"


def export(plan: ExportPlan, argv=None) -> dict:
    """Runs the export the plan describes and writes its files; returns the results.

    Steps: float model (trained unless a checkpoint was given) -> QAT fine-tuning ->
    conversions (QAT INT8, PTQ INT8, float32; INT8 checked full-integer) -> metadata ->
    evaluation on the held-out data, latency, params and MACs -> files (all renamed
    into place together at the end).

    Raises:
      AgreementError: when the INT8 model's top-1 agrees with the QAT Keras model on
        less than ``plan.min_agreement`` of the held-out images (nothing is written).
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
        Variant(kind, with_metadata(plan, converted[kind], kind), plan.file(kind),
                name=None if plan.qat or kind != "int8" else NO_QAT_LABEL)
        for kind in FILE_KINDS if kind in converted]

    what = (f"{plan.split.num_val} --calibration-images (unlabeled)" if plan.imagenet else
            f"{plan.split.num_val} held-out images")
    say(f"Evaluating on {what}; timing ({plan.threads} thread, XNNPACK)")
    count, truth = evaluate(plan.split, float_model, qat_model, variants, threads=plan.threads)
    prof = tfresnet.profile(float_model, print_table=False)
    timed = latency.alternate_rounds({v.kind: v.tflite for v in variants if v.tflite},
                                     rounds=LATENCY_ROUNDS, threads=plan.threads)
    for v in variants:
        if v.tflite is not None:
            v.latency = latency.best_round(timed[v.kind])
    by_kind = {v.kind: v for v in variants}
    reference = by_kind["qat_keras" if plan.qat else "float32_keras"]
    agreement = top1_agreement(by_kind["int8"], reference)
    rows = [{"model": v.label, "file": v.file, "quantization": quantization(v.kind),
             "size_bytes": v.size,
             "params": prof.params, "macs": prof.macs,
             "latency_ms": v.latency.median_ms if v.latency else None,
             "latency": v.latency.to_dict() if v.latency else None,
             "accuracy": None if plan.imagenet else (v.correct / count if count else
                                                     float("nan"))} for v in variants]
    per_class = None if plan.imagenet or not count else class_report.class_figures(
        {v.label: v.top1 for v in variants}, truth, plan.labels,
        reference=by_kind["float32_keras"].label, shipped=by_kind["int8"].label)
    for row in rows:
        row["per_class_accuracy"] = per_class and per_class["per_class_accuracy"][row["model"]]
    agreement_key = f"agreement_int8_vs_{reference.kind}"
    warnings = list(plan.training_warnings)
    for fit in (float_fit, qat_fit):
        warnings += [w for w in ((fit.config.get("result") or {}).get("warnings") or
                                 fitting.health_warnings(fit)) if w not in warnings] \
            if fit is not None else []
    chance = None if plan.imagenet else chance_check(plan, by_kind["float32_keras"].correct,
                                                     count)
    warnings += [chance] if chance else []
    results = {
        "command": f"{PROG} {' '.join(argv or [])}".strip(), "model": plan.name,
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
        "skipped_images": list(plan.split.skipped),
        "checkpoint": plan.checkpoint_path, "seed": plan.seed,
        "weights": None if plan.weights is None else sources.shipped_name(plan.weights),
        "transfer_phases": (float_fit.config.get("phases") if float_fit is not None
                            and plan.weights is not None else None),
        "float_epochs": None if float_fit is None else plan.epochs,
        "qat_epochs": plan.qat_epochs, "qat": plan.qat, "formats": list(plan.formats),
        "quantization": ("quantization-aware training, then full INT8" if plan.qat else
                         "post-training full-INT8 quantization only; no QAT was done"),
        "batch_size_per_replica": plan.batch_size,
        "augment": plan.augment, "calibration_images": len(calibration),
        "float_lr": None if float_fit is None else float_fit.config.get("lr"),
        "qat_lr": qat_fit.config.get("lr") if qat_fit else None, "threads": plan.threads,
        agreement_key: agreement, "agreement_reference": reference.label,
        "min_agreement": plan.min_agreement, "warnings": warnings,
        "class_counts": per_class and per_class["class_counts"],
        "class_difference_points": class_report.DIFFERENCE_POINTS,
        "classes_int8_differs": per_class and [
            {"class": name, "float32_keras": a, "int8": b}
            for name, a, b in per_class["differing"]],
        "rows": rows,
    }
    table = results_table(rows, agreement, count, reference=reference.label,
                          int8=by_kind["int8"].label,
                          images="images (unlabeled)" if plan.imagenet else "held-out images")
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
    if not agreement >= plan.min_agreement:
        raise AgreementError(
            f"the INT8 model agrees with the {reference.label} model on only "
            f"{100 * agreement:.2f}% of the {'' if plan.imagenet else 'held-out '}images "
            f"(required: {100 * plan.min_agreement:g}%); nothing was written")

    accuracy = {r["file"]: r["accuracy"] for r in rows if r["file"]}
    entries = [{**manifest_entry(plan, v, accuracy[v.file], prof), "warnings": warnings}
               for v in variants if v.tflite]
    files = {v.file: v.tflite for v in variants if v.tflite}
    files[LABELS_FILE] = "".join(f"{label}\n" for label in plan.labels).encode()
    if per_class:
        files[plan.confusion_file] = per_class["png"]
    if debug_rows is not None:
        files.update(debug.report_files(debug_rows, plan.report_stem))
    files[plan.results_file] = fileio.to_json(results).encode()
    files[plan.model_card_file] = model_card.model_card(results).encode()
    removed = publish(plan.out, files, entries, header=manifest_header(), say=say)
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
