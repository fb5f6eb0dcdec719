"""``python -m export.tflite``: its flags, then :func:`main`, which runs the export job.

Every flag is an :class:`export.job.config.ExportConfig` setting under its name
(``qat_epochs``: ``--qat-epochs``) with the config's default; :func:`flag_words` is the one
place that puts the library's errors in the flags' words. The top of this module imports
no TensorFlow: :func:`parse` builds the config, so every check that needs no model or data
runs before it loads (the rest: :func:`export.job.plan.plan_export`); :func:`main` then
imports TensorFlow quietly and the job (:mod:`export.job.pipeline`).
"""

from __future__ import annotations

import shlex
import sys

from export.convert import formats
from export.convert.defaults import IO_NAMES
from export.job.config import (
    DEFAULT_EPOCHS,
    DEFAULT_MODEL,
    PATH_SETTINGS,
    QAT_LR_FACTOR,
    ExportConfig,
    SettingError,
)
from export.job.gates import AgreementError, ChanceError
from export.names import EXPORT_PROG as PROG
from tfresnet.training.command import add_transfer
from tfresnet.utils import cli, flags, quiet, stats
from tfresnet.utils.flags import MAX_EPOCHS

DEFAULTS = ExportConfig()
# The flags that take a local path (the model given, and the path settings): shipped
# files name them by base name only (shipped_command).
PATH_FLAGS = ("--checkpoint", *(f"--{name.replace('_', '-')}" for name in PATH_SETTINGS))


def build_parser():
    """The ``python -m export.tflite`` flags."""
    p = cli.ArgumentParser(
        prog=PROG, description=(
            "Quantization-aware INT8 TFLite export for Android. Takes a trained model "
            "(--checkpoint) or trains one on the data first, fine-tunes it "
            "quantization-aware, converts it to a full-integer .tflite (verified: every "
            "op INT8, uint8 input = raw RGB bytes), writes float32 and post-training INT8 "
            "baselines, labels.txt, a models.json manifest and a results JSON into --out, "
            "and prints accuracy, agreement, size, latency, params and MACs."))
    flags.add_model(p, help=f"{flags.MODEL_HELP}; default {DEFAULT_MODEL}, or the "
                    f"checkpoint's")
    flags.add_variant(p, alpha_help="MobileNet width multiplier > 0 (default 1.0 or the "
                      "checkpoint's; e.g. 0.75)", res_help="input side: MobileNet a "
                      "multiple of 32, at least 32 (default 224); other models at least "
                      "their minimum side (default: the paper's input, or the checkpoint's)")
    p.add_argument("--checkpoint", type=cli.non_empty, help="a tfresnet.train run directory "
                   "or .keras file; without it the float model is trained here first")
    flags.add_dataset(p, default=None, help=f"{flags.DATASET_HELP}; default "
                      f"{flags.DEFAULT_DATASET} without a checkpoint, with one the data it "
                      f"was trained on")
    flags.add_skip_bad_images(p, where="the results JSON")
    flags.add_epochs(p, low=0, help=f"float training epochs without --checkpoint (default "
                     f"{DEFAULT_EPOCHS}: enough for the bundled digits; give more for real "
                     f"data, or train with tfresnet.train); 0 with --weights imagenet "
                     f"--qat-epochs 0 --calibration-images FOLDER exports the ImageNet "
                     f"classifier itself (1,000 classes), untrained")
    p.add_argument("--qat-epochs", type=cli.int_range(0, MAX_EPOCHS), default=DEFAULTS.qat_epochs,
                   help="quantization-aware fine-tuning epochs; 0: no QAT, the INT8 file is "
                   "the float model post-training quantized (calibrated on the data) and "
                   "the report says so")
    p.add_argument("--calibration-images", type=cli.non_empty, metavar="FOLDER",
                   help="with --epochs 0 (the ImageNet classifier): a folder of your "
                   "images, unlabeled (every image file under it, sub-folders included); "
                   "they calibrate the INT8 file and measure its top-1 agreement with the "
                   "float model")
    flags.add_lr(p, help="float training learning rate at the global batch, divided by 10 "
                 "at 1/2 and 3/4 of the epochs (default: the model recipe's rate, e.g. "
                 "0.045 for MobileNet's RMSprop)")
    flags.add_lr(p, "--qat-lr", help=f"QAT learning rate (default {QAT_LR_FACTOR:g} x the "
                 f"float one)")
    flags.add_batch_size(p, default=DEFAULTS.batch_size, help="images per replica per step, "
                         "float training and QAT (many steps in a few epochs, so "
                         "BatchNorm's moving statistics settle)")
    flags.add_augment(p, default=DEFAULTS.augment, help="training augmentation (a run of a "
                      "few epochs learns faster without; 'mobilenet', 'imagenet', 'cifar' "
                      "are the papers')")
    p.add_argument("--io", choices=IO_NAMES, default=DEFAULTS.io,
                   help="INT8 model input/output type: uint8 (TFLite Task Library and "
                   "MediaPipe; raw RGB bytes in), int8, or float32 (quantize/dequantize "
                   "inside the model)")
    p.add_argument("--formats", type=formats.format_names, default=list(DEFAULTS.formats),
                   help=f"comma-separated TFLite formats to write, or all: "
                   f"{', '.join(formats.FORMATS)} (int8: the full-integer file, "
                   f"always written). float16: float16 weights, half the float32 size; "
                   f"dynamic: INT8 weights, float activations, no calibration; int16x8: "
                   f"16-bit activations, 8-bit weights. The three are converted from the "
                   f"float model, take float32 input and are measured beside the others")
    p.add_argument("--debug-quantization", action="store_true",
                   help="also write the per-layer INT8 error of the float model "
                   "(TensorFlow's QuantizationDebugger on the calibration images: "
                   "STEM_quant_debug.csv/.json/.png, RMSE and rmse/scale per layer with "
                   "its share of the MACs) and print the five worst layers")
    p.add_argument("--float-layers", type=cli.non_empty, nargs="+", metavar="LAYER",
                   help="also write STEM_mixed_int8.tflite: the post-training INT8 file with "
                   "these Keras conv/dense layers left float (the debugger's denylist; see "
                   "--debug-quantization for the worst layers); not integer-only: NNAPI/NPU "
                   "run those ops on the CPU")
    flags.add_out(p, default=DEFAULTS.out)
    flags.add_calibration(p, default=DEFAULTS.calibration)
    flags.add_threads(p, default=DEFAULTS.threads)
    p.add_argument("--min-agreement", type=cli.float_range(0, 1), default=DEFAULTS.min_agreement,
                   help=f"required top-1 agreement of the shipped INT8 file with its Keras "
                   f"model (the QAT Keras model; the float one for a post-training file) on "
                   f"the held-out data; only a shortfall that is clear for that many images "
                   f"(one-sided exact binomial test, p < {stats.CLEAR_P_VALUE:g}) refuses: "
                   f"nothing is written and the exit status is 1. 1 refuses any "
                   f"disagreement, 0 none")
    flags.add_strategy(p, default=DEFAULTS.strategy, help="tf.distribute strategy for "
                       "training: mirrored, one, default (multiworker: train with "
                       "tfresnet.train, then export with --checkpoint)")
    flags.add_seed(p, default=None, help=f"seed of the data split, training and "
                   f"calibration sample (default {flags.DEFAULT_SEED}; with a checkpoint: "
                   f"its seed)")
    add_transfer(p)
    p.add_argument("--allow-chance", action="store_true", help="publish a float model "
                   "whose held-out accuracy is not above chance (refused by default, exit "
                   "status 1); the results JSON and models.json then carry the warning")
    p.add_argument("--qat-unfreeze", action="store_true", help="train the layers frozen in "
                   "the float model during the quantization-aware fine-tuning too (default: "
                   "a frozen backbone stays frozen)")
    return p


