"""``python -m export.compare``: its flags and the checks across them, then :func:`main`.

The top of this module imports no TensorFlow: :func:`parse` checks every flag first;
:func:`main` then imports TensorFlow quietly and the job (:mod:`export.compare.job`),
which checks the models' names and files and runs the comparison.
"""

from __future__ import annotations

from export.compare.defaults import DEFAULT_OUT, DEFAULT_ROUNDS, QUICK_CALIBRATION_IMAGES
from export.convert.defaults import CALIBRATION_IMAGES
from export.job.config import DEFAULT_EPOCHS  # export.tflite's short run
from tfresnet.training.recipes import SHORT_RUN_BATCH_SIZE
from tfresnet.utils import cli, fileio, flags, quiet
from tfresnet.utils.flags import MAX_RUNS

PROG = "python -m export.compare"


def build_parser():
    p = cli.ArgumentParser(
        prog=PROG,
        description="Compare models side by side: parameters, MACs, TFLite size, latency "
                    "(LiteRT + XNNPACK) and accuracy, with the published figures beside; "
                    "writes report.md, results.csv, results.json and PNG plots.")
    flags.add_model(p, nargs="+", default=[], metavar="NAME[@SIDE]",
                    help="registry model names (tfresnet.list_models()); NAME@SIDE sets "
                    "the input side, e.g. resnet20@16 (default: the paper's)")
    flags.add_variant(p, nargs="+", alpha_help="MobileNet width multipliers (default 1.0)",
                      res_help="MobileNet resolutions, multiples of 32 (default 224)")
    p.add_argument("--checkpoint", nargs="+", type=cli.non_empty, default=[], metavar="RUN",
                   help="training run dirs (or .keras files) to evaluate; accuracy on the "
                        "run's data set (or --dataset)")
    p.add_argument("--quick", action="store_true",
                   help="untrained models, cost only (no accuracy); INT8 calibrated on "
                        "uniform random images, good for size and latency only")
    flags.add_dataset(p, default=None, dirs=False, help=f"data set to train each --model "
                      f"briefly on and to measure accuracy with: {flags.DATASET_HELP}")
    flags.add_epochs(p, default=DEFAULT_EPOCHS, help="training epochs with --dataset "
                     "(export.tflite's short run, the model's recipe with its learning rate "
                     "divided by 10 at 1/2 and 3/4 of the run, no augmentation)")
    flags.add_steps_per_epoch(p)
    flags.add_batch_size(p, help=f"training batch size (default {SHORT_RUN_BATCH_SIZE}, as "
                         "export.tflite: many steps in a few epochs, so BatchNorm's moving "
                         "statistics settle)")
    p.add_argument("--eval-images", type=cli.positive_int(), default=1000,
                   help="validation images to measure accuracy on")
    flags.add_calibration(p, default=None, help=f"images that calibrate INT8 (default "
                          f"{QUICK_CALIBRATION_IMAGES} random with --quick, else "
                          f"{CALIBRATION_IMAGES} training images)")
    flags.add_threads(p, nargs="+", default=[1, 2], help="interpreter thread counts to time")
    flags.add_timing(p, runs=50, rounds=DEFAULT_ROUNDS,
                     runs_help="timed runs per measurement, at least",
                     rounds_help="timing passes over all models; each latency is the best "
                     "round's median, so a slow spell of a shared machine does not decide it")
    p.add_argument("--warmup", type=cli.int_range(0, MAX_RUNS), default=10,
                   help="untimed runs first")
    p.add_argument("--min-seconds", type=cli.float_range(0, 3600), default=1.0,
                   help="time each measurement for at least this long")
    p.add_argument("--repeat-check", type=cli.int_range(0, 1000), default=1, metavar="N",
                   help="time the first N models a second time (own rounds, later in each "
                        "pass) and report how far the figures differ (0: off)")
    flags.add_seed(p, help="seed for models, data, calibration")
    flags.add_out(p, default=DEFAULT_OUT)
    p.add_argument("--fresh", action="store_true",
                   help="measure every model again instead of reusing stored results")
    return p


def check(args):
    """The checks across flags (each flag's own range is its argparse type)."""
    if not args.model and not args.checkpoint:
        raise cli.UsageError("give --model NAME ... and/or --checkpoint RUN ...")
    if args.quick and (args.dataset or args.checkpoint):
        raise cli.UsageError("--quick measures untrained models; it does not go with "
                             "--dataset or --checkpoint")
    if args.model and not args.quick and not args.dataset:
        raise cli.UsageError("give --quick (cost only, untrained) or --dataset (train "
                             "briefly and measure accuracy) for --model")
    if len(set(args.threads)) != len(args.threads):
        raise cli.UsageError(f"--threads lists a count twice. Received: {args.threads}")
    fileio.check_writable_dir(args.out)


def parse(argv=None):
    args = build_parser().parse_args(argv)
    check(args)
    return args


def settings_from_args(args):
    """The :class:`export.compare.measure.Settings` of the flags that are not about
    models; raises UsageError."""
    from export.compare.measure import Settings

    check(args)
    calibration = args.calibration or (QUICK_CALIBRATION_IMAGES if args.quick
                                       else CALIBRATION_IMAGES)
    return Settings(quick=args.quick, threads=tuple(args.threads), runs=args.runs,
                    warmup=args.warmup, min_seconds=args.min_seconds,
                    calibration_images=calibration, seed=args.seed, rounds=args.rounds,
                    dataset=None if args.quick else args.dataset,
                    epochs=None if args.quick else args.epochs,
                    steps_per_epoch=None if args.quick else args.steps_per_epoch,
                    batch_size=None if args.quick else args.batch_size,
                    eval_images=None if args.quick else args.eval_images)


def main(argv=None) -> int:
    """``python -m export.compare``: the flags checked, then TensorFlow and the job loaded;
    the models named are checked and compared; returns 0 (bad input: UsageError)."""
    args = parse(argv)
    quiet.import_tensorflow_quietly()
    from export.compare.job import check_checkpoint, check_unique, checkpoint_config, compare, make_configs
    from export.compare.report import summary_text

    settings = settings_from_args(args)
    configs = make_configs(args.model, alphas=args.alpha, resolutions=args.res)
    for path in args.checkpoint:
        check_checkpoint(path)
    configs += [checkpoint_config(path)[0] for path in args.checkpoint]
    check_unique(configs)
    print(f"Comparing {len(configs)} model{'s' if len(configs) > 1 else ''} into {args.out}",
          flush=True)
    report = compare(configs, settings, out=args.out, fresh=args.fresh,
                     repeat=args.repeat_check,
                     log=lambda text: print(text, flush=True))
    print()
    print(summary_text(report.rows, list(settings.threads)))
    print(f"\nReport: {report.files['report']} (the published figures beside ours, "
          f"repeatability, plots); every figure: {report.files['csv']}, "
          f"{report.files['json']}")
    return 0
