"""The export job's evaluation and results: what is compared, and how it is written.

:func:`evaluate` runs the Keras models and the ``.tflite`` files (:class:`Variant`) on
the held-out data; :func:`with_metadata` embeds labels and normalization in a file
(``export.metadata``); :func:`manifest_entry` and :func:`manifest_header` are its
``models.json`` fields; :func:`results_table` is the table printed at the end.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from export.convert.converter import Runner, TensorInfo, io_tensors
from export.convert.formats import FORMATS
from export.names import LABELS_FILE
from export.job.config import PATH_SETTINGS
from export.job.plan import AUTHOR, INT8_IO_KINDS
from export.names import EXPORT_PROG
from tfresnet.data import pipelines
from tfresnet.data import sources
from tfresnet.training.runschema import RUN_FILES
from tfresnet.utils import tables

# What is compared at the end, in table order: kind -> the table's label.
LABELS = {"float32_keras": "float32 Keras", "qat_keras": "QAT Keras",
          "float32": "float32 TFLite", "float16": "float16 TFLite",
          "dynamic": "dynamic-range TFLite", "int16x8": "int16x8 TFLite",
          "ptq_int8": "PTQ INT8 TFLite", "mixed_int8": "mixed INT8/float TFLite",
          "int8": "QAT INT8 TFLite"}
# --float-layers: the PTQ file with those layers float (export.convert.debug.mixed_int8)
MIXED_NOTE = ("mixed INT8/float: not integer-only (NNAPI/NPU will fall back to CPU for "
              "these ops)")
# The --formats beside int8: post-training conversions of the float model, float32 I/O.
EXTRA_FORMATS = ("float16", "dynamic", "int16x8")
NO_QAT_LABEL = "PTQ INT8 TFLite (no QAT)"  # --qat-epochs 0: the int8 file is the PTQ one


@dataclasses.dataclass
class Variant:
    """One model compared at the end: a Keras model or an exported ``.tflite``."""

    kind: str                     # a key of LABELS; the file kinds: plan.FILE_KINDS
    tflite: bytes | None = None
    file: str | None = None
    correct: int = 0
    top1: list = dataclasses.field(default_factory=list)
    latency: object = None
    name: str | None = None       # the table's label when not LABELS[kind]

    @property
    def label(self) -> str:
        return self.name or LABELS[self.kind]

    @property
    def size(self) -> int | None:
        return None if self.tflite is None else len(self.tflite)


def _val_batches(split, batch_size=256):
    """The held-out images in uint8 batches with their labels."""
    for images, labels in split.val.batch(batch_size).as_numpy_iterator():
        yield images, labels


def evaluate(split, float_model, qat_model, variants, threads=1):
    """Top-1 of the Keras models and the TFLite files on the held-out data.

    Fills each Variant's ``correct`` and ``top1``; returns (number of images, labels).
    """
    keras_models = {"float32_keras": float_model, "qat_keras": qat_model}  # qat: None without QAT
    runners = {v.kind: Runner(v.tflite, threads=threads) for v in variants if v.tflite}
    count, truth = 0, []
    for images, labels in _val_batches(split):
        for v in variants:
            if v.tflite is None:
                probs = keras_models[v.kind].predict(pipelines.normalize(images), verbose=0)
            else:
                probs = runners[v.kind].predict(images)
            top1 = np.argmax(probs, axis=-1)
            v.top1.extend(top1.tolist())
            v.correct += int(np.sum(top1 == labels))
        truth.extend(labels.tolist())
        count += len(labels)
    return count, truth


def agreeing(a: Variant, b: Variant) -> int:
    """The number of held-out images on which ``a`` and ``b`` give the same top-1."""
    return int(np.sum(np.asarray(a.top1) == np.asarray(b.top1)))


def with_metadata(plan, model_bytes, kind, ships="int8"):
    """The ``.tflite`` of ``kind`` with its metadata: labels, normalization, description;
    named ``plan.file(kind, ships)``."""
    from export.metadata import writer as metadata

    from tfresnet import __version__

    chosen = ("; the file to ship: right on more held-out images than the "
              "quantization-aware trained one" if kind == ships == "ptq_int8" else "")
    what = {"int8": ("quantization-aware trained, full INT8" if plan.qat else
                     "post-training quantized (no quantization-aware training), full INT8"),
            "ptq_int8": f"post-training quantized, full INT8{chosen}",
            "float32": "float32",
            "mixed_int8": f"post-training INT8 with {', '.join(plan.config.float_layers)} in float "
                          f"({MIXED_NOTE})",
            **{k: f"{k}, post-training: {FORMATS[k].description}" for k in EXTRA_FORMATS}}[kind]
    io = plan.io if kind in INT8_IO_KINDS else "float32"
    pixels = ("raw RGB bytes (the input quantization, scale 1/128 zero point 128, is the "
              "normalization)" if io == "uint8" else
              f"{io} (normalize (pixel - {pipelines.MEAN:g}) / {pipelines.STD:g})")
    trained_on = ("ImageNet (keras.applications weights)" if plan.imagenet else
                  sources.shipped_name(plan.split.name))  # never a local path in a shipped file
    description = (f"{plan.info.paper}. Image classifier trained on {trained_on} "
                   f"({len(plan.labels)} classes), {what}; {plan.res}x{plan.res} {io} input: "
                   f"{pixels}.")
    return metadata.add_metadata(
        model_bytes, name=plan.file(kind, ships)[:-len(".tflite")], description=description,
        version=__version__, author=AUTHOR, labels=plan.labels, mean=pipelines.MEAN,
        std=pipelines.STD, image_size=(plan.res, plan.res))


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


def shipped_checkpoint(path: str | None) -> str | None:
    """How shipped files name a ``--checkpoint``: its base name (a run file such as
    ``model.keras`` with its run folder's), never the local path."""
    if path is None:
        return None
    base = sources.shipped_name(path)
    if base in (RUN_FILES.model, RUN_FILES.best):
        return f"{sources.shipped_name(os.path.dirname(os.path.abspath(path)))}/{base}"
    return base


def shipped_call(plan) -> str:
    """How shipped files name an ``export.tflite.export(...)`` call: the model given
    (a path by its base name), then every setting that differs from ``ExportConfig()``
    as the plan resolved it (paths by their base names, never a local path)."""
    from export.job.config import ExportConfig

    path = plan.source and plan.source.path
    what = ("None" if plan.source is None or plan.imagenet  # epochs=0: loaded by the plan
            else repr(shipped_checkpoint(path)) if path else "model")
    default = ExportConfig().settings()
    given = [f"{key}={_shipped_value(key, value)!r}"
             for key, value in plan.config.settings().items() if value != default[key]]
    return f"export.tflite.export({', '.join([what, *given])})"


def _shipped_value(key, value):
    if key in PATH_SETTINGS and value is not None:
        return sources.shipped_name(os.fspath(value))
    return list(value) if isinstance(value, tuple) else value


def _tensor_dict(t: TensorInfo) -> dict:
    return {"shape": list(t.shape), "dtype": t.dtype, "scale": t.scale,
            "zero_point": t.zero_point}


def quantization(kind) -> dict | None:
    """What a file kind stores and computes in (``export.convert.formats.Format.quantization``);
    None for the Keras models."""
    if kind == "float32":
        return {"format": "float32", "weights": "float32", "activations": "float32",
                "description": "no quantization", "integer_only": False}
    if kind in ("int8", "ptq_int8"):
        return FORMATS["int8"].quantization()
    if kind == "mixed_int8":
        return {"format": "mixed_int8", "weights": "int8 (float in the float layers)",
                "activations": "int8 (float in the float layers)",
                "description": MIXED_NOTE, "integer_only": False}
    return FORMATS[kind].quantization() if kind in FORMATS else None


def manifest_entry(plan, v: Variant, accuracy, profile, ship: bool) -> dict:
    """The models.json entry of one exported file; ``ship``: the file to ship."""
    import hashlib

    tensors = io_tensors(v.tflite)
    return {
        "file": v.file, "name": v.file[:-len(".tflite")], "model": plan.name,
        "variant": {"int8": "qat_int8" if plan.qat else "ptq_int8", "ptq_int8": "ptq_int8",
                    **{k: k for k in ("float32", "mixed_int8", *EXTRA_FORMATS)}}[v.kind],
        "ship": ship,
        "qat": plan.qat and v.kind == "int8", "quantization": quantization(v.kind),
        **{k: plan.model_kwargs[k] for k in ("alpha",) if k in plan.model_kwargs},
        "input_size": [plan.res, plan.res], "input": _tensor_dict(tensors["input"]),
        "output": _tensor_dict(tensors["output"]),
        "normalization": {"mean": pipelines.MEAN, "std": pipelines.STD,
                          "rule": "(pixel - mean) / std"},
        "labels_file": LABELS_FILE, "labels": plan.labels,
        "dataset": "imagenet" if plan.imagenet else sources.shipped_name(plan.split.name),
        "accuracy": accuracy, "latency_ms": v.latency.median_ms,
        "latency": v.latency.to_dict(), "params": profile.params, "macs": profile.macs,
        "size_bytes": v.size, "sha256": hashlib.sha256(v.tflite).hexdigest(),
    }


def manifest_header() -> dict:
    """The top-level models.json fields an export sets."""
    return {"generator": EXPORT_PROG, "normalization": {"mean": pipelines.MEAN, "std": pipelines.STD,
                                                 "rule": "(pixel - mean) / std"}}


def results_table(rows, agreement, count, reference="QAT Keras", int8="QAT INT8 TFLite",
                  images="held-out images") -> str:
    """The comparison table printed at the end (accuracy "-" where there are no labels;
    the file to ship marked ``*`` and named on the last line)."""
    header = ("model", "file", "size", "params", "MACs", "latency", "accuracy")
    body = []
    for r in rows:
        size = "" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f} MB"
        latency = "" if r["latency_ms"] is None else f"{r['latency_ms']:.2f} ms"
        body.append((r["model"], f"{r['file']} *" if r.get("ship") else r["file"] or "-",
                     size, f"{r['params']:,}", f"{r['macs'] / 1e6:.1f}M", latency,
                     "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"))
    shipped = next((r for r in rows if r.get("ship")), None)
    return (tables.table(header, body, left=2, rule=True)
            + f"\ntop-1 agreement, {int8} vs {reference}: {100 * agreement:.2f}% "
              f"of {count} {images}"
            + (f"\n* the file to ship: {shipped['file']} ({shipped['model']})" if shipped
               else ""))
