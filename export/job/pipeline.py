"""The main job behind ``python -m export.tflite``: model -> QAT -> verified INT8 files.

:func:`export` (``export.tflite.export``) is the job from Python: an
:class:`export.job.config.ExportConfig` plus overrides; :func:`plan_export` checks it
against the model and the data and loads them, before anything is trained or written;
:func:`run` runs the plan and returns an :class:`export.job.result.ExportResult`:

1. the float model: the one given (a Keras model, a tfresnet.train run or .keras file), or trained
   here on the data (default: the bundled digits, a few epochs, said on the terminal);
2. quantization-aware fine-tuning (``export.convert.qat.quantize_model`` inside the
   strategy's scope, trained with ``tfresnet.train.fit``);
3. conversions (``export.convert``): QAT -> full INT8, and the baselines float32 and
   post-training INT8 from the same calibration images; metadata embedded
   (``export.metadata``);
4. evaluation on the held-out data (float Keras, QAT Keras and the three files; top-1
   agreement of the INT8 file with the QAT Keras model, which must reach
   ``min_agreement``), latency (``export.convert.latency``: the three files timed side by
   side in ``LATENCY_ROUNDS`` rounds, the best round quoted), params and MACs
   (``tfresnet.profile``);
5. files: the three ``.tflite``, ``labels.txt``, the results JSON and the merged
   ``models.json``, written by ``export.job.manifest.publish``: under a lock on the folder,
   to temporary names first, renamed so that no manifest entry ever describes a file
   it does not match, even when the export is killed between the renames.

``qat_epochs=0`` skips step 2: the INT8 file is the float model post-training
quantized (converted once, no separate PTQ baseline), compared with the float Keras model,
and the report says no QAT was done. ``--weights imagenet --epochs 0 --qat-epochs 0
--calibration-images FOLDER`` exports the ImageNet classifier itself with the 1,000 ImageNet
labels (:func:`export.job.plan.imagenet_labels`), calibrated on the unlabeled images of FOLDER, which
also measure the INT8 file's top-1 agreement with the float model (no accuracy: no labels).

The job is split along its steps: :mod:`export.job.config` (the settings),
:mod:`export.job.plan` (:class:`ExportPlan`), :mod:`export.job.train_steps` (float
training, QAT), :mod:`export.job.evaluate` (the models and files on the held-out data),
:mod:`export.job.file_metadata` (what each file carries), :mod:`export.job.manifest_fields`
(its ``models.json`` entry), :mod:`export.job.table` (the table),
:mod:`export.job.shipped` (how shipped files name paths and the call),
:mod:`export.job.result` (the figures, the results JSON),
:mod:`export.job.command` (the flags, parsed before TensorFlow loads, and the command
line's ``main``); this module runs the steps in order (:func:`run`).
"""

from __future__ import annotations

import dataclasses
import os

from export import names
from export.convert import formats
from export.convert.converter import calibration_images, to_float32, to_int8
from export.job import class_report, model_card
from export.job.config import ExportConfig
from export.job.evaluate import NO_QAT_LABEL, Variant, agreeing, evaluate
from export.job.file_metadata import with_metadata
from export.job.gates import (
    AgreementError,
    ChanceError,
    agreement_check,
    agreement_refusal,
    chance_check,
    choose_int8,
    loss_warnings,
)
from export.job.manifest import publish
from export.job.manifest_fields import EXTRA_FORMATS, manifest_entry, manifest_header, quantization
from export.job.plan import FILE_KINDS, LATENCY_ROUNDS, ExportPlan, plan_export
from export.job.progress import say
from export.job.result import ExportResult
from export.job.shipped import shipped_call, shipped_checkpoint
from export.job.table import table_text
from export.job.train_steps import float_kept, train_float, train_qat
from export.names import LABELS_FILE, MANIFEST
from tfresnet.data import sources

__all__ = ["AgreementError", "ChanceError", "export", "run"]

# How shipped files name the epochs=0 model (the terminal names its cache file too).
IMAGENET_CHECKPOINT = "the ImageNet classifier (keras.applications weights)"


def export(model_or_run=None, config: ExportConfig | None = None,
           **overrides) -> ExportResult:
    """Exports a trained model (or one trained here) to verified full-INT8 TFLite files.

    Args:
      model_or_run: the float model: a ``keras.Model`` (a registry model, as
        ``tfresnet.train.fit`` returns it or a builder makes it; another needs
        ``model=``), a ``FitResult`` (its data too), a ``tfresnet.train`` run folder or
        ``.keras`` file; None trains one here first (``epochs``).
      config: an :class:`ExportConfig` (default ``ExportConfig()``).
      **overrides: its settings by name (``qat_epochs=1``, ``out="assets"``,
        ``weights="imagenet"``, ...).

    Returns:
      The :class:`ExportResult`: files written, the table's rows, accuracies,
      agreement, warnings, the shipped file's manifest entry, the results JSON path.

    Raises:
      TypeError: an unknown setting (named, with the closest one), before anything is
        trained or written.
      ValueError: a bad value (one line, naming it), before anything is trained or
        written.
      AgreementError, ChanceError: the gates refused the model; nothing was written.
    """
    plan = plan_export(ExportConfig.create(config, **overrides), model_or_run)
    return run(plan, command=shipped_call(plan))


