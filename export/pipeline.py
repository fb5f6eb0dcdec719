"""The main job behind ``python -m export.tflite``: model -> QAT -> verified INT8 files.

:func:`plan_export` checks every flag and loads the checkpoint and the data, before
anything is trained or written; :func:`export` runs the plan:

1. the float model: ``--checkpoint`` (a tfresnet.train run or .keras file), or trained
   here on the data (default: the bundled digits, a few epochs, said on the terminal);
2. quantization-aware fine-tuning (``export.quantize.quantize_model`` inside the
   strategy's scope, trained with ``tfresnet.train.fit``);
3. conversions (``export.convert``): QAT -> full INT8, and the baselines float32 and
   post-training INT8 from the same calibration images; metadata embedded
   (``export.metadata``);
4. evaluation on the held-out data (float Keras, QAT Keras and the three files; top-1
   agreement of the INT8 file with the QAT Keras model, which must reach
   ``--min-agreement``), latency (``export.latency``: the three files timed side by
   side in ``LATENCY_ROUNDS`` rounds, the best round quoted), params and MACs
   (``tfresnet.profile``);
5. files: the three ``.tflite``, ``labels.txt``, the results JSON and the merged
   ``models.json``, written by ``export.manifest.publish``: under a lock on the folder,
   to temporary names first, renamed so that no manifest entry ever describes a file
   it does not match, even when the export is killed between the renames.

``--qat-epochs 0`` skips step 2: the INT8 file is the float model post-training
quantized (converted once, no separate PTQ baseline), compared with the float Keras model,
and the report says no QAT was done. ``--weights imagenet --epochs 0 --qat-epochs 0
--calibration-images FOLDER`` exports the ImageNet classifier itself with the 1,000 ImageNet
labels (:func:`imagenet_labels`), calibrated on the unlabeled images of FOLDER, which
also measure the INT8 file's top-1 agreement with the float model (no accuracy: no labels).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from export import quantize
from export.convert import (CALIBRATION_IMAGES, IO_TYPES, Runner, TensorInfo, io_tensors,
                            to_float32, to_int8)
from export.manifest import LABELS_FILE, MANIFEST, publish, read_manifest
from tfresnet import data, recipes, tables

PROG = "python -m export.tflite"
DEFAULT_MODEL = "mobilenet_v1"
MAX_EPOCHS = 100_000     # a bound on --epochs and --qat-epochs, far above any real run
MAX_LR = 100.0
DEFAULT_EPOCHS = 4          # float training on the bundled digits when no --checkpoint
DEFAULT_QAT_EPOCHS = 1
DEFAULT_BATCH_SIZE = recipes.SHORT_RUN_BATCH_SIZE
DEFAULT_AUGMENT = recipes.SHORT_RUN_AUGMENT
LATENCY_ROUNDS = 5          # the TFLite files are timed side by side, best round quoted
QAT_LR_FACTOR = 0.1         # QAT fine-tunes at this fraction of the float learning rate
MIN_AGREEMENT = 0.99        # INT8 TFLite vs QAT Keras top-1 agreement required
AUTHOR = "tfresnet"


@dataclasses.dataclass
class ExportPlan:
    """Everything :func:`export` needs, checked before anything is trained or written.

    Attributes:
      variant: the checked :class:`tfresnet.variant.ModelVariant`; ``name``, ``info``,
        ``res``, ``stem`` and ``model_kwargs`` are read from it.
      split: the data (train / held-out validation); labels: class names.
      checkpoint: the loaded float model, or None to train one here.
      checkpoint_path: where it came from.
      out: output folder; io: INT8 model input/output type.
      epochs, qat_epochs, lr, qat_lr, batch_size, augment, seed, strategy: training
        settings (see :func:`_training_settings`).
      calibration: calibration images for the INT8 conversions.
      threads: interpreter threads for the latency figures.
      min_agreement: the INT8-vs-QAT-Keras top-1 agreement required.
      weights: pretrained weights to start the float training from (transfer
        learning, ``tfresnet.train.fit(weights=...)``), or None.
      freeze_epochs, unfreeze_from: with ``weights``: the frozen-backbone epochs and
        where fine-tuning starts.
      qat_unfreeze: train layers frozen in the float model during QAT too.
      imagenet: ``--epochs 0``: the ImageNet classifier itself; its images
        (``--calibration-images``) are unlabeled, so no accuracy is reported.
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
    qat_unfreeze: bool = False
    imagenet: bool = False

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
        kwargs = self.variant.builder_kwargs()
        kwargs.pop("input_shape", None)
        return kwargs

    def file(self, kind: str) -> str:
        """File name of one output: kind "int8" (QAT), "ptq_int8" or "float32"."""
        suffix = "" if kind == "float32" or self.io == "uint8" else f"_io_{self.io}"
        return f"{self.stem}_{kind}{suffix}.tflite"

    @property
    def results_file(self) -> str:
        suffix = "" if self.io == "uint8" else f"_io_{self.io}"
        return f"{self.stem}{suffix}_results.json"


