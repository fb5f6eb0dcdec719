"""The export's settings: :class:`ExportConfig`, every default once, checked once.

:func:`export.job.pipeline.export` (``export.tflite.export``) takes an ``ExportConfig``
plus keyword overrides (its fields, and :class:`tfresnet.training.config.TransferConfig`'s
for transfer learning), built by :meth:`ExportConfig.create`; ``python -m export.tflite``
builds the same object from its flags (:func:`export.job.command.config_of`). No
TensorFlow: every check here runs before it loads. Errors speak the settings' names
(``... Received: alpha=0``); the command line says its flags instead
(:func:`export.job.command.flag_words`).

The checks that need the model or the data (a model name, MobileNet's alpha and side
rules, the checkpoint, the classes) are :func:`export.job.plan.plan_export`'s.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os

from export.convert import formats as formats_lib
from export.convert.defaults import CALIBRATION_IMAGES, IO_NAMES
from tfresnet.training import recipes
from tfresnet.training.config import TransferConfig, apply_overrides, setting_names
from tfresnet.utils.flags import (
    AUGMENTATIONS,
    DEFAULT_STRATEGY,
    MAX_EPOCHS,
    MAX_IMAGES,
    MAX_LR,
    MAX_THREADS,
    STRATEGIES,
)


class SettingError(ValueError):
    """A bad setting, said in the settings' names (``... Received: alpha=0``); the command
    line says its flags instead (:func:`export.job.command.flag_words`)."""


DEFAULT_MODEL = "mobilenet_v1"  # without a checkpoint or a model
DEFAULT_EPOCHS = 4          # float training on the bundled digits when no checkpoint
QAT_LR_FACTOR = 0.1         # QAT fine-tunes at this fraction of the float learning rate
MAX_SEED = 2 ** 32 - 1
# The settings that take a local path: shipped files name them by base name only.
PATH_SETTINGS = ("dataset", "calibration_images", "out", "weights", "data_dir", "manual_dir")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Every setting of the export with its one default (``python -m export.tflite``'s
    flags are these names, ``_`` written ``-``).

    Attributes:
      model: a registry name; None: the checkpoint's, else :data:`DEFAULT_MODEL`.
      alpha, res: MobileNet's width multiplier and every model's input side; None: the
        checkpoint's, else the builder's default and the paper's input.
      dataset: a :func:`tfresnet.data.load` spec; None: the data the checkpoint was
        trained on, else ``"digits"``. data_dir, manual_dir, skip_bad_images: as for
        :func:`tfresnet.data.load`.
      epochs: float training epochs when no model is given (None: :data:`DEFAULT_EPOCHS`);
        0 with ``weights="imagenet"``, ``qat_epochs=0`` and ``calibration_images``
        exports the ImageNet classifier itself.
      qat_epochs: quantization-aware fine-tuning epochs; 0: post-training INT8 only.
      calibration_images: with ``epochs=0``: a folder of unlabeled images.
      lr: the float learning rate (None: the model recipe's); qat_lr: QAT's (None:
        :data:`QAT_LR_FACTOR` x the float one).
      batch_size, augment: images per replica per step and the augmentation, float
        training and QAT (the short-run preset, ``tfresnet.training.recipes``).
      io: the INT8 file's input/output type, one of ``IO_NAMES``.
      formats: the TFLite formats to write (``export.convert.formats.FORMATS``), int8
        among them.
      debug_quantization: also write the per-layer INT8 error report.
      float_layers: Keras layers kept float in an extra post-training file.
      out: the output folder.
      calibration: training images that calibrate the INT8 conversions.
      threads: interpreter threads for the latency figures.
      min_agreement: the top-1 agreement the shipped INT8 file must reach with its
        Keras model (refused only when clearly below, for that many images).
      strategy: the tf.distribute strategy of the training (not ``multiworker``).
      seed: the data split's, training's and calibration's; None: the checkpoint's,
        else ``DEFAULT_SEED``.
      allow_chance: publish a float model not above chance, with a warning.
      qat_unfreeze: train the layers frozen in the float model during QAT too.
      verbose: training's Keras verbosity (0, 1 or 2).
      transfer: transfer learning's settings (``weights=`` ... as overrides).
    """

    model: str | None = None
    alpha: float | None = None
    res: int | None = None
    dataset: str | None = None
    data_dir: str | None = None
    manual_dir: str | None = None
    skip_bad_images: bool = False
    epochs: int | None = None
    qat_epochs: int = 1
    calibration_images: str | os.PathLike | None = None
    lr: float | None = None
    qat_lr: float | None = None
    batch_size: int = recipes.SHORT_RUN_BATCH_SIZE
    augment: str = recipes.SHORT_RUN_AUGMENT
    io: str = "uint8"
    formats: tuple = formats_lib.DEFAULT_FORMATS
    debug_quantization: bool = False
    float_layers: tuple = ()
    out: str | os.PathLike = "android_demo_assets"
    calibration: int = CALIBRATION_IMAGES
    threads: int = 1
    min_agreement: float = 0.99
    strategy: str = DEFAULT_STRATEGY
    seed: int | None = None
    allow_chance: bool = False
    qat_unfreeze: bool = False
    verbose: int = 2
    transfer: TransferConfig = TransferConfig()

    def __post_init__(self):
        for key in ("formats", "float_layers"):  # any sequence, kept as a tuple
            value = getattr(self, key)
            if isinstance(value, str) or not hasattr(value, "__iter__"):
                raise SettingError(f"{key} must be a list of names. Received: {key}={value!r}")
            object.__setattr__(self, key, tuple(value))
        self._check_values()
        self._check_together()

    def _check_values(self):
        """Each setting on its own."""
        for key in ("model", "dataset", "data_dir", "manual_dir", "calibration_images"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, (str, os.PathLike))
                                      or not os.fspath(value)):
                raise SettingError(f"{key} must be a non-empty name. Received: {key}={value!r}")
        if not isinstance(self.out, (str, os.PathLike)) or not os.fspath(self.out):
            raise SettingError(f"out must be a folder. Received: out={self.out!r}")
        for key, low, high in (("epochs", 0, MAX_EPOCHS), ("qat_epochs", 0, MAX_EPOCHS),
                               ("batch_size", 1, None), ("calibration", 1, MAX_IMAGES),
                               ("threads", 1, MAX_THREADS), ("res", 1, None),
                               ("seed", 0, MAX_SEED)):
            _integer(key, getattr(self, key), low, high)
        for key in ("lr", "qat_lr"):
            _number(key, getattr(self, key), 0, MAX_LR, low_open=True)
        _number("alpha", self.alpha, 0, None, low_open=True)  # the model's rule: the plan's
        _number("min_agreement", self.min_agreement, 0, 1)
        if self.min_agreement is None:
            raise SettingError("min_agreement must be a number from 0 to 1. "
                             "Received: min_agreement=None")
        for key, choices in (("io", IO_NAMES), ("augment", AUGMENTATIONS),
                             ("strategy", STRATEGIES), ("verbose", (0, 1, 2))):
            if getattr(self, key) not in choices:
                raise SettingError(f"{key} must be one of {', '.join(map(str, choices))}. "
                                 f"Received: {key}={getattr(self, key)!r}")
        for name in self.formats:
            if name not in formats_lib.FORMATS:
                close = difflib.get_close_matches(str(name), formats_lib.FORMATS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise SettingError(f"unknown format {name!r}: {hint}choose from "
                                 f"{', '.join(formats_lib.FORMATS)}. "
                                 f"Received: formats={','.join(map(str, self.formats))}")
        for key in ("skip_bad_images", "debug_quantization", "allow_chance", "qat_unfreeze"):
            if not isinstance(getattr(self, key), bool):
                raise SettingError(f"{key} must be True or False. "
                                 f"Received: {key}={getattr(self, key)!r}")
        if not isinstance(self.transfer, TransferConfig):
            raise SettingError(f"transfer must be a TransferConfig. "
                             f"Received: transfer={self.transfer!r}")

    def _check_together(self):
        """The settings that depend on each other (none needs the model or the data)."""
        t = self.transfer
        if self.strategy == "multiworker":
            raise SettingError(
                "strategy='multiworker' is not supported by the export (its collective "
                "ops must be set up before TensorFlow starts): train on the cluster with "
                "python -m tfresnet.train --strategy multiworker and export the run. "
                "Received: strategy='multiworker'")
        if self.epochs == 0:
            if t.weights != "imagenet" or self.qat_epochs != 0 or not self.calibration_images:
                raise SettingError("epochs=0 exports the ImageNet classifier untrained: give "
                                 "weights='imagenet' qat_epochs=0 calibration_images=FOLDER. "
                                 f"Received: epochs=0, weights={t.weights}, "
                                 f"qat_epochs={self.qat_epochs}, "
                                 f"calibration_images={self.calibration_images}")
            if self.allow_chance:
                raise SettingError("allow_chance skips the check that the float model is "
                                 "above chance, which epochs=0 does not make (its images "
                                 "have no labels): drop it. "
                                 "Received: allow_chance=True, epochs=0")
            given = [(key, value) for key, value in (
                ("dataset", self.dataset), *dataclasses.asdict(t).items()) if key != "weights"
                and value is not None]
            if given:
                key, value = given[0]
                raise SettingError(f"{key} does not apply to epochs=0 (the ImageNet "
                                 f"classifier, untrained; its images come from "
                                 f"`calibration_images`). Received: {key}={value}")
        elif self.calibration_images is not None:
            raise SettingError("calibration_images applies to epochs=0 (the ImageNet "
                             "classifier); to train, give the labeled data as `dataset`. "
                             f"Received: calibration_images={self.calibration_images}")
        elif t.weights is not None:
            from tfresnet.training import phases
            phases.plan_phases(self.float_epochs, t.freeze_epochs, t.unfreeze_from,
                               t.fine_tune_lr)
        if self.float_layers and self.io == "float32":
            raise SettingError("float_layers writes a uint8 or int8 I/O file: choose another "
                             "`io`. Received: io='float32'")
        if "int8" not in self.formats:
            raise SettingError(f"formats must include int8: the shipped full-integer file, "
                             f"whose agreement with the Keras model gates the export. "
                             f"Received: formats={','.join(self.formats)}")
        for key in ("qat_lr", "qat_unfreeze"):
            if getattr(self, key) and self.qat_epochs == 0:
                raise SettingError(f"{key} applies to the quantization-aware fine-tuning, "
                                 f"which qat_epochs=0 skips. "
                                 f"Received: {key}={getattr(self, key)}, qat_epochs=0")

    @property
    def float_epochs(self) -> int:
        """The float training's epochs (when no trained model is given)."""
        return DEFAULT_EPOCHS if self.epochs is None else self.epochs

    @property
    def qat(self) -> bool:
        """False with ``qat_epochs=0``: the INT8 file is post-training quantized."""
        return self.qat_epochs > 0

    @classmethod
    def create(cls, config: ExportConfig | None = None, **overrides) -> ExportConfig:
        """``config`` (default ``ExportConfig()``) with ``overrides``: its fields, or
        :class:`TransferConfig`'s (``weights=``, ``freeze_epochs=``, ...).

        Raises:
          TypeError: an override that is no setting (named, with the closest one), as
            Python says an unexpected keyword and ``FitConfig.create`` says it; a
            ``config`` that is no ExportConfig.
          ValueError: a bad value (:class:`SettingError`).
        """
        config = cls() if config is None else config
        if not isinstance(config, cls):
            raise TypeError(f"config must be an ExportConfig. Received: config={config!r}")
        unknown = sorted(set(overrides) - set(cls.names()))
        if unknown:
            close = difflib.get_close_matches(unknown[0], cls.names(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TypeError(f"export() got an unexpected keyword argument {unknown[0]!r}: "
                            f"{hint}its settings are ExportConfig's and TransferConfig's "
                            f"fields ({', '.join(cls.names())}). "
                            f"Received: {unknown[0]}={overrides[unknown[0]]!r}")
        try:
            return apply_overrides(config, overrides)
        except SettingError:
            raise
        except ValueError as err:  # TransferConfig's and the phases' checks: a setting's
            raise SettingError(str(err)) from None

    @classmethod
    def names(cls) -> tuple:
        """Every setting's name, ExportConfig's then TransferConfig's (what ``create``
        takes)."""
        return setting_names(cls)

    def settings(self) -> dict:
        """Every setting by name (transfer learning's flattened in), as ``create`` takes
        them."""
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.name != "transfer"}, **dataclasses.asdict(self.transfer)}


def _integer(key, value, low, high):
    if value is None:
        return
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low
            or (high is not None and value > high)):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise SettingError(f"{key} must be an integer {bounds}. Received: {key}={value!r}")


def _number(key, value, low, high, *, low_open=False):
    if value is None:
        return
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < low or (low_open and value == low)
            or (high is not None and value > high)):
        bounds = (f"{'>' if low_open else '>='} {low:g}"
                  + (f" and <= {high:g}" if high is not None else ""))
        raise SettingError(f"{key} must be a number {bounds}. Received: {key}={value!r}")
