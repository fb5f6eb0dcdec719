"""The ``models.json`` fields an export writes: one entry a file (:func:`manifest_entry`),
the top-level ones (:func:`manifest_header`), and what each file kind stores and computes
in (:func:`quantization`). Writing the folder and merging the manifest is
:mod:`export.job.manifest`'s job (which imports no TensorFlow)."""

from __future__ import annotations

import hashlib

from export.convert.converter import TensorInfo, io_tensors
from export.convert.formats import FORMATS
from export.names import EXPORT_PROG, LABELS_FILE
from tfresnet.data import pipelines, sources

# The --formats beside int8: post-training conversions of the float model, float32 I/O.
EXTRA_FORMATS = ("float16", "dynamic", "int16x8")
# --float-layers: the PTQ file with those layers float (export.convert.int8_errors.mixed_int8)
MIXED_NOTE = ("mixed INT8/float: not integer-only (NNAPI/NPU will fall back to CPU for "
              "these ops)")


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


def manifest_entry(plan, v, accuracy, profile, ship: bool) -> dict:
    """The models.json entry of one exported file (an :class:`export.job.evaluate.Variant`
    named, timed and with its metadata); ``ship``: the file to ship."""
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
    return {"generator": EXPORT_PROG,
            "normalization": {"mean": pipelines.MEAN, "std": pipelines.STD,
                              "rule": "(pixel - mean) / std"}}