def build_parser():
    """The ``python -m export.tflite`` flags."""
    from tfresnet import cli, registry

    p = cli.ArgumentParser(
        prog=PROG, description=(
            "Quantization-aware INT8 TFLite export for Android. Takes a trained model "
            "(--checkpoint) or trains one on the data first, fine-tunes it "
            "quantization-aware, converts it to a full-integer .tflite (verified: every "
            "op INT8, uint8 input = raw RGB bytes), writes float32 and post-training INT8 "
            "baselines, labels.txt, a models.json manifest and a results JSON into --out, "
            "and prints accuracy, agreement, size, latency, params and MACs."))
    p.add_argument("--model", type=cli.non_empty, help=f"registry name (default {DEFAULT_MODEL}, or the "
                   f"checkpoint's): {', '.join(registry.list_models())}")
    p.add_argument("--alpha", type=cli.float_range(), help="MobileNet width multiplier > 0 (default "
                   "1.0 or the checkpoint's; e.g. 0.75)")
    p.add_argument("--res", type=cli.int_range(), help="input side: MobileNet a multiple of 32, at "
                   "least 32 (default 224); other models at least their minimum side "
                   "(default: the paper's input, or the checkpoint's)")
    p.add_argument("--checkpoint", type=cli.non_empty, help="a tfresnet.train run directory or .keras file; "
                   "without it the float model is trained here first")
    p.add_argument("--dataset", type=cli.non_empty, help="'digits' (bundled; the default without a "
                   "checkpoint), 'tfds:<name>[/config][:version]' or an image folder; with "
                   "a checkpoint the default is the data it was trained on")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: leave out the files TensorFlow cannot decode "
                   "(truncated, corrupt), each named in a warning and listed in the "
                   "results JSON, instead of stopping with an error that names the first")
    p.add_argument("--data-dir", type=cli.non_empty, help="tensorflow-datasets folder with prepared data")
    p.add_argument("--manual-dir", type=cli.non_empty, help="folder with a tfds data set's original archives")
    p.add_argument("--epochs", type=cli.int_range(0, MAX_EPOCHS), help=f"float training epochs without --checkpoint "
                   f"(default {DEFAULT_EPOCHS}: enough for the bundled digits; give more "
                   f"for real data, or train with tfresnet.train); 0 with --weights imagenet "
                   f"--qat-epochs 0 --calibration-images FOLDER exports the ImageNet "
                   f"classifier itself (1,000 classes), untrained")
    p.add_argument("--qat-epochs", type=cli.int_range(0, MAX_EPOCHS), default=DEFAULT_QAT_EPOCHS,
                   help=f"quantization-aware fine-tuning epochs (default {DEFAULT_QAT_EPOCHS}); "
                   f"0: no QAT, the INT8 file is the float model post-training quantized "
                   f"(calibrated on the data) and the report says so")
    p.add_argument("--calibration-images", type=cli.non_empty, help="with --epochs 0 "
                   "(the ImageNet classifier): a folder of your images, unlabeled (every "
                   "image file under it, sub-folders included); they calibrate the INT8 "
                   "file and measure its top-1 agreement with the float model")
    p.add_argument("--lr", type=cli.float_range(0, MAX_LR, low_open=True), help="float training learning rate at the global "
                   "batch, divided by 10 at 1/2 and 3/4 of the epochs (default: the model "
                   "recipe's rate, e.g. 0.045 for MobileNet's RMSprop)")
    p.add_argument("--qat-lr", type=cli.float_range(0, MAX_LR, low_open=True), help=f"QAT learning rate (default "
                   f"{QAT_LR_FACTOR:g} x the float one)")
    p.add_argument("--batch-size", type=cli.positive_int(), default=DEFAULT_BATCH_SIZE,
                   help=f"images per replica per step, float training and QAT (default "
                   f"{DEFAULT_BATCH_SIZE}: many steps in a few epochs, so BatchNorm's moving "
                   f"statistics settle)")
    p.add_argument("--augment", choices=tuple(data.AUGMENTATIONS), default=DEFAULT_AUGMENT,
                   help=f"training augmentation (default {DEFAULT_AUGMENT}: a run of a few "
                   f"epochs learns faster without; 'mobilenet', 'imagenet', 'cifar' are the "
                   f"papers')")
    p.add_argument("--io", choices=tuple(IO_TYPES), default="uint8",
                   help="INT8 model input/output type: uint8 (default; TFLite Task Library "
                   "and MediaPipe; raw RGB bytes in), int8, or float32 (quantize/dequantize "
                   "inside the model)")
    p.add_argument("--out", type=cli.non_empty, default="android_demo_assets",
                   help="output folder (default android_demo_assets)")
    p.add_argument("--calibration", type=cli.positive_int(), default=CALIBRATION_IMAGES,
                   help=f"training images used to calibrate the INT8 conversions (default "
                   f"{CALIBRATION_IMAGES})")
    p.add_argument("--threads", type=cli.positive_int(1024), default=1,
                   help="interpreter threads for the latency figures (default 1)")
    p.add_argument("--min-agreement", type=cli.float_range(0, 1), default=MIN_AGREEMENT,
                   help=f"required top-1 agreement of the INT8 model with the QAT Keras "
                   f"model (with --qat-epochs 0: the float Keras model) on the held-out data "
                   f"(default {MIN_AGREEMENT:g}); below it "
                   f"nothing is written and the exit status is 1")
    p.add_argument("--strategy", default="mirrored", help="tf.distribute strategy for "
                   "training: mirrored (default), one, default (multiworker: train with "
                   "tfresnet.train, then export with --checkpoint)")
    p.add_argument("--seed", type=cli.seed, help="seed of the data split, training "
                   "and calibration sample (default 0; with a checkpoint: its seed)")
    p.add_argument("--weights", type=cli.non_empty, help="start the float training from "
                   "pretrained weights (transfer learning): 'imagenet' (the Keras cache, "
                   "never downloaded), a keras.applications .h5 file, or a tfresnet.train "
                   "run / .keras file; a new classifier is built for the data's classes")
    p.add_argument("--freeze-epochs", type=cli.int_range(0, MAX_EPOCHS),
                   help="with --weights: the first N of --epochs train the classifier "
                   "alone, the backbone frozen (default half of --epochs)")
    p.add_argument("--unfreeze-from", type=cli.non_empty, help="with --weights: fine-tune "
                   "from this stage or layer after the frozen epochs (default all)")
    p.add_argument("--qat-unfreeze", action="store_true", help="train the layers frozen in "
                   "the float model during the quantization-aware fine-tuning too (default: "
                   "a frozen backbone stays frozen)")
    return p


