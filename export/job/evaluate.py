"""The export job's evaluation: every Keras model and ``.tflite`` file on the held-out data.

:class:`Variant` is one model compared at the end (a Keras model or a file: its answers,
file name, size and latency); :func:`evaluate` runs them all on the held-out images and
:func:`agreeing` counts where two give the same top-1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from export.convert.converter import Runner
from tfresnet.data import pipelines

# What is compared at the end, in table order: kind -> the table's label.
LABELS = {"float32_keras": "float32 Keras", "qat_keras": "QAT Keras",
          "float32": "float32 TFLite", "float16": "float16 TFLite",
          "dynamic": "dynamic-range TFLite", "int16x8": "int16x8 TFLite",
          "ptq_int8": "PTQ INT8 TFLite", "mixed_int8": "mixed INT8/float TFLite",
          "int8": "QAT INT8 TFLite"}
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
