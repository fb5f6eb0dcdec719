"""The export job's plan: its resolved settings and what it loaded, checked first.

:func:`plan_export` turns an :class:`export.job.config.ExportConfig` (checked already)
and the model to export (or None: train one) into a frozen :class:`ExportPlan` before
anything is trained or written: the settings resolved against the checkpoint's
(:mod:`export.convert.source`), the :class:`tfresnet.models.variant.ModelVariant`
(checked once), the checkpoint (it must be the architecture the settings describe), the
data and the ``float_layers`` (they must name layers the INT8 file can keep float).
``epochs=0`` plans the ImageNet classifier itself (:func:`imagenet_labels`, its images
from :func:`load_images`). The steps that run a plan are :mod:`export.job.train_steps`,
:mod:`export.job.evaluate` and the modules that name and describe the files;
:func:`export.job.pipeline.export` calls them in order.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from export import names
from export.convert.source import DEFAULT_DATASET, DEFAULT_VAL_FRACTION, Source, load_source
from export.job.config import DEFAULT_MODEL, ExportConfig, SettingError
from export.job.manifest import read_manifest
from export.names import MANIFEST
from tfresnet.data import sources
from tfresnet.data.folder import IMAGE_EXTENSIONS, undecodable_images
from tfresnet.data.split import DataSplit, fit_image
from tfresnet.utils.flags import DEFAULT_SEED

# The kinds of .tflite file an export writes, in table order (the Keras models first:
# export.job.evaluate.LABELS).
FILE_KINDS = ("float32", "float16", "dynamic", "int16x8", "ptq_int8", "mixed_int8", "int8")
# When the post-training INT8 file ships it is STEM_int8.tflite; the QAT one moves aside.
SHIPPED_PTQ_NAMES = {"ptq_int8": "int8", "int8": "qat_int8"}
INT8_IO_KINDS = ("int8", "ptq_int8", "qat_int8", "mixed_int8")  # their names carry io
LATENCY_ROUNDS = 5          # the TFLite files are timed side by side, best round quoted
AUTHOR = "tfresnet"


@dataclasses.dataclass(frozen=True)
class ExportPlan:
    """Everything the export (:func:`export.job.pipeline.export`) needs, checked first.

    Attributes:
      config: the settings, resolved: ``model``, ``alpha``, ``res``, ``dataset``,
        ``epochs`` and ``seed`` as the export uses them (the checkpoint's where not
        given), ``calibration`` at most the images there are.
      variant: the checked :class:`tfresnet.models.variant.ModelVariant`; ``name``,
        ``info``, ``res``, ``stem`` and ``model_kwargs`` are read from it.
      split: the data (train / held-out validation); labels: class names.
      source: the trained float model and its run's settings
        (:class:`export.convert.source.Source`), or None to train one here.
      out: the output folder (checked writable; created when the files are written).
      imagenet: ``epochs=0``: the ImageNet classifier itself; its images
        (``calibration_images``) are unlabeled, so no accuracy is reported.
    """

    config: ExportConfig
    variant: object
    split: object
    labels: tuple
    source: Source | None
    out: str
    imagenet: bool = False

    @property
    def qat(self) -> bool:
        """False with ``qat_epochs=0``: the INT8 file is post-training quantized."""
        return self.config.qat

    @property
    def io(self) -> str:
        return self.config.io

    @property
    def checkpoint(self):
        """The trained float model, or None to train one here."""
        return None if self.source is None else self.source.model

    @property
    def training_warnings(self) -> list:
        """The checkpoint's run warnings, carried into the table, results JSON and
        models.json."""
        return [] if self.source is None else self.source.warnings

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def info(self):
        return self.variant.info

    @property
    def res(self) -> int:
        return self.variant.side

    @property
    def stem(self) -> str:
        """File-name stem (``mobilenet_v1_0.75_160``, ``resnet20_32``)."""
        return self.variant.stem

    @property
    def model_kwargs(self) -> dict:
        """Builder arguments besides the input shape (``alpha``, ``res`` for MobileNet)."""
        return self.variant.model_kwargs()

    def file(self, kind: str, ships: str = "int8") -> str:
        """File name of one output: kind "int8" (QAT), "ptq_int8", "float32" or one of
        the other --formats (float32 I/O, so no ``_io_`` suffix).

        ``STEM_int8.tflite`` is always the file to ship, the name apps load: when the
        post-training file ships (``ships="ptq_int8"``,
        :func:`export.job.gates.choose_int8`) it takes that name and the QAT file is
        ``STEM_qat_int8.tflite``."""
        if ships == "ptq_int8":
            kind = SHIPPED_PTQ_NAMES.get(kind, kind)
        suffix = "" if kind not in INT8_IO_KINDS or self.io == "uint8" else f"_io_{self.io}"
        return f"{self.stem}_{kind}{suffix}.tflite"

    def own_files(self) -> set[str]:
        """Every file name an export of this stem and I/O type may write into ``out``
        (whichever INT8 file ships, whatever ``--formats``), bar ``labels.txt`` and
        ``models.json``: those it does not write this time are stale."""
        return ({self.file(kind, ships) for kind in FILE_KINDS for ships in ("int8", "ptq_int8")}
                | {f"{self.report_stem}{suffix}" for suffix in names.REPORT_SUFFIXES})

    @property
    def results_file(self) -> str:
        return f"{self._report_stem}{names.RESULTS_SUFFIX}"

    @property
    def confusion_file(self) -> str:
        """The PNG of the float and INT8 confusion matrices side by side."""
        return f"{self._report_stem}{names.CONFUSION_SUFFIX}"

    @property
    def model_card_file(self) -> str:
        return f"{self._report_stem}{names.MODEL_CARD_SUFFIX}"

    @property
    def report_stem(self) -> str:
        """The stem of the job's reports (results JSON, PNGs, model card)."""
        return self._report_stem

    @property
    def _report_stem(self) -> str:
        return self.stem + ("" if self.io == "uint8" else f"_io_{self.io}")