def _check_flags(args):
    """The checks across flags (each flag's own range is its argparse ``type``)."""
    from tfresnet import train

    if args.strategy not in train.STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(train.STRATEGIES)}. "
                         f"Received: --strategy={args.strategy!r}")
    if args.strategy == "multiworker":
        raise ValueError("--strategy multiworker is not supported by the export (its "
                         "collective ops must be set up before TensorFlow starts): train on "
                         "the cluster with python -m tfresnet.train --strategy multiworker "
                         "and export the run with --checkpoint. Received: --strategy "
                         "multiworker")
    if args.weights is not None and args.checkpoint is not None:
        raise ValueError("--weights starts a float training; --checkpoint is a trained "
                         "model: give one of them. Received: --weights, --checkpoint")
    for flag, value in (("--freeze-epochs", args.freeze_epochs),
                        ("--unfreeze-from", args.unfreeze_from)):
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
        for flag, value in (("--dataset", args.dataset), ("--freeze-epochs", args.freeze_epochs),
                            ("--unfreeze-from", args.unfreeze_from)):
            if value is not None:
                raise ValueError(f"{flag} does not apply to --epochs 0 (the ImageNet "
                                 f"classifier, untrained; its images come from "
                                 f"--calibration-images). Received: {flag}={value}")
    elif args.calibration_images is not None:
        raise ValueError("--calibration-images applies to --epochs 0 (the ImageNet "
                         "classifier); to train, give the labeled data with --dataset. "
                         f"Received: --calibration-images={args.calibration_images}")
    elif args.weights is not None:
        from tfresnet import transfer
        transfer.plan_phases(DEFAULT_EPOCHS if args.epochs is None else args.epochs,
                             args.freeze_epochs, args.unfreeze_from)
    if args.checkpoint is not None and args.epochs is not None:
        raise ValueError("--epochs trains a float model; with --checkpoint the model is "
                         "trained already (use --qat-epochs for the fine-tuning)")


