"""``python -m experiments NAME [flags]``: the flags of every experiment, then :func:`main`.

The top of this module imports no TensorFlow: ``--help`` and a bad flag answer before
it loads. :func:`main` parses, then imports TensorFlow quietly and the job
(:func:`experiments.runner.run`), which loads the data and runs the experiment. Each
experiment's defaults, which the help names: :mod:`experiments.defaults`.
"""

from __future__ import annotations

from experiments import EXPERIMENTS, defaults
from experiments.defaults import PROG
from tfresnet.utils import cli, flags, quiet
from tfresnet.utils.flags import MAX_EPOCHS, MAX_LR, MAX_RUNS, MAX_STEPS

# A CIFAR ResNet depth (the flags defaults.DEPTH_FLAGS): its bound here, its 6n+2 rule
# (tfresnet.models.families.resnet's) checked by experiments.runner once TensorFlow is loaded.
cifar_depth = cli.int_range(high=defaults.MAX_CIFAR_DEPTH)


def _shared():
    common = cli.ArgumentParser(add_help=False)
    flags.add_out(common, help="output folder (default reports/experiments/NAME)")
    length = common.add_mutually_exclusive_group()
    length.add_argument("--steps", type=cli.positive_int(MAX_STEPS), help="training steps of "
                        "every run (default: the experiment's, see the description above)")
    length.add_argument("--epochs", type=cli.float_range(0, MAX_EPOCHS, low_open=True),
                        help="training length in passes over the training set instead")
    flags.add_seed(common, help="seed of weights, data split, shuffling and augmentation")
    flags.add_dataset(common, dirs=False)
    flags.add_batch_size(common, help="images per step (default: the experiment's, see the "
                         "description above)")
    quick = defaults.QUICK
    common.add_argument("--quick", action="store_true", help=f"a smoke test: "
                        f"{quick['steps']} steps of {quick['batch_size']} images, for tests; "
                        f"its summary draws no conclusion")
    curves = cli.ArgumentParser(add_help=False)
    flags.add_image_size(curves, help=f"input side (default: the experiment's for digits, "
                         f"{defaults.DIGITS_SIDE} unless said, their own size; else 32, the CIFAR size)")
    curves.add_argument("--log-every", type=cli.positive_int(), help=f"steps between two "
                        f"logged points (default: steps / {defaults.LOG_POINTS})")
    flags.add_lr(curves, help="learning rate at that batch size")
    flags.add_augment(curves, help="training augmentation (default: 'none' on digits, where "
                      "the paper's 4-pixel pad-and-crop would shift an 8x8 digit by half its "
                      "size; 'cifar', the paper's, on other data)")
    flags.add_data_dirs(curves)
    return common, curves


def build_parser() -> cli.ArgumentParser:
    common, curves = _shared()
    p = cli.ArgumentParser(
        prog=PROG, description="Reproduce the papers' experiments on a CPU; each writes a "
        "PNG figure, the raw numbers (CSV) and summary.md into --out.")
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name in EXPERIMENTS:
        _ADD[name](sub, [common, curves] if defaults.CURVES[name] else [common],
                   defaults.DEFAULTS[name])
    return p


def parse(argv=None):
    return build_parser().parse_args(argv)


def main(argv=None):
    """``python -m experiments NAME [flags]``: the flags checked, then TensorFlow and the
    experiment loaded and run; returns the experiment's Result."""
    args = parse(argv)
    quiet.import_tensorflow_quietly()
    from experiments import runner

    try:
        return runner.run(args)
    except cli.UsageError:
        raise
    except ValueError as err:  # the one place the library's words become flags
        if cli.is_disk_full(err):
            raise
        raise cli.UsageError(cli.flag_words(str(err), FLAGS)) from None


# The library's settings (the words of its errors: the model variant's, the memory check's,
# the data's) as the experiments' flags; the multipliers grid says its own
# (export.compare.make_configs).
FLAGS = {"alpha": "--alpha", "res": "--image-size", "image_size": "--image-size",
         "batch_size": "--batch-size", "data_dir": "--data-dir", "manual_dir": "--manual-dir"}


# ----------------------------------------------------------------- each experiment's flags
def _words(values) -> str:
    return " ".join(f"{v:g}" for v in values)


def _defaults(d) -> str:
    """An experiment's ``DEFAULTS`` as its description names them: "2000 steps, batch 128,
    lr 0.1"."""
    length = f"{d['steps']} steps" if "steps" in d else f"{d['epochs']} epochs"
    return f"{length}, batch {d['batch_size']}" + (f", lr {d['lr']:g}" if "lr" in d else "")


def _depths(p):
    p.add_argument("--depths", type=cifar_depth, nargs=2, default=(20, 56),
                   metavar=("SHALLOW", "DEEP"), help="the two depths, 6n+2")


def _degradation(sub, parents, d):
    p = sub.add_parser("degradation", parents=parents, help="plain vs ResNet, 20 vs 56 "
                       "layers (ResNet paper Fig. 1 and 6)", description=(
                           "Train plain-20/56 and ResNet-20/56 with one recipe and plot "
                           "training (thin) and validation (bold) error against iterations. "
                           f"Defaults: {_defaults(d)} (the paper's)."))
    _depths(p)


