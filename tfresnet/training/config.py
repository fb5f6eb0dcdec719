"""A training run's settings: :class:`FitConfig`, every default once, checked once.

:func:`tfresnet.train.fit` takes a ``FitConfig`` plus keyword overrides (its fields, and
:class:`TransferConfig`'s for transfer learning); :func:`tfresnet.training.fitting.fit_run`
trains one run from a ``FitConfig``; :mod:`tfresnet.training.transfer_fit` derives the two
phases' configs from the user's with :func:`dataclasses.replace`. config.json records
the settings named in :data:`RUN_SETTINGS` (a plain run, resolved: the recipe's epochs,
the rate used) or :data:`TRANSFER_SETTINGS` (a transfer run, as given).
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from tfresnet.utils.flags import DEFAULT_STRATEGY, DEFAULT_VAL_FRACTION


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Transfer learning's settings (see :mod:`tfresnet.training.transfer`); without
    ``weights`` none of the others may be given.

    Attributes:
      weights: ``"imagenet"``, a keras.applications ``.h5`` file or a tfresnet run /
        ``.keras`` file; None: no transfer learning.
      freeze_epochs: the bound on the head phase (None: :meth:`phases.Phases.head_bound`).
      unfreeze_from: the stage or layer fine-tuning starts at (None: all).
      fine_tune_lr: the fine-tuning rate (None: a tenth of the recipe's at the batch).
      fine_tune_batchnorm: BatchNormalization trains while fine-tuning (None: frozen).
    """

    weights: str | os.PathLike | None = None
    freeze_epochs: int | None = None
    unfreeze_from: str | None = None
    fine_tune_lr: float | None = None
    fine_tune_batchnorm: bool | None = None

    def __post_init__(self):
        if self.weights is None:
            given = [f.name for f in dataclasses.fields(self)[1:]
                     if getattr(self, f.name) is not None]
            if given:
                raise ValueError(
                    f"`{given[0]}` applies to transfer learning: add "
                    f"`weights` (imagenet, a .h5 file or a run). "
                    f"Received: {given[0]}={getattr(self, given[0])!r}")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Every setting of :func:`tfresnet.train.fit` with its one default.

    Attributes:
      dataset: a :func:`tfresnet.data.load` spec ("digits", "tfds:cifar10", a folder)
        or a loaded :class:`tfresnet.data.DataSplit`.
      epochs: epochs to train; None: the recipe's length (with ``weights``:
        ``tfresnet.training.phases.DEFAULT_EPOCHS``).
      batch_size: images per replica per step; None: the recipe's batch / replicas.
      lr: the learning rate at the global batch, used as given; None: the recipe's
        rate scaled by global batch / recipe batch. With ``weights``: the head phase's
        rate (default ``tfresnet.training.phases.HEAD_LR``, Adam).
      recipe: a name in ``tfresnet.training.recipes.RECIPES`` or a Recipe; None: the model's.
      strategy: one of ``tfresnet.training.strategy.STRATEGIES`` or a tf.distribute.Strategy.
      out_dir: the run directory; None writes nothing.
      seed: seeds Keras, NumPy, Python and the data split, shuffle and augmentation.
      steps_per_epoch: steps per epoch (the data repeats); None: one pass over the data.
      image_size: int or (height, width); None: the model's input size.
      model_kwargs: extra builder arguments (e.g. ``{"alpha": 0.5}``).
      jit_compile: compile the train step with XLA.
      steps_per_execution: training steps run per call of the compiled train function
        (Keras' ``compile(steps_per_execution=)``): the same steps and results, with
        Keras' per-step Python work done once for this many steps (about 7% less CPU
        time on MobileNet v1 0.25 at batch 8). Batch-level callbacks then see every
        ``steps_per_execution``-th batch. None: ``tfresnet.utils.flags.
        STEPS_PER_EXECUTION`` (8), or 1 when one of ``callbacks`` has batch-level hooks or
        the strategy has several replicas (keras#19246); with ``steps_per_epoch`` it must
        divide it.
      mixed_precision: float16 (GPU) / bfloat16 (CPU) compute with float32 variables.
      data_dir, manual_dir, val_fraction: passed to :func:`tfresnet.data.load`.
      verbose: 0 silent, 1 progress bar, 2 one line per epoch.
      weight_decay, momentum: override the recipe's values.
      augment: one of ``tfresnet.utils.flags.AUGMENTATIONS``; None: the model family's.
      sync_batchnorm: BatchNormalization statistics over the global batch.
      deterministic: ``tf.config.experimental.enable_op_determinism()`` (process-wide).
      overwrite: replace a run already in ``out_dir`` instead of refusing/resuming.
      callbacks: extra keras callbacks, run after the package's own.
      recipe_overrides: other Recipe fields to change, e.g. ``{"patience": 2}``.
      skip_bad_images: an image folder's undecodable files are left out (a warning
        names each; config.json's ``skipped_images`` lists them) instead of failing.
      cache_features: when only the ``predictions`` classifier trains and nothing is
        augmented (the frozen phase of transfer learning), train it on the frozen
        backbone's stored features (see
        :func:`tfresnet.training.transfer.feature_cache_reason`); False trains through
        the whole network every step.
      precise_bn: before each validation, set the trained BatchNormalization layers'
        moving statistics to those of their current weights over up to
        ``tfresnet.utils.flags.PRECISE_BN_IMAGES`` (512) training images
        (:mod:`tfresnet.training.precise_bn`); False keeps Keras' moving averages.
      transfer: the transfer-learning settings (:class:`TransferConfig`).
    """

    dataset: object = "digits"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    recipe: object = None
    strategy: object = DEFAULT_STRATEGY
    out_dir: str | os.PathLike | None = None
    seed: int = 0
    steps_per_epoch: int | None = None
    image_size: int | tuple | None = None
    model_kwargs: dict | None = None
    jit_compile: bool = False
    steps_per_execution: int | None = None
    mixed_precision: bool = False
    data_dir: str | None = None
    manual_dir: str | None = None
    verbose: int = 1
    weight_decay: float | None = None
    momentum: float | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    augment: str | None = None
    sync_batchnorm: bool = False
    deterministic: bool = False
    overwrite: bool = False
    callbacks: tuple = ()
    recipe_overrides: dict | None = None
    skip_bad_images: bool = False
    cache_features: bool = True
    precise_bn: bool = True
    transfer: TransferConfig = TransferConfig()

    def __post_init__(self):
        for key in ("epochs", "batch_size", "steps_per_epoch", "steps_per_execution"):
            _positive_int(key, getattr(self, key))
        if self.verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2. Received: verbose={self.verbose!r}")
        seed = self.seed
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
        lr = self.lr
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                               or not math.isfinite(lr) or lr <= 0):
            raise ValueError(f"lr must be a number > 0. Received: lr={lr!r}")
        if self.augment is not None:
            from tfresnet.utils.flags import AUGMENTATIONS
            if self.augment not in AUGMENTATIONS:
                raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}. "
                                 f"Received: augment={self.augment!r}")
        if not isinstance(self.precise_bn, (bool, np.bool_)):
            raise ValueError(f"precise_bn must be True or False. "
                             f"Received: precise_bn={self.precise_bn!r}")
        if not isinstance(self.transfer, TransferConfig):
            raise ValueError(f"transfer must be a TransferConfig. "
                             f"Received: transfer={self.transfer!r}")
        if self.transfer.weights is not None:
            self.phases()  # the phases' checks, before anything is read

    @classmethod
    def create(cls, config: FitConfig | None = None, **overrides) -> FitConfig:
        """``config`` (default ``FitConfig()``) with ``overrides``: its fields, or
        :class:`TransferConfig`'s (``weights=``, ``freeze_epochs=``, ...).

        Raises:
          TypeError: an override that is no field, named, with the fields listed.
          ValueError: a bad value (see :meth:`__post_init__`).
        """
        config = cls() if config is None else config
        if not isinstance(config, cls):
            raise TypeError(f"config must be a FitConfig. Received: config={config!r}")
        unknown = sorted(set(overrides) - set(cls.names()))
        if unknown:
            raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}; "
                            f"its settings are FitConfig's and TransferConfig's fields: "
                            f"{', '.join(cls.names())}")
        return apply_overrides(config, overrides)

    @classmethod
    def names(cls) -> tuple:
        """Every setting's name, FitConfig's then TransferConfig's (what ``create`` takes)."""
        return setting_names(cls)

    def settings(self) -> dict:
        """Every field by name, shallow (a DataSplit or strategy stays itself, unlike
        :func:`dataclasses.asdict`, which deep-copies)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def record(self, keys) -> dict:
        """The fields ``keys`` as config.json holds them (JSON values: a tuple as a list)."""
        return {k: _json_value(getattr(self, k)) for k in keys}

    def phases(self):
        """The two phases of a transfer run, a :class:`tfresnet.training.phases.Phases`
        (checked: :func:`tfresnet.training.phases.plan_phases`)."""
        from tfresnet.training import phases

        t = self.transfer
        return phases.plan_phases(self.epochs, t.freeze_epochs, t.unfreeze_from,
                                  t.fine_tune_lr, bool(t.fine_tune_batchnorm))


def setting_names(cls) -> tuple:
    """The names a settings dataclass with a ``transfer`` field takes in ``create``: its
    own fields, then :class:`TransferConfig`'s (FitConfig, export's ExportConfig)."""
    return (*(f.name for f in dataclasses.fields(cls) if f.name != "transfer"),
            *(f.name for f in dataclasses.fields(TransferConfig)))


def apply_overrides(config, overrides: dict):
    """``config`` (a frozen settings dataclass with a ``transfer`` field) with
    ``overrides``, names already checked: its own fields replaced, TransferConfig's
    inside its ``transfer``."""
    theirs = {f.name for f in dataclasses.fields(TransferConfig)}
    changes = {k: v for k, v in overrides.items() if k not in theirs}
    transfer = {k: v for k, v in overrides.items() if k in theirs}
    if transfer:
        changes["transfer"] = dataclasses.replace(config.transfer, **transfer)
    return dataclasses.replace(config, **changes) if changes else config


# The settings a plain run's config.json records (resolved: the recipe's epochs, the
# rate used, the data's name, ...); the others show in what they make (batch_size in
# global_batch, weight_decay in hyperparameters) or say where and how loudly a run goes.
RUN_SETTINGS = ("model_kwargs", "image_size", "dataset", "val_fraction", "augment",
                "recipe", "lr", "strategy", "epochs", "steps_per_epoch", "seed",
                "mixed_precision", "jit_compile", "steps_per_execution", "sync_batchnorm")
# A transfer run's config.json: these at the top, as given, the rest of the phases'
# settings under "fit" (FIT_SETTINGS); each phase's own config.json is a plain run's.
TRANSFER_SETTINGS = ("model_kwargs", "val_fraction", "seed", "image_size", "epochs", "lr")
# Where the run goes, how loudly, and its data's origin: never in config.json, so a
# resumed run may change them.
UNRECORDED = ("dataset", "out_dir", "overwrite", "verbose", "callbacks", "data_dir",
              "manual_dir", "skip_bad_images", "transfer")
FIT_SETTINGS = tuple(f.name for f in dataclasses.fields(FitConfig)
                     if f.name not in (*TRANSFER_SETTINGS, *UNRECORDED, "recipe"))


def _positive_int(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")


def _json_value(value):
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