def _resolve_model(args, config, checkpoint):
    """The ModelVariant the flags and the checkpoint's config describe, checked.

    The values are checked by :class:`tfresnet.variant.ModelVariant` (also the memory
    they need at --batch-size, before anything is allocated).
    """
    from tfresnet import registry
    from tfresnet.variant import ModelVariant

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
    from tfresnet import cli, train

    _check_flags(args)
    out = cli.check_writable_dir(args.out)  # checked now, created when the files are written
    if os.path.isdir(args.out):
        read_manifest(os.path.join(args.out, MANIFEST))
    checkpoint, config, saved_labels = None, {}, []
    if args.checkpoint is not None:
        checkpoint, config, saved_labels = train.load_run(args.checkpoint)
    variant = _resolve_model(args, config, checkpoint)
    res = variant.side
    seed = args.seed if args.seed is not None else int(config.get("seed", 0))
    if args.epochs == 0:
        return _plan_imagenet(args, variant, out, seed)
    dataset = args.dataset or config.get("dataset") or "digits"
    split = data.load(dataset, image_size=(res, res), data_dir=args.data_dir,
                      manual_dir=args.manual_dir, seed=seed,
                      val_fraction=float(config.get("val_fraction", 0.2)),
                      skip_bad_images=args.skip_bad_images)
    labels = [str(label) for label in split.labels]
    if checkpoint is not None:
        _check_checkpoint(args.checkpoint, checkpoint, variant, len(labels))
        if saved_labels and saved_labels != labels:
            raise ValueError(f"checkpoint {args.checkpoint!r} was trained on other labels "
                             f"({', '.join(saved_labels[:5])}, ...) than {split.name!r} "
                             f"({', '.join(labels[:5])}, ...); pass --dataset")
    elif args.weights is not None:
        from tfresnet import transfer
        kwargs = variant.builder_kwargs()
        kwargs.pop("input_shape", None)
        model, _ = transfer.load_weights(args.weights, variant.name, classes=len(labels),
                                         labels=labels, model_kwargs=kwargs,
                                         image_size=(variant.side, variant.side))  # fails fast
        transfer.unfreeze_index(model, args.unfreeze_from)
    else:  # checked for this many classes; built once, when it is trained
        variant.check(classes=len(labels), batch=args.batch_size, flags={"classes": None})
    return ExportPlan(
        variant=variant, split=split, labels=labels, checkpoint=checkpoint, checkpoint_path=args.checkpoint,
        out=out, io=args.io, epochs=DEFAULT_EPOCHS if args.epochs is None else args.epochs,
        qat_epochs=args.qat_epochs, lr=args.lr, qat_lr=args.qat_lr,
        batch_size=args.batch_size, augment=args.augment, seed=seed, strategy=args.strategy, calibration=args.calibration,
        threads=args.threads, min_agreement=args.min_agreement, weights=args.weights,
        freeze_epochs=args.freeze_epochs, unfreeze_from=args.unfreeze_from,
        qat_unfreeze=args.qat_unfreeze)


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
                   if f.lower().endswith(data.IMAGE_EXTENSIONS) and not f.startswith("."))
    if not paths:
        raise ValueError(f"--calibration-images {folder!r} has no images "
                         f"({'/'.join(e[1:] for e in data.IMAGE_EXTENSIONS)})")
    bad = data.undecodable_images(paths)
    if bad:
        path, reason = next(iter(bad.items()))
        raise ValueError(f"unreadable image {path!r}: {reason}; remove it from "
                         f"--calibration-images")
    import tensorflow as tf

    return np.stack([data._fit(tf.io.decode_image(tf.io.read_file(p), channels=3,
                                                   expand_animations=False), size).numpy()
                     for p in paths])