def _batchnorm(sub, parents, d):
    b = sub.add_parser("batchnorm", parents=parents, help="with and without BN, BN at 5x and "
                       "30x the learning rate (BN paper Fig. 1 and 2)", description=(
                           "Train one network without BN, with BN, and with BN at a higher "
                           "learning rate; plot validation accuracy against steps and report "
                           "the steps each needs to reach a common accuracy. Defaults: "
                           f"{_defaults(d)} (a rate the network without BN can train at)."))
    flags.add_model(b, default="plain20", help="registry network with BN (plain20: like the "
                    "BN paper's Inception, it has no shortcuts)")
    b.add_argument("--lr-multipliers", type=cli.float_range(0, MAX_LR, low_open=True),
                   nargs="+", default=defaults.BATCHNORM_MULTIPLIERS, metavar="M",
                   help="learning-rate multipliers of the further BN runs (the paper's "
                   "BN-x5 and BN-x30)")
    b.add_argument("--target", default="common", help="validation accuracy to reach: a "
                   "number in (0, 1], 'common' (the highest accuracy every run reaches) or "
                   "'baseline' (the best the no-BN run reaches, the paper's rule)")


def _multipliers(sub, parents, d):
    m = sub.add_parser("multipliers", parents=parents, help="MobileNet v1 alpha x res: "
                       "accuracy against MACs, latency beside (MobileNet paper Tables 6, 7)",
                       description=(
                           "Train MobileNet v1 at every alpha x resolution through "
                           "export.compare (MACs, TFLite float32/INT8 accuracy and latency), "
                           "and plot accuracy against MACs with the INT8 latency beside. "
                           f"Defaults: {_defaults(d)}."))
    flags.add_image_size(m, help=f"the largest resolution; the grid steps down by "
                         f"{flags.MOBILENET_RES_MULTIPLE} like the "
                         f"paper's 224/192/160/128 (default: {defaults.MULTIPLIERS_SIDE['digits']} "
                         f"for digits, whose 8x8 images any resolution only upsamples; else "
                         f"{defaults.MULTIPLIERS_SIDE['other']})")
    m.add_argument("--alphas", type=cli.float_range(), nargs="+", help=f"width multipliers "
                   f"(default: the paper's; --quick: {_words(defaults.QUICK_ALPHAS)})")
    m.add_argument("--resolutions", type=cli.int_range(), nargs="+", help=f"input sides, "
                   f"{flags.MOBILENET_RES_RULE} (default: from --image-size; --quick: "
                   f"{_words(defaults.QUICK_RESOLUTIONS)})")
    m.add_argument("--latency-runs", type=cli.positive_int(MAX_RUNS), help=f"timed runs per "
                   f"latency (default {defaults.LATENCY_RUNS['default']}; --quick: "
                   f"{defaults.LATENCY_RUNS['quick']})")
    m.add_argument("--fresh", action="store_true", help="measure again the models "
                   "export.compare has stored in --out/compare")


def _shortcuts(sub, parents, d):
    p = sub.add_parser("shortcuts", parents=parents, help="shortcut options A, B, C on one "
                       "network (ResNet paper Table 3)", description=(
                           "Train one CIFAR ResNet with option A (zero-padding), B "
                           "(projection where the shape changes) and C (projection "
                           "everywhere) shortcuts, same recipe, seed and data; plot their "
                           "error curves and compare final errors and parameters. Defaults: "
                           f"{_defaults(d)} (the paper's)."))
    p.add_argument("--depth", type=cifar_depth, default=20, help="CIFAR depth 6n+2")


def _gradients(sub, parents, d):
    p = sub.add_parser("gradients", parents=parents, help="per-layer gradient norms: plain "
                       "without BN, plain with BN, ResNet (ResNet paper Sec. 4.1)", description=(
                           "Measure the gradient norm of every 3x3 conv kernel of plain-N "
                           "without BN, plain-N with BN and ResNet-N at initialization and "
                           "after a short training; plot them against depth (log scale). "
                           f"Defaults: depth {defaults.GRADIENTS_DEPTH}, {_defaults(d)} (a rate the "
                           "network without BN can train at)."))
    p.add_argument("--depth", type=cifar_depth, default=defaults.GRADIENTS_DEPTH,
                   help="CIFAR depth 6n+2")


def _responses(sub, parents, d):
    p = sub.add_parser("responses", parents=parents, help="std of each 3x3 layer's response, "
                       "plain vs ResNet, 20 vs 56 layers (ResNet paper Fig. 7)", description=(
                           "Train plain-20/56 and ResNet-20/56 with one recipe, then plot "
                           "the standard deviation of every 3x3 layer's response (after "
                           "BN, before the ReLU or addition) on the validation images, by "
                           "layer and sorted by magnitude. Defaults: "
                           f"{_defaults(d)} (the paper's)."))
    _depths(p)


def _separable(sub, parents, d):
    p = sub.add_parser("separable", parents=parents, help="separable vs full convs, thinner "
                       "vs shallower MobileNet (MobileNet paper Tables 4 and 5)", description=(
                           "Train MobileNet v1 (separable), its full-conv twin, a 0.75x "
                           "thinner one and the shallow one (without the five 14x14x512 "
                           "layers) with one recipe; plot their curves and compare accuracy "
                           "with MACs and parameters. Defaults: "
                           f"{_defaults(d)}, alpha {defaults.SEPARABLE_ALPHA:g}, "
                           f"{flags.MOBILENET_RES_MULTIPLE}x{flags.MOBILENET_RES_MULTIPLE} "
                           "(MobileNet's smallest input)."))
    p.add_argument("--alpha", type=cli.float_range(0, low_open=True),
                   default=defaults.SEPARABLE_ALPHA,
                   metavar="A", help="MobileNet width multiplier of the mobilenet, conv and "
                   "shallow networks; thinner is 0.75x this (0.5: the full-conv network at "
                   "alpha 1 has 29M parameters)")


_ADD = {"degradation": _degradation, "batchnorm": _batchnorm, "multipliers": _multipliers,
        "shortcuts": _shortcuts, "gradients": _gradients, "responses": _responses,
        "separable": _separable}