def _print(text):
    print(text, flush=True)


def run(plan: ExportPlan, command: str, show=_print) -> ExportResult:
    """Runs the export the plan describes and writes its files; ``command``: how the
    results JSON and the model card name the call that made them; ``show`` prints the
    results table (a command line says its warnings in its flags).

    Of the QAT and PTQ INT8 files the one right on more held-out images ships as
    ``STEM_int8.tflite`` (:func:`export.job.gates.choose_int8`); files an earlier export
    of the stem wrote and this one does not are removed.

    Raises:
      AgreementError: when the shipped INT8 file's top-1 agreement with its Keras model
        is clearly below ``min_agreement`` for the number of held-out images
        (:func:`export.job.gates.agreement_check`; nothing is written).
      ChanceError: a float model not above chance (without ``allow_chance``).
    """
    from tfresnet.training.strategy import make_strategy

    strategy = make_strategy(plan.config.strategy)
    float_fit = qat_fit = qat_model = None
    if plan.checkpoint is None:
        float_model, float_fit = train_float(plan, strategy)
    else:
        float_model = plan.checkpoint
        say(f"Float model from {plan.source.describe()}")
    if plan.qat:
        qat_model, qat_fit = train_qat(plan, float_model, strategy, float_fit)
    else:
        say("qat_epochs=0: no quantization-aware training; the INT8 file is the float "
            "model with post-training full-INT8 quantization")
    calibration = calibration_images(plan.split, plan.config.calibration, plan.config.seed)
    variants, debug_rows = _convert(plan, float_model, qat_model, calibration)
    measured = _measure(plan, float_model, qat_model, variants, debug_rows)
    result = _result(plan, measured, command=command, float_fit=float_fit, qat_fit=qat_fit,
                     calibrated=len(calibration))
    show(result.table)
    if not result.agreement_test["passed"]:
        raise agreement_refusal(result.agreement_test, file=result.shipped_file,
                                reference=result.to_json()["agreement_reference"],
                                images=measured.images)
    return _publish(plan, result, measured)