NO_LABEL = -1  # the label of an unlabeled image (the ImageNet export's own images)


def _plan_imagenet(args, variant, out, seed) -> ExportPlan:
    """``--epochs 0``: the ImageNet classifier itself, untrained here, its images from
    ``--calibration-images`` (unlabeled: the INT8 file is compared with the float model)."""
    import tensorflow as tf

    from tfresnet import transfer

    kwargs = variant.builder_kwargs()
    kwargs.pop("input_shape", None)
    labels = imagenet_labels()
    model, note = transfer.load_weights("imagenet", variant.name, classes=len(labels),
                                        model_kwargs=kwargs,
                                        image_size=(variant.side, variant.side))
    images = load_images(args.calibration_images, (variant.side, variant.side))
    ds = tf.data.Dataset.from_tensor_slices(
        (images, np.full(len(images), NO_LABEL, np.int32)))
    name = os.path.abspath(args.calibration_images)
    split = data.DataSplit(train=ds, val=ds, labels=labels, num_train=len(images),
                           num_val=len(images), name=name,
                           image_size=(variant.side, variant.side))
    return ExportPlan(
        variant=variant, split=split, labels=labels, checkpoint=model,
        checkpoint_path=f"ImageNet classifier ({note})", out=out, io=args.io, epochs=0,
        qat_epochs=0, lr=None, qat_lr=None, batch_size=args.batch_size,
        augment=args.augment, seed=seed, strategy=args.strategy,
        calibration=min(args.calibration, len(images)), threads=args.threads,
        min_agreement=args.min_agreement, weights="imagenet", imagenet=True)


def _say(text):
    print(f"[export] {text}", flush=True)


def _val_batches(split, batch_size=256):
    """The held-out images in uint8 batches with their labels."""
    for images, labels in split.val.batch(batch_size).as_numpy_iterator():
        yield images, labels


def calibration_images(split, count, seed):
    """``count`` training images (uint8), a seeded random sample for calibration."""
    shuffled = split.train.shuffle(min(max(count * 4, 1024), 10_000), seed=seed)
    images, _ = data.as_numpy(shuffled, limit=count)
    return images


def _training_settings(plan, qat: bool) -> dict:
    """fit() arguments shared by the float training and the QAT fine-tuning
    (``tfresnet.recipes.short_run_settings``); QAT runs at ``QAT_LR_FACTOR`` times the
    float rate."""
    base = plan.lr or recipes.get_recipe(plan.info.recipe).lr
    lr = (plan.qat_lr or base * QAT_LR_FACTOR) if qat else base
    return dict(dataset=plan.split, verbose=plan.verbose,
                **recipes.short_run_settings(plan.info.recipe,
                                     epochs=plan.qat_epochs if qat else plan.epochs,
                                     batch_size=plan.batch_size, lr=lr,
                                     augment=plan.augment, seed=plan.seed))


def train_float(plan, strategy):
    """Trains the float model on the plan's data (when there is no checkpoint)."""
    from tfresnet import train

    _say(f"No --checkpoint: training the float {plan.stem} on {plan.split.name} "
         f"({plan.split.num_train} images) for {plan.epochs} epoch(s) first "
         f"(pass --checkpoint to export a model trained with tfresnet.train)")
    transfer_args = {} if plan.weights is None else dict(
        weights=plan.weights, freeze_epochs=plan.freeze_epochs,
        unfreeze_from=plan.unfreeze_from)
    if plan.weights is not None:
        _say(f"Starting from --weights {plan.weights}")
    result = train.fit(plan.name, strategy=strategy, image_size=(plan.res, plan.res),
                       model_kwargs=plan.model_kwargs or None,
                       **_training_settings(plan, qat=False), **transfer_args)
    return result.model, result  # fit returns the portable model (train.portable_model)


