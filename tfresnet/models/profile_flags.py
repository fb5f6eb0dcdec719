"""The ``python -m tfresnet.profile`` flags; no TensorFlow (the job:
:func:`tfresnet.models.profiling.main`, which checks the name against the registry)."""

from __future__ import annotations

from tfresnet.utils import cli
from tfresnet.utils import flags

PROG = "python -m tfresnet.profile"


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Print a registry model's per-layer parameters and multiply-adds, "
                    "then the totals beside the published figures: ResNet (arXiv:1512.03385), "
                    "MobileNets (arXiv:1704.04861), AlexNet (NIPS 2012), BatchNorm "
                    "(arXiv:1502.03167), keras.applications and torchvision counts.")
    parser.add_argument("name", metavar="NAME", type=cli.non_empty,
                        help="registry model name, e.g. resnet50, mobilenet_v1, alexnet")
    flags.add_variant(parser, alpha_help="width multiplier (> 0), for models that have one "
                      "(mobilenet_v1); default 1.0", res_help="input side for models with a "
                      f"resolution multiplier (mobilenet_v1): {flags.MOBILENET_RES_RULE}; "
                      "default 224")
    parser.add_argument("--input-size", type=cli.int_range(), metavar="S",
                        help="square input side for any model (default: the paper's, "
                             "e.g. 224, 227 for alexnet, 32 for CIFAR)")
    parser.add_argument("--classes", type=cli.int_range(), metavar="N",
                        help="number of classes of the classifier (default: the paper's, "
                             "1000 or 10 for CIFAR)")
    parser.add_argument("--json", metavar="PATH", type=cli.non_empty,
                        help="also write the profile (totals, layers, published figures) "
                             "as JSON to PATH")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the totals, not the per-layer table")
    return parser


def parse(argv=None):
    return build_parser().parse_args(argv)