def _convert(plan, float_model, qat_model, calibration):
    """(the models and files to compare, as Variants; the per-layer error rows or None)."""
    images = "images" if plan.imagenet else "training images"
    wanted = plan.config.calibration
    say(f"Converting (calibration: {len(calibration)} {images}"
        + ("" if len(calibration) == wanted else f", all there are; calibration={wanted}")
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
        if kind in plan.config.formats:
            converted[kind] = formats.convert_format(float_model, kind, calibration)
    debug_rows = None
    if plan.config.float_layers or plan.config.debug_quantization:
        from export.convert import int8_errors
    if plan.config.float_layers:
        converted["mixed_int8"] = int8_errors.mixed_int8(float_model, calibration,
                                                   plan.config.float_layers, io=plan.io)
        say(f"float_layers: {', '.join(int8_errors.float_layers_of(converted['mixed_int8']))} "
            f"compute in float in {plan.file('mixed_int8')}")
    if plan.config.debug_quantization:
        say("Measuring the per-layer INT8 error (debug_quantization)")
        debug_rows = int8_errors.layer_errors(float_model, calibration)
    variants = [Variant(kind) for kind in keras_kinds] + [
        Variant(kind, converted[kind],
                name=None if plan.qat or kind != "int8" else NO_QAT_LABEL)
        for kind in FILE_KINDS if kind in converted]
    return variants, debug_rows


@dataclasses.dataclass(frozen=True)
class _Measured:
    """What the evaluation found: the Variants (their answers, files and latency), the
    shipped one and its reference, the image count, the labels, the profile, the
    per-class figures and the per-layer error rows (or None)."""

    variants: list
    shipped: Variant
    reference: Variant
    count: int
    truth: list
    profile: object
    images: str
    per_class: dict | None
    debug_rows: list | None

    @property
    def by_kind(self) -> dict:
        return {v.kind: v for v in self.variants}


def _measure(plan, float_model, qat_model, variants, debug_rows) -> _Measured:
    """Evaluates, profiles and times every model and file; names the files once the
    shipped one is known and embeds their metadata."""
    import tfresnet
    from export.convert import latency

    threads = plan.config.threads
    what = (f"{plan.split.num_val} calibration_images (unlabeled)" if plan.imagenet else
            f"{plan.split.num_val} held-out images")
    say(f"Evaluating on {what}; timing ({threads} thread, XNNPACK)")
    count, truth = evaluate(plan.split, float_model, qat_model, variants, threads=threads)
    profile = tfresnet.profile(float_model, print_table=False)
    timed = latency.alternate_rounds({v.kind: v.tflite for v in variants if v.tflite},
                                     rounds=LATENCY_ROUNDS, threads=threads)
    by_kind = {v.kind: v for v in variants}
    ships = "int8" if plan.imagenet else choose_int8(by_kind)
    for v in variants:
        if v.tflite is not None:  # named once the shipped file is known; metadata inside
            v.latency = latency.best_round(timed[v.kind])
            v.file = plan.file(v.kind, ships)
            v.tflite = with_metadata(plan, v.tflite, v.kind, ships)
    reference = by_kind["qat_keras" if ships == "int8" and plan.qat else "float32_keras"]
    per_class = None if plan.imagenet or not count else class_report.class_figures(
        {v.label: v.top1 for v in variants}, truth, plan.labels,
        reference=by_kind["float32_keras"].label, shipped=by_kind[ships].label)
    return _Measured(variants, by_kind[ships], reference, count, truth, profile,
                     "images (unlabeled)" if plan.imagenet else "held-out images",
                     per_class, debug_rows)


def _warnings(plan, m: _Measured, float_fit, qat_fit) -> tuple[list, list]:
    """(the run's warnings, the INT8 comparisons): the checkpoint's and the trainings'
    health warnings, the chance gate's (ChanceError without ``allow_chance``), clear
    INT8 losses."""
    from tfresnet.training import fitting

    warnings = list(plan.training_warnings)
    for fit in (f for f in (float_fit, qat_fit) if f is not None):
        found = (fit.config.get("result") or {}).get("warnings") or fitting.health_warnings(fit)
        warnings += [w for w in found if w not in warnings]
    if plan.imagenet:
        return warnings, []
    chance = chance_check(plan, m.by_kind["float32_keras"].correct, m.count)
    warnings += [chance] if chance else []
    losses, comparisons = loss_warnings(m.by_kind, m.truth, m.count) if m.count else ([], [])
    return warnings + [w for w in losses if w not in warnings], comparisons


def _rows(plan, m: _Measured) -> list[dict]:
    """The table's rows: one a Keras model or file, its figures."""
    accuracy = (lambda v: None) if plan.imagenet else (
        lambda v: v.correct / m.count if m.count else float("nan"))
    return [{"kind": v.kind, "model": v.label, "file": v.file,
             "quantization": quantization(v.kind), "ship": v is m.shipped,
             "size_bytes": v.size, "params": m.profile.params, "macs": m.profile.macs,
             "latency_ms": v.latency.median_ms if v.latency else None,
             "latency": v.latency.to_dict() if v.latency else None,
             "accuracy": accuracy(v)} for v in m.variants]


def _result(plan, m: _Measured, *, command, float_fit, qat_fit, calibrated) -> ExportResult:
    """The :class:`ExportResult` of a measured export (its files named, not written)."""
    c, per_class = plan.config, m.per_class
    rows = _rows(plan, m)
    for row in rows:
        row["per_class_accuracy"] = per_class and per_class["per_class_accuracy"][row["model"]]
    same = agreeing(m.shipped, m.reference)
    agreement = same / m.count if m.count else float("nan")
    warnings, comparisons = _warnings(plan, m, float_fit, qat_fit)
    kept = float_kept(plan, float_fit)
    details = _details(plan, m, command=command, float_fit=float_fit, qat_fit=qat_fit,
                       calibrated=calibrated, kept=kept, comparisons=comparisons)
    table = table_text(plan, m, rows, agreement, kept, warnings)
    entries = [{**manifest_entry(plan, v, row["accuracy"], m.profile, ship=v is m.shipped),
                "warnings": warnings} for v, row in zip(m.variants, rows) if v.tflite]
    return ExportResult(
        out=plan.out, files=tuple(sorted([*_file_contents(plan, m), MANIFEST])),
        results_file=plan.results_file, rows=tuple(rows), held_out_images=m.count,
        agreement=agreement, agreement_with=m.reference.kind,
        agreement_test=agreement_check(same, m.count, c.min_agreement),
        shipped_file=m.shipped.file, shipped_model=m.shipped.label,
        warnings=tuple(warnings),
        manifest_entries=tuple(entries),
        table=table, details=details)


def _details(plan, m, *, command, float_fit, qat_fit, calibrated, kept,
             comparisons) -> dict:
    """The results JSON beside the figures the result owns: the settings, the data, the
    environment, per-class figures, the comparisons."""
    c, imagenet, per_class = plan.config, plan.imagenet, m.per_class
    details = {
        "command": command, "model": plan.name,
        "paper": plan.info.paper, "recipe": plan.info.recipe,
        "environment": model_card.environment(),
        "model_kwargs": plan.model_kwargs, "res": plan.res, "io": plan.io,
        "dataset": "imagenet" if imagenet else sources.shipped_name(plan.split.name),
        "calibration_images_folder": (sources.shipped_name(plan.split.name) if imagenet
                                      else None),
        "labels": list(plan.labels),
        "labels_source": ("tensorflow-datasets imagenet2012/labels.txt (order) and "
                          "siscore IMAGENET_LABELS_LIST (names)") if imagenet else None,
        "accuracy_note": ("no labels: the images are unlabeled, so no accuracy; the INT8 "
                          "file's top-1 agreement with the float model is reported")
                         if imagenet else None,
        "num_train": plan.split.num_train,
        "skipped_images": [os.path.relpath(os.path.abspath(path), plan.split.name)
                           for path in plan.split.skipped],  # inside the data folder
        "checkpoint": (IMAGENET_CHECKPOINT if imagenet else
                       shipped_checkpoint(plan.source and plan.source.path)),
        "seed": c.seed,
        "weights": (None if c.transfer.weights is None
                    else sources.shipped_name(c.transfer.weights)),
        "transfer_phases": (float_fit.config.get("phases") if float_fit is not None
                            and c.transfer.weights is not None else None),
        "float_epochs": None if float_fit is None else c.epochs,
        "float_kept": kept,
        "qat_epochs": c.qat_epochs, "qat": plan.qat, "formats": list(c.formats),
        "quantization": ("quantization-aware training, then full INT8" if plan.qat else
                         "post-training full-INT8 quantization only; no QAT was done"),
        "batch_size_per_replica": c.batch_size,
        "augment": c.augment, "calibration_images": calibrated,
        "float_lr": None if float_fit is None else float_fit.config.get("lr"),
        "qat_lr": qat_fit.config.get("lr") if qat_fit else None, "threads": c.threads,
        "min_agreement": c.min_agreement, "int8_comparisons": comparisons,
        "class_counts": per_class and per_class["class_counts"],
        "class_difference_points": class_report.DIFFERENCE_POINTS,
        "classes_int8_differs": per_class and [
            {"class": name, "float32_keras": a, "int8": b}
            for name, a, b in per_class["differing"]],
    }
    if c.float_layers:
        details["float_layers"] = list(c.float_layers)
    if m.debug_rows is not None:
        from export.convert import int8_errors
        details["quantization_debug"] = {
            "file": f"{plan.report_stem}{names.QUANT_DEBUG_SUFFIXES[1]}",
            "worst": [{"layer": r.layer, "op": r.op, "rmse_over_scale": r.normalised,
                       "mac_share": r.mac_share} for r in int8_errors.worst(m.debug_rows)]}
    return details


def _file_contents(plan, m, result=None) -> dict:
    """{name: bytes} of every file but models.json (the results JSON and the model card
    None without ``result``: their names are known first)."""
    files = {v.file: v.tflite for v in m.variants if v.tflite}
    files[LABELS_FILE] = "".join(f"{label}\n" for label in plan.labels).encode()
    if m.per_class:
        files[plan.confusion_file] = m.per_class["png"]
    if m.debug_rows is not None:
        from export.convert import int8_errors
        files.update(int8_errors.report_files(m.debug_rows, plan.report_stem))
    record = None if result is None else result.to_json()
    files[plan.results_file] = record and _json_bytes(record)
    files[plan.model_card_file] = record and model_card.model_card(record).encode()
    return files


def _json_bytes(record) -> bytes:
    from tfresnet.utils import fileio

    return fileio.to_json(record).encode()


def _publish(plan, result: ExportResult, m: _Measured) -> ExportResult:
    """Writes the files (renamed into place together, models.json merged) and removes
    the earlier files of this stem that this export does not write."""
    files = _file_contents(plan, m, result)
    stale = sorted(plan.own_files() - set(files))
    earlier = [name for name in stale if os.path.lexists(os.path.join(plan.out, name))]
    removed = publish(plan.out, files, list(result.manifest_entries),
                      header=manifest_header(), say=say,
                      stale=stale)
    if earlier:
        say(f"Removed {', '.join(earlier)}: an earlier export's files of this stem that "
            f"this export does not write")
    if removed:
        say(f"Removed {len(removed)} temporary file(s) an interrupted export left in "
            f"{plan.out}")
    say(f"Wrote {', '.join(files)}, {MANIFEST} to {plan.out}")
    return result