def train_qat(plan, float_model, strategy):
    """Quantization-aware fine-tuning of ``float_model`` (wrapped inside the strategy's
    scope, as tfmot requires); returns the trained QAT model and its FitResult."""
    from tfresnet import train

    _say(f"Quantization-aware fine-tuning for {plan.qat_epochs} epoch(s)")
    with strategy.scope():
        qat = quantize.quantize_model(float_model)
    frozen = quantize.keep_frozen(float_model, qat) if not plan.qat_unfreeze else []
    if frozen:
        _say(f"QAT keeps the {len(frozen)} layers frozen in the float model frozen "
             f"({sum(int(w.shape.num_elements()) for w in qat.trainable_weights):,} trainable "
             f"weights; --qat-unfreeze trains them too)")
    with quantize.quantize_scope():
        result = train.fit(qat, strategy=strategy, **_training_settings(plan, qat=True))
    return result.model, result


# What is compared at the end, in table order: kind -> the table's label.
LABELS = {"float32_keras": "float32 Keras", "qat_keras": "QAT Keras",
          "float32": "float32 TFLite", "ptq_int8": "PTQ INT8 TFLite", "int8": "QAT INT8 TFLite"}
FILE_KINDS = ("float32", "ptq_int8", "int8")
NO_QAT_LABEL = "PTQ INT8 TFLite (no QAT)"  # --qat-epochs 0: the int8 file is the PTQ one


@dataclasses.dataclass
class Variant:
    """One model compared at the end: a Keras model or an exported ``.tflite``."""

    kind: str                     # a key of LABELS; the file kinds are FILE_KINDS
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
                probs = keras_models[v.kind].predict(data.normalize(images), verbose=0)
            else:
                probs = runners[v.kind].predict(images)
            top1 = np.argmax(probs, axis=-1)
            v.top1.extend(top1.tolist())
            v.correct += int(np.sum(top1 == labels))
        truth.extend(labels.tolist())
        count += len(labels)
    return count, truth


def _agreement(a: Variant, b: Variant) -> float:
    return float(np.mean(np.asarray(a.top1) == np.asarray(b.top1))) if a.top1 else float("nan")


def _with_metadata(plan, model_bytes, kind):
    from export import metadata

    from tfresnet import __version__

    what = {"int8": ("quantization-aware trained, full INT8" if plan.qat else
                     "post-training quantized (no quantization-aware training), full INT8"),
            "ptq_int8": "post-training quantized, full INT8",
            "float32": "float32"}[kind]
    io = "float32" if kind == "float32" else plan.io
    pixels = ("raw RGB bytes (the input quantization, scale 1/128 zero point 128, is the "
              "normalization)" if io == "uint8" else
              f"{io} (normalize (pixel - {data.MEAN:g}) / {data.STD:g})")
    trained_on = ("ImageNet (keras.applications weights)" if plan.imagenet else
                  data.shipped_name(plan.split.name))  # never a local path in a shipped file
    description = (f"{plan.info.paper}. Image classifier trained on {trained_on} "
                   f"({len(plan.labels)} classes), {what}; {plan.res}x{plan.res} {io} input: "
                   f"{pixels}.")
    return metadata.add_metadata(
        model_bytes, name=plan.file(kind)[:-len(".tflite")], description=description,
        version=__version__, author=AUTHOR, labels=plan.labels, mean=data.MEAN,
        std=data.STD, image_size=(plan.res, plan.res))


def _tensor_dict(t: TensorInfo) -> dict:
    return {"shape": list(t.shape), "dtype": t.dtype, "scale": t.scale,
            "zero_point": t.zero_point}