def _said(check, *args, **kwargs):
    """``check(*args, **kwargs)``, its ValueError a SettingError: a check that names the
    values it refuses as the settings do (``ModelVariant.check`` with
    its API words, the registry, ``export.convert.int8_errors.check_float_layers``)."""
    try:
        return check(*args, **kwargs)
    except SettingError:
        raise
    except ValueError as err:
        raise SettingError(str(err)) from None


def _check_source(config: ExportConfig, model_or_run):
    """The settings that depend on whether a trained model is given (before it loads)."""
    t = config.transfer
    if model_or_run is None:
        if config.qat_unfreeze and t.weights is None:
            raise SettingError("qat_unfreeze trains the layers frozen for transfer learning: "
                             "add `weights` (a model trained here from scratch has none "
                             "frozen). Received: qat_unfreeze=True")
        return
    given = (os.fspath(model_or_run) if isinstance(model_or_run, (str, os.PathLike))
             else "the model given")
    if t.weights is not None:
        raise SettingError(f"weights starts a float training and checkpoint {given!r} is a "
                         f"trained model: give one of them. "
                         f"Received: weights={t.weights}, checkpoint={given}")
    if config.epochs is not None:
        raise SettingError(f"epochs trains a float model; checkpoint {given!r} is trained "
                         f"already (`qat_epochs` sets the fine-tuning). "
                         f"Received: epochs={config.epochs}")


def _resolve_model(config: ExportConfig, source: Source | None):
    """The ModelVariant the settings and the checkpoint's describe, checked (also the
    memory it needs at ``batch_size``, before anything is allocated)."""
    from tfresnet.models import registry
    from tfresnet.models.variant import ModelVariant

    saved_name = None if source is None else source.name
    name = config.model or saved_name or DEFAULT_MODEL
    if source is not None and saved_name and config.model and config.model != saved_name:
        _said(registry.model_info, config.model)  # an unknown name: did you mean ...
        wanted = ModelVariant(config.model, config.alpha, config.res or source.side).stem
        raise SettingError(f"{source.describe()} is not a {wanted} model: it is "
                         f"a {saved_name} with {source.side}x{source.side} inputs (leave "
                         f"`model` out to export it as such). Received: model={config.model}")
    try:
        info = registry.model_info(name)
    except ValueError as err:
        raise SettingError(f"model: {err}") from None
    if not info.int8:
        raise SettingError(f"{name} cannot be exported to full INT8: {info.int8_note}. "
                         f"Received: model={name}")
    saved = source.model_kwargs if source is not None and saved_name == name else {}
    res = config.res if config.res is not None else saved.get("res")
    if res is None and source is not None:
        res = source.side
    alpha = config.alpha if config.alpha is not None else saved.get("alpha")
    if alpha is not None and config.alpha is None and "alpha" not in info.extra_args:
        alpha = None
    variant = ModelVariant(name, alpha, res)
    try:
        return _said(variant.check, classes=2, batch=config.batch_size)
    except SettingError as err:
        if config.res is not None or source is None:
            raise
        raise SettingError(f"{source.describe()} ({res}x{res} inputs) cannot be "
                         f"a {name}: {err}") from None