def config_of(args, **settings) -> ExportConfig:
    """The :class:`ExportConfig` the parsed flags describe (``--checkpoint`` is the model
    to export, not a setting), with ``settings`` (e.g. ``verbose``); ValueError in the
    settings' words for a bad one."""
    given = {name: getattr(args, name) for name in ExportConfig.names()
             if name not in settings and hasattr(args, name)}
    given["formats"] = tuple(given["formats"])
    given["float_layers"] = tuple(given["float_layers"] or ())
    return ExportConfig.create(**given, **settings)


def flag_words(text: str, args=None) -> str:
    """A :class:`export.job.config.SettingError`'s text (or a gate's refusal) in the flags'
    words (:func:`tfresnet.utils.cli.flag_words` with every setting's flag, its name with
    dashes, and ``checkpoint``, the model given, as ``--checkpoint``). With ``args`` (the
    parsed flags), for an error from the library below the config (the training, the
    model's checks): only the values the flags gave."""
    table = {name: "--" + name.replace("_", "-")
             for name in (*ExportConfig.names(), "checkpoint")}
    given = None if args is None else {name: getattr(args, name, None) for name in table}
    return cli.flag_words(text, table, given)


def parse(argv=None):
    """The parsed flags, their :class:`ExportConfig` checked (no TensorFlow); bad input
    is one line in the flags' words (argparse exits 2)."""
    args = build_parser().parse_args(argv)
    try:
        config_of(args)
    except SettingError as err:
        raise cli.UsageError(flag_words(str(err))) from None
    return args


def shipped_command(argv) -> str:
    """The command line as shipped files record it: every path a flag took
    (:data:`PATH_FLAGS`) by its base name, never a local path."""
    from export.job.shipped import shipped_checkpoint
    from tfresnet.data.sources import shipped_name

    args = parse(list(argv))
    paths = {v for v in (getattr(args, flag.lstrip("-").replace("-", "_")) for flag in PATH_FLAGS)
             if v is not None}

    def shipped(token):
        flag, eq, value = token.partition("=")
        if eq and flag.startswith("--") and value in paths:
            return f"{flag}={shipped(value)}"
        if token not in paths:
            return token
        return shipped_checkpoint(token) if token == args.checkpoint else shipped_name(token)

    return shlex.join([*PROG.split(), *map(shipped, argv)])


def main(argv=None):
    """``python -m export.tflite``: the flags checked, then TensorFlow and the job loaded
    and run; returns the results JSON's content with ``files`` and ``table`` (exit status
    0), or exits 1 when a gate refuses the model, 2 on bad input (each error in the flags'
    words, :func:`flag_words`)."""
    args = parse(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet.import_tensorflow_quietly()
    from export.job.pipeline import run
    from export.job.plan import plan_export

    try:
        config = config_of(args, verbose=1 if sys.stdout.isatty() else 2)
        result = run(plan_export(config, args.checkpoint), command=shipped_command(argv),
                     show=lambda table: print(flag_words(table, args), flush=True))
    except (AgreementError, ChanceError) as err:
        print(f"{PROG}: error: {flag_words(str(err))}", file=sys.stderr)
        sys.exit(1)
    except SettingError as err:  # the one place the library's words become flags
        raise ValueError(flag_words(str(err))) from None
    except ValueError as err:
        if cli.is_disk_full(err):
            raise
        raise ValueError(flag_words(str(err), args)) from None
    return {**result.to_json(), "files": list(result.files), "table": result.table}