def manifest_entry(plan, v: Variant, accuracy, profile) -> dict:
    """The models.json entry of one exported file."""
    import hashlib

    tensors = io_tensors(v.tflite)
    return {
        "file": v.file, "name": v.file[:-len(".tflite")], "model": plan.name,
        "variant": {"int8": "qat_int8" if plan.qat else "ptq_int8", "ptq_int8": "ptq_int8",
                    "float32": "float32"}[v.kind],
        "qat": plan.qat and v.kind == "int8",
        **{k: plan.model_kwargs[k] for k in ("alpha",) if k in plan.model_kwargs},
        "input_size": [plan.res, plan.res], "input": _tensor_dict(tensors["input"]),
        "output": _tensor_dict(tensors["output"]),
        "normalization": {"mean": data.MEAN, "std": data.STD,
                          "rule": "(pixel - mean) / std"},
        "labels_file": LABELS_FILE, "labels": plan.labels,
        "dataset": "imagenet" if plan.imagenet else data.shipped_name(plan.split.name),
        "accuracy": accuracy, "latency_ms": v.latency.median_ms,
        "latency": v.latency.to_dict(), "params": profile.params, "macs": profile.macs,
        "size_bytes": v.size, "sha256": hashlib.sha256(v.tflite).hexdigest(),
    }


def manifest_header() -> dict:
    """The top-level models.json fields an export sets."""
    return {"generator": PROG, "normalization": {"mean": data.MEAN, "std": data.STD,
                                                 "rule": "(pixel - mean) / std"}}


def results_table(rows, agreement, count, reference="QAT Keras", int8="QAT INT8 TFLite",
                  images="held-out images") -> str:
    """The comparison table printed at the end (accuracy "-" where there are no labels)."""
    header = ("model", "file", "size", "params", "MACs", "latency", "accuracy")
    body = []
    for r in rows:
        size = "" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f} MB"
        latency = "" if r["latency_ms"] is None else f"{r['latency_ms']:.2f} ms"
        body.append((r["model"], r["file"] or "-", size, f"{r['params']:,}",
                     f"{r['macs'] / 1e6:.1f}M", latency,
                     "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"))
    return (tables.table(header, body, left=2, rule=True)
            + f"\ntop-1 agreement, {int8} vs {reference}: {100 * agreement:.2f}% "
              f"of {count} {images}")