def _check_checkpoint(source: Source, variant, classes):
    """ValueError unless the checkpoint is the architecture the settings describe."""
    model, where = source.model, source.describe()
    res = variant.side
    described = f"{variant.stem} ({classes} classes)"
    if tuple(model.input_shape[1:]) != (res, res, 3):
        raise SettingError(f"{where} takes {tuple(model.input_shape[1:])} images, "
                         f"not ({res}, {res}, 3) as {described}")
    if model.output_shape[-1] != classes:
        raise SettingError(f"{where} has {model.output_shape[-1]} outputs; the "
                         f"data has {classes} classes")
    reference = variant.build(classes=classes)
    if [tuple(w.shape) for w in model.weights] != [tuple(w.shape) for w in reference.weights]:
        raise SettingError(f"{where} is not a {described} model: its "
                         f"{model.count_params():,} parameters in {len(model.weights)} "
                         f"tensors differ from the {reference.count_params():,} in "
                         f"{len(reference.weights)} expected (check `model`, `alpha`, `res`)")


def _data(config: ExportConfig, source: Source | None, variant):
    """(the data, its name): ``dataset``, else the data the checkpoint was trained on
    (a ``FitResult``'s, loaded already), else the bundled digits; split as the
    checkpoint's run split it (its seed and validation share)."""
    if config.dataset is None and source is not None and source.data is not None:
        return source.data, source.data.name
    dataset = config.dataset or (source and source.dataset) or DEFAULT_DATASET
    return sources.load(dataset, image_size=(variant.side, variant.side),
                        data_dir=config.data_dir, manual_dir=config.manual_dir,
                        seed=config.seed, skip_bad_images=config.skip_bad_images,
                        val_fraction=source.val_fraction if source else
                        DEFAULT_VAL_FRACTION), dataset


