"""The metadata each exported ``.tflite`` carries: labels, normalization and a description
of what the file is (:func:`export.metadata.writer.add_metadata` writes it)."""

from __future__ import annotations

from export.convert.formats import FORMATS
from export.job.manifest_fields import EXTRA_FORMATS, MIXED_NOTE
from export.job.plan import AUTHOR, INT8_IO_KINDS
from export.metadata import writer as metadata
from tfresnet import __version__
from tfresnet.data import pipelines, sources


def with_metadata(plan, model_bytes, kind, ships="int8"):
    """The ``.tflite`` of ``kind`` with its metadata: labels, normalization, description;
    named ``plan.file(kind, ships)``."""
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
