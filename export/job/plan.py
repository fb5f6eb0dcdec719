"""The export job's plan: its settings, every flag checked, the checkpoint and data loaded.

:func:`plan_export` turns the parsed ``python -m export.tflite`` flags into an
:class:`ExportPlan` before anything is trained or written: the checks across flags
(each flag's own range is its argparse ``type``, :func:`export.job.flags.build_parser`),
the :class:`tfresnet.models.variant.ModelVariant` (checked once), the checkpoint (it must be the
architecture the flags describe) and the data. ``--epochs 0`` plans the ImageNet
classifier itself (:func:`imagenet_labels`, its images from :func:`load_images`).
The steps that run a plan are :mod:`export.job.training` and
:mod:`export.job.results`; :func:`export.job.pipeline.export` calls them in order.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from export import names
from export.job import flags
from export.job.flags import DEFAULT_EPOCHS, DEFAULT_MODEL
from export.job.manifest import read_manifest
from export.names import MANIFEST
from tfresnet.data.folder import IMAGE_EXTENSIONS, undecodable_images
from tfresnet.data import sources
from tfresnet.data.split import DataSplit, fit_image

# The kinds of .tflite file an export writes, in table order (the Keras models first:
# export.job.results.LABELS).
FILE_KINDS = ("float32", "float16", "dynamic", "int16x8", "ptq_int8", "mixed_int8", "int8")
# When the post-training INT8 file ships it is STEM_int8.tflite; the QAT one moves aside.
SHIPPED_PTQ_NAMES = {"ptq_int8": "int8", "int8": "qat_int8"}
INT8_IO_KINDS = ("int8", "ptq_int8", "qat_int8", "mixed_int8")  # their names carry --io
LATENCY_ROUNDS = 5          # the TFLite files are timed side by side, best round quoted
AUTHOR = "tfresnet"


@dataclasses.dataclass
class ExportPlan:
    """Everything the export (:func:`export.job.pipeline.export`) needs, checked first.

    Attributes:
      variant: the checked :class:`tfresnet.models.variant.ModelVariant`; ``name``, ``info``,
        ``res``, ``stem`` and ``model_kwargs`` are read from it.
      split: the data (train / held-out validation); labels: class names.
      checkpoint: the loaded float model, or None to train one here.
      checkpoint_path: where it came from.
      out: output folder; io: INT8 model input/output type.
      epochs, qat_epochs, lr, qat_lr, batch_size, augment, seed, strategy: training
        settings (see :func:`export.job.training.training_settings`).
      calibration: calibration images for the INT8 conversions.
      threads: interpreter threads for the latency figures.
      min_agreement: the INT8-vs-QAT-Keras top-1 agreement required.
      weights: pretrained weights to start the float training from (transfer
        learning, ``tfresnet.train.fit(weights=...)``), or None.
      freeze_epochs, unfreeze_from, fine_tune_lr, fine_tune_batchnorm: with ``weights``:
        the bound on the frozen-backbone epochs, where fine-tuning starts, its learning
        rate and whether BatchNorm trains (None: the defaults of ``tfresnet.train.fit``).
      qat_unfreeze: train layers frozen in the float model during QAT too.
      imagenet: ``--epochs 0``: the ImageNet classifier itself; its images
        (``--calibration-images``) are unlabeled, so no accuracy is reported.
      allow_chance: publish a float model no better than chance (with a warning).
      training_warnings: the checkpoint's run warnings (``result.warnings`` of its
        config.json), carried into the table, results JSON and models.json.
      checkpoint_result: the checkpoint's config.json ``result`` (its kept epoch).
      formats: the ``--formats`` (``export.convert.formats.FORMATS``), int8 among them.
      debug_quantization: write the per-layer INT8 error report (``export.debug``).
      float_layers: ``--float-layers``: Keras layers kept float in an extra PTQ file.
    """

    variant: object
    split: object
    labels: list
    checkpoint: object
    checkpoint_path: str | None
    out: str
    io: str
    epochs: int
    qat_epochs: int
    lr: float | None
    qat_lr: float | None
    batch_size: int
    augment: str
    seed: int
    strategy: str
    calibration: int
    threads: int
    min_agreement: float
    verbose: int = 2
    weights: str | None = None
    freeze_epochs: int | None = None
    unfreeze_from: str | None = None
    fine_tune_lr: float | None = None
    fine_tune_batchnorm: bool | None = None
    qat_unfreeze: bool = False
    imagenet: bool = False
    allow_chance: bool = False
    training_warnings: list = dataclasses.field(default_factory=list)
    checkpoint_result: dict | None = None
    formats: tuple = ("int8",)
    debug_quantization: bool = False
    float_layers: tuple = ()

    @property
    def qat(self) -> bool:
        """False with ``--qat-epochs 0``: the INT8 file is post-training quantized."""
        return self.qat_epochs > 0

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


def _check_flags(args):
    """The checks across flags (each flag's own range is its argparse ``type``)."""
    flags.check(args)  # the ones that need no model or data (the CLI ran them already)
    if args.weights is not None and args.checkpoint is not None:
        raise ValueError("--weights starts a float training; --checkpoint is a trained "
                         "model: give one of them. Received: --weights, --checkpoint")
    transfer_flags = (("--freeze-epochs", args.freeze_epochs),
                      ("--unfreeze-from", args.unfreeze_from),
                      ("--fine-tune-lr", args.fine_tune_lr),
                      ("--fine-tune-batchnorm", args.fine_tune_batchnorm))
    for flag, value in transfer_flags:
        if value is not None and args.weights is None:
            raise ValueError(f"{flag} applies to transfer learning: add --weights. "
                             f"Received: {flag}={value!r}")
    if args.epochs == 0:
        if args.weights != "imagenet" or args.qat_epochs != 0 or not args.calibration_images:
            raise ValueError("--epochs 0 exports the ImageNet classifier untrained: give "
                             "--weights imagenet --qat-epochs 0 --calibration-images FOLDER. "
                             f"Received: --epochs 0, --weights={args.weights}, "
                             f"--qat-epochs={args.qat_epochs}, "
                             f"--calibration-images={args.calibration_images}")
        if args.allow_chance:
            raise ValueError("--allow-chance skips the check that the float model is above "
                             "chance, which --epochs 0 does not make (its images have no "
                             "labels): drop it. Received: --allow-chance, --epochs 0")
        for flag, value in (("--dataset", args.dataset), *transfer_flags):
            if value is not None:
                raise ValueError(f"{flag} does not apply to --epochs 0 (the ImageNet "
                                 f"classifier, untrained; its images come from "
                                 f"--calibration-images). Received: {flag}={value}")
    elif args.calibration_images is not None:
        raise ValueError("--calibration-images applies to --epochs 0 (the ImageNet "
                         "classifier); to train, give the labeled data with --dataset. "
                         f"Received: --calibration-images={args.calibration_images}")
    elif args.weights is not None:
        from tfresnet.training import phases
        phases.plan_phases(DEFAULT_EPOCHS if args.epochs is None else args.epochs,
                             args.freeze_epochs, args.unfreeze_from, args.fine_tune_lr)
    if args.float_layers and args.io == "float32":
        raise ValueError("--float-layers writes a uint8 or int8 I/O file: drop --io float32. "
                         "Received: --io float32")
    if "int8" not in args.formats:
        raise ValueError(f"--formats must include int8: the shipped full-integer file, "
                         f"whose agreement with the Keras model gates the export. "
                         f"Received: --formats={','.join(args.formats)}")
    if args.checkpoint is not None and args.epochs is not None:
        raise ValueError("--epochs trains a float model; with --checkpoint the model is "
                         "trained already (use --qat-epochs for the fine-tuning)")
    for flag, value in (("--qat-lr", args.qat_lr), ("--qat-unfreeze", args.qat_unfreeze)):
        if value and args.qat_epochs == 0:
            raise ValueError(f"{flag} applies to the quantization-aware fine-tuning, which "
                             f"--qat-epochs 0 skips. Received: {flag}, --qat-epochs 0")
    if args.qat_unfreeze and args.weights is None and args.checkpoint is None:
        raise ValueError("--qat-unfreeze trains the layers frozen for transfer learning: add "
                         "--weights (a model trained here from scratch has none frozen). "
                         "Received: --qat-unfreeze")


def _resolve_model(args, config, checkpoint):
    """The ModelVariant the flags and the checkpoint's config describe, checked.

    The values are checked by :class:`tfresnet.models.variant.ModelVariant` (also the memory
    they need at --batch-size, before anything is allocated).
    """
    from tfresnet.models import registry
    from tfresnet.models.variant import ModelVariant

    registry_model = config.get("model") if config.get("registry") else None
    name = args.model or registry_model or DEFAULT_MODEL
    if checkpoint is not None and registry_model and args.model and args.model != registry_model:
        side = int(checkpoint.input_shape[1])
        registry.model_info(args.model)  # an unknown name: did you mean ...
        wanted = ModelVariant(args.model, args.alpha, args.res or side).stem
        raise ValueError(f"checkpoint {args.checkpoint!r} is not a {wanted} model: it is a "
                         f"{registry_model} with {side}x{side} inputs (drop --model to export "
                         f"it as such). Received: --model={args.model}")
    info = registry.model_info(name)
    if not info.int8:
        raise ValueError(f"{name} cannot be exported to full INT8: {info.int8_note}. "
                         f"Received: --model={name}")
    saved = dict(config.get("model_kwargs") or {}) if registry_model == name else {}
    res = args.res if args.res is not None else saved.get("res")
    if res is None and checkpoint is not None:
        res = int(checkpoint.input_shape[1])
    alpha = args.alpha if args.alpha is not None else saved.get("alpha")
    if alpha is not None and args.alpha is None and "alpha" not in info.extra_args:
        alpha = None
    variant = ModelVariant(name, alpha, res)
    if args.res is None and checkpoint is not None:
        try:
            variant.check(classes=2, batch=args.batch_size, flags={"classes": None})
        except ValueError as err:
            raise ValueError(f"checkpoint {args.checkpoint!r} ({res}x{res} inputs) cannot be "
                             f"a {name}: {err}") from None
    return variant.check(classes=2, batch=args.batch_size, flags={"classes": None})


def _check_checkpoint(path, model, variant, classes):
    """ValueError unless the checkpoint is the architecture the flags describe."""
    res = variant.side
    described = f"{variant.stem} ({classes} classes)"
    if tuple(model.input_shape[1:]) != (res, res, 3):
        raise ValueError(f"checkpoint {path!r} takes {tuple(model.input_shape[1:])} images, "
                         f"not ({res}, {res}, 3) as {described}")
    if model.output_shape[-1] != classes:
        raise ValueError(f"checkpoint {path!r} has {model.output_shape[-1]} outputs; the data "
                         f"has {classes} classes")
    reference = variant.build(classes=classes)
    if [tuple(w.shape) for w in model.weights] != [tuple(w.shape) for w in reference.weights]:
        raise ValueError(f"checkpoint {path!r} is not a {described} model: its "
                         f"{model.count_params():,} parameters in {len(model.weights)} "
                         f"tensors differ from the {reference.count_params():,} in "
                         f"{len(reference.weights)} expected (check --model/--alpha/--res)")


def plan_export(args) -> ExportPlan:
    """Checks every flag, loads the checkpoint and the data: all before anything is
    trained or written. Raises ValueError (one line) for any bad input."""
    from tfresnet.training.checkpoint import load_run
    from tfresnet.utils import fileio

    _check_flags(args)
    out = fileio.check_writable_dir(args.out)  # checked now, created when the files are written
    if os.path.isdir(args.out):
        read_manifest(os.path.join(args.out, MANIFEST))
    checkpoint, config, saved_labels = None, {}, []
    if args.checkpoint is not None:
        checkpoint, config, saved_labels = load_run(args.checkpoint)
    variant = _resolve_model(args, config, checkpoint)
    res = variant.side
    seed = args.seed if args.seed is not None else int(config.get("seed", 0))
    if args.epochs == 0:
        return _plan_imagenet(args, variant, out, seed)
    dataset = args.dataset or config.get("dataset") or "digits"
    split = sources.load(dataset, image_size=(res, res), data_dir=args.data_dir,
                      manual_dir=args.manual_dir, seed=seed,
                      val_fraction=float(config.get("val_fraction", 0.2)),
                      skip_bad_images=args.skip_bad_images)
    labels = [str(label) for label in split.labels]
    if checkpoint is not None:
        _check_checkpoint(args.checkpoint, checkpoint, variant, len(labels))
        if args.qat_unfreeze and all(layer.trainable for layer in checkpoint.layers):
            raise ValueError(f"--qat-unfreeze trains frozen layers, and checkpoint "
                             f"{args.checkpoint!r} has none. Received: --qat-unfreeze")
        if saved_labels and saved_labels != labels:
            raise ValueError(f"checkpoint {args.checkpoint!r} was trained on other labels "
                             f"({', '.join(saved_labels[:5])}, ...) than {split.name!r} "
                             f"({', '.join(labels[:5])}, ...); pass --dataset")
    elif args.weights is not None:
        from tfresnet.training import transfer
        model, _ = transfer.load_weights(args.weights, variant.name, classes=len(labels),
                                         labels=labels, model_kwargs=variant.model_kwargs(),
                                         image_size=(variant.side, variant.side))  # fails fast
        transfer.unfreeze_index(model, args.unfreeze_from)
    else:  # checked for this many classes; built once, when it is trained
        variant.check(classes=len(labels), batch=args.batch_size, flags={"classes": None})
    return ExportPlan(
        variant=variant, split=split, labels=labels, checkpoint=checkpoint, checkpoint_path=args.checkpoint,
        out=out, io=args.io, epochs=DEFAULT_EPOCHS if args.epochs is None else args.epochs,
        qat_epochs=args.qat_epochs, lr=args.lr, qat_lr=args.qat_lr,
        batch_size=args.batch_size, augment=args.augment, seed=seed, strategy=args.strategy,
        calibration=args.calibration,
        threads=args.threads, min_agreement=args.min_agreement, weights=args.weights,
        freeze_epochs=args.freeze_epochs, unfreeze_from=args.unfreeze_from,
        fine_tune_lr=args.fine_tune_lr, fine_tune_batchnorm=args.fine_tune_batchnorm,
        qat_unfreeze=args.qat_unfreeze,
        allow_chance=args.allow_chance,
        training_warnings=list((config.get("result") or {}).get("warnings") or []),
        checkpoint_result=config.get("result"),
        formats=tuple(args.formats), debug_quantization=args.debug_quantization,
        float_layers=tuple(args.float_layers or ()))


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
        raise ValueError(f"--calibration-images must be a folder of images. Received: "
                         f"--calibration-images={folder}")
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files
                   if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    if not paths:
        raise ValueError(f"--calibration-images {folder!r} has no images "
                         f"({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    bad = undecodable_images(paths)
    if bad:
        path, reason = next(iter(bad.items()))
        raise ValueError(f"unreadable image {path!r}: {reason}; remove it from "
                         f"--calibration-images")
    import tensorflow as tf

    return np.stack([fit_image(tf.io.decode_image(tf.io.read_file(p), channels=3,
                                                        expand_animations=False), size).numpy()
                     for p in paths])


NO_LABEL = -1  # the label of an unlabeled image (the ImageNet export's own images)


def _plan_imagenet(args, variant, out, seed) -> ExportPlan:
    """``--epochs 0``: the ImageNet classifier itself, untrained here, its images from
    ``--calibration-images`` (unlabeled: the INT8 file is compared with the float model)."""
    import tensorflow as tf

    from tfresnet.training import transfer

    labels = imagenet_labels()
    model, note = transfer.load_weights("imagenet", variant.name, classes=len(labels),
                                        model_kwargs=variant.model_kwargs(),
                                        image_size=(variant.side, variant.side))
    images = load_images(args.calibration_images, (variant.side, variant.side))
    ds = tf.data.Dataset.from_tensor_slices(
        (images, np.full(len(images), NO_LABEL, np.int32)))
    name = os.path.abspath(args.calibration_images)
    split = DataSplit(train=ds, val=ds, labels=labels, num_train=len(images),
                           num_val=len(images), name=name,
                           image_size=(variant.side, variant.side))
    return ExportPlan(
        variant=variant, split=split, labels=labels, checkpoint=model,
        checkpoint_path=f"ImageNet classifier ({note})", out=out, io=args.io, epochs=0,
        qat_epochs=0, lr=None, qat_lr=None, batch_size=args.batch_size,
        augment=args.augment, seed=seed, strategy=args.strategy,
        calibration=min(args.calibration, len(images)), threads=args.threads,
        min_agreement=args.min_agreement, weights="imagenet", imagenet=True,
        formats=tuple(args.formats), debug_quantization=args.debug_quantization,
        float_layers=tuple(args.float_layers or ()))