class AgreementError(RuntimeError):
    """The INT8 model disagrees with the QAT Keras model more than allowed."""


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
    from export import latency
    from tfresnet import cli, train

    strategy = train.make_strategy(plan.strategy)
    float_fit = None
    if plan.checkpoint is None:
        float_model, float_fit = train_float(plan, strategy)
    else:
        float_model = plan.checkpoint
        _say(f"Float model from {plan.checkpoint_path}")
    if plan.qat:
        qat_model, qat_fit = train_qat(plan, float_model, strategy)
    else:
        qat_model = qat_fit = None
        _say("--qat-epochs 0: no quantization-aware training; the INT8 file is the float "
             "model with post-training full-INT8 quantization")

    images = "images" if plan.imagenet else "training images"
    _say(f"Converting (calibration: {plan.calibration} {images}; INT8 I/O {plan.io})")
    calibration = calibration_images(plan.split, plan.calibration, plan.seed)
    if plan.qat:
        converted = {"int8": to_int8(qat_model, calibration, io=plan.io),
                     "ptq_int8": to_int8(float_model, calibration, io=plan.io),
                     "float32": to_float32(float_model)}
        keras_kinds = ("float32_keras", "qat_keras")
    else:  # the PTQ file is the INT8 file: converted and written once
        converted = {"int8": to_int8(float_model, calibration, io=plan.io),
                     "float32": to_float32(float_model)}
        keras_kinds = ("float32_keras",)
    variants = [Variant(kind) for kind in keras_kinds] + [
        Variant(kind, _with_metadata(plan, converted[kind], kind), plan.file(kind),
                name=None if plan.qat or kind != "int8" else NO_QAT_LABEL)
        for kind in FILE_KINDS if kind in converted]

    what = (f"{plan.split.num_val} --calibration-images (unlabeled)" if plan.imagenet else
            f"{plan.split.num_val} held-out images")
    _say(f"Evaluating on {what}; timing ({plan.threads} thread, XNNPACK)")
    count, _ = evaluate(plan.split, float_model, qat_model, variants, threads=plan.threads)
    prof = tfresnet.profile(float_model, print_table=False)
    timed = latency.alternate_rounds({v.kind: v.tflite for v in variants if v.tflite},
                                     rounds=LATENCY_ROUNDS, threads=plan.threads)
    for v in variants:
        if v.tflite is not None:
            v.latency = latency.best_round(timed[v.kind])
    by_kind = {v.kind: v for v in variants}
    reference = by_kind["qat_keras" if plan.qat else "float32_keras"]
    agreement = _agreement(by_kind["int8"], reference)
    rows = [{"model": v.label, "file": v.file, "size_bytes": v.size,
             "params": prof.params, "macs": prof.macs,
             "latency_ms": v.latency.median_ms if v.latency else None,
             "latency": v.latency.to_dict() if v.latency else None,
             "accuracy": None if plan.imagenet else (v.correct / count if count else
                                                     float("nan"))} for v in variants]
    agreement_key = f"agreement_int8_vs_{reference.kind}"
    results = {
        "command": f"{PROG} {' '.join(argv or [])}".strip(), "model": plan.name,
        "model_kwargs": plan.model_kwargs, "res": plan.res, "io": plan.io,
        "dataset": "imagenet" if plan.imagenet else data.shipped_name(plan.split.name),
        "calibration_images_folder": (data.shipped_name(plan.split.name) if plan.imagenet
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
        "float_epochs": None if float_fit is None else plan.epochs,
        "qat_epochs": plan.qat_epochs, "qat": plan.qat,
        "quantization": ("quantization-aware training, then full INT8" if plan.qat else
                         "post-training full-INT8 quantization only; no QAT was done"),
        "batch_size_per_replica": plan.batch_size,
        "augment": plan.augment, "calibration_images": plan.calibration,
        "float_lr": None if float_fit is None else float_fit.config.get("lr"),
        "qat_lr": qat_fit.config.get("lr") if qat_fit else None, "threads": plan.threads,
        agreement_key: agreement, "agreement_reference": reference.label,
        "min_agreement": plan.min_agreement,
        "rows": rows,
    }
    table = results_table(rows, agreement, count, reference=reference.label,
                          int8=by_kind["int8"].label,
                          images="images (unlabeled)" if plan.imagenet else "held-out images")
    if not plan.qat:
        table += "\nNo quantization-aware training (--qat-epochs 0): post-training INT8 only."
    print(table, flush=True)
    if not agreement >= plan.min_agreement:
        raise AgreementError(
            f"the INT8 model agrees with the {reference.label} model on only "
            f"{100 * agreement:.2f}% of the {'' if plan.imagenet else 'held-out '}images (required: {100 * plan.min_agreement:g}%); nothing "
            f"was written")

    accuracy = {r["file"]: r["accuracy"] for r in rows if r["file"]}
    entries = [manifest_entry(plan, v, accuracy[v.file], prof) for v in variants if v.tflite]
    files = {v.file: v.tflite for v in variants if v.tflite}
    files[LABELS_FILE] = "".join(f"{label}\n" for label in plan.labels).encode()
    files[plan.results_file] = cli.to_json(results).encode()
    removed = publish(plan.out, files, entries, header=manifest_header(), say=_say)
    if removed:
        _say(f"Removed {len(removed)} temporary file(s) an interrupted export left in "
             f"{plan.out}")
    _say(f"Wrote {', '.join(files)}, {MANIFEST} to {plan.out}")
    results["files"] = sorted([*files, MANIFEST])
    results["table"] = table
    return results


def main(argv=None):
    """``python -m export.tflite``: returns the results dict (exit status 0), or exits
    1 when the INT8 model fails its agreement check, 2 on bad input."""
    import sys

    args = build_parser().parse_args(argv)
    plan = plan_export(args)
    plan.verbose = 1 if sys.stdout.isatty() else 2
    try:
        return export(plan, argv=list(sys.argv[1:] if argv is None else argv))
    except AgreementError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(1)