def plan_export(config: ExportConfig, model_or_run=None) -> ExportPlan:
    """Checks the settings against the model and the data, loads them: all before
    anything is trained or written. Raises ValueError (one line) for any bad input.

    Args:
      config: the settings (checked already, :class:`ExportConfig`).
      model_or_run: the trained float model (a ``keras.Model``, a ``FitResult``, a run
        folder or ``.keras`` file: :func:`export.convert.source.load_source`), or None
        to train one here.
    """
    from tfresnet.utils import fileio

    _check_source(config, model_or_run)
    source = None if model_or_run is None else load_source(model_or_run)
    if (source is not None and config.qat_unfreeze
            and all(layer.trainable for layer in source.model.layers)):
        raise SettingError(f"qat_unfreeze trains frozen layers, and "
                         f"{source.describe()} has none. Received: qat_unfreeze=True")
    out = fileio.check_writable_dir(os.fspath(config.out))  # created when written
    if os.path.isdir(out):
        read_manifest(os.path.join(out, MANIFEST))
    variant = _resolve_model(config, source)
    seed = next(s for s in (config.seed, source and source.seed, DEFAULT_SEED)
                if s is not None)
    config = dataclasses.replace(config, model=variant.name, alpha=variant.alpha,
                                 res=variant.side, seed=seed)
    if config.epochs == 0:
        return _plan_imagenet(config, variant, out)
    split, dataset = _data(config, source, variant)
    labels = tuple(str(label) for label in split.labels)
    config = dataclasses.replace(config, dataset=dataset,
                                 epochs=None if source is not None else config.float_epochs)
    model = None
    if source is not None:
        _check_checkpoint(source, variant, len(labels))
        if source.labels and list(source.labels) != list(labels):
            raise SettingError(f"{source.describe()} was trained on other labels "
                             f"({', '.join(source.labels[:5])}, ...) than {split.name!r} "
                             f"({', '.join(labels[:5])}, ...); give its `dataset`")
        model = source.model
    elif config.transfer.weights is not None:
        from tfresnet.training import transfer
        model, _ = transfer.load_weights(config.transfer.weights, variant.name,
                                         classes=len(labels), labels=list(labels),
                                         model_kwargs=variant.model_kwargs(),
                                         image_size=(variant.side, variant.side))  # fails fast
        transfer.unfreeze_index(model, config.transfer.unfreeze_from)
    else:  # checked for this many classes; built once, when it is trained
        _said(variant.check, classes=len(labels), batch=config.batch_size)
    if config.float_layers:
        from export.convert import int8_errors
        _said(int8_errors.check_float_layers, model if model is not None else
              variant.build(classes=len(labels)), config.float_layers)
    return ExportPlan(config=config, variant=variant, split=split, labels=labels,
                      source=source, out=out)


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet class names in keras.applications' class order, read offline.

    The order is that of tensorflow-datasets' ``imagenet2012/labels.txt`` (the synset
    ids, sorted: keras.applications' class index); the names are tensorflow-datasets'
    ``siscore.labels.IMAGENET_LABELS_LIST`` (WordNet names, the same order), checked
    against it: 1,000 names, and the synset list sorted.
    """
    import importlib.resources

    from tensorflow_datasets.datasets.siscore import labels as siscore_labels

    wnids = (importlib.resources.files("tensorflow_datasets") / "datasets" / "imagenet2012"
             / "labels.txt").read_text().split()
    names = [str(n) for n in siscore_labels.IMAGENET_LABELS_LIST]
    if len(wnids) != 1000 or wnids != sorted(wnids) or len(names) != 1000:
        raise RuntimeError(f"tensorflow-datasets' ImageNet labels are not the 1,000 "
                           f"sorted synsets keras.applications uses ({len(wnids)} synsets, "
                           f"{len(names)} names)")
    return names


def load_images(folder, size) -> np.ndarray:
    """Every image file under ``folder`` (sub-folders included), resized to ``size``,
    as uint8 [N, H, W, 3]; ValueError (one line) when there is none or one is unreadable."""
    if not os.path.isdir(folder):
        raise SettingError(f"calibration_images must be a folder of images. "
                         f"Received: calibration_images={folder}")
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files
                   if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    if not paths:
        raise SettingError(f"calibration_images {folder!r} has no images "
                         f"({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    bad = undecodable_images(paths)
    if bad:
        path, reason = next(iter(bad.items()))
        raise SettingError(f"unreadable image {path!r}: {reason}; remove it from "
                         f"`calibration_images`")
    import tensorflow as tf

    return np.stack([fit_image(tf.io.decode_image(tf.io.read_file(p), channels=3,
                                                        expand_animations=False), size).numpy()
                     for p in paths])


NO_LABEL = -1  # the label of an unlabeled image (the ImageNet export's own images)


def _plan_imagenet(config, variant, out) -> ExportPlan:
    """``epochs=0``: the ImageNet classifier itself, untrained here, its images from
    ``calibration_images`` (unlabeled: the INT8 file is compared with the float model)."""
    import tensorflow as tf

    from tfresnet.training import transfer

    labels = imagenet_labels()
    model, note = transfer.load_weights("imagenet", variant.name, classes=len(labels),
                                        model_kwargs=variant.model_kwargs(),
                                        image_size=(variant.side, variant.side))
    images = load_images(config.calibration_images, (variant.side, variant.side))
    ds = tf.data.Dataset.from_tensor_slices(
        (images, np.full(len(images), NO_LABEL, np.int32)))
    name = os.path.abspath(config.calibration_images)
    split = DataSplit(train=ds, val=ds, labels=labels, num_train=len(images),
                      num_val=len(images), name=name, image_size=(variant.side, variant.side))
    if config.float_layers:
        from export.convert import int8_errors
        int8_errors.check_float_layers(model, config.float_layers)
    config = dataclasses.replace(config, calibration=min(config.calibration, len(images)))
    return ExportPlan(config=config, variant=variant, split=split, labels=tuple(labels),
                      source=Source(model=model, path=f"ImageNet classifier ({note})"),
                      out=out, imagenet=True)
