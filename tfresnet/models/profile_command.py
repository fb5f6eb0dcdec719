"""``python -m tfresnet.profile``: its flags, then :func:`main`, which profiles.

The top of this module imports no TensorFlow (``--help`` and a bad flag answer before it
loads); :func:`main` parses, then imports TensorFlow quietly, the registry and
:mod:`tfresnet.models.profiling` (``tfresnet/profile.py`` is the entry)."""

from __future__ import annotations

import dataclasses
import os

from tfresnet.utils import cli, fileio, flags, quiet

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


_PUBLISHED_KEYS = ("trainable", "non_trainable", "params_source", "macs", "macs_source")


def main(argv=None) -> int:
    """``python -m tfresnet.profile``: the flags checked, then the model built and profiled
    (TensorFlow loads here); returns 0, raises ValueError on bad input."""
    args = parse(argv)
    if args.json is not None:
        folder = os.path.dirname(os.path.abspath(args.json))
        if os.path.isdir(args.json) or not os.path.isdir(folder):
            raise cli.UsageError(f"--json needs a file path in an existing folder. "
                                 f"Received: --json {args.json}")
        try:
            fileio.check_writable_file(args.json)
        except cli.UsageError as err:
            raise cli.UsageError(f"--json: {err}. Received: --json {args.json}") from None
    quiet.import_tensorflow_quietly()
    from tfresnet.models import published
    from tfresnet.models.profiling import profile, shape_text, totals_text
    from tfresnet.models.registry import list_models, model_info
    from tfresnet.models.variant import ModelVariant

    info = model_info(args.name)
    kwargs = {}
    for flag in ("alpha", "res"):
        value = getattr(args, flag)
        if value is None:
            continue
        if flag not in info.extra_args:
            having = [n for n in list_models() if flag in model_info(n).extra_args]
            raise cli.UsageError(f"--{flag} applies only to {', '.join(having)}, not "
                                 f"{args.name}. Received: --{flag} {value}")
        kwargs[flag] = value
    if args.input_size is not None:
        kwargs["input_shape"] = (args.input_size, args.input_size, info.input_shape[2])
    if args.classes is not None:
        kwargs["classes"] = args.classes
    side = args.res or args.input_size or info.input_shape[0]
    if isinstance(side, int) and side > 0 and (args.classes is None or args.classes > 0):
        # absurd sizes are refused before anything is allocated
        try:
            ModelVariant(args.name, args.alpha if args.alpha and args.alpha > 0 else None,
                         side).check_memory(classes=args.classes or 1000)
        except ValueError as err:  # the library's words in this command's flags
            raise cli.UsageError(cli.flag_words(str(err), {
                "alpha": "--alpha", "classes": "--classes",
                "res": "--res" if args.res else "--input-size"})) from None
    model = info.builder(**kwargs)
    result = profile(model, print_table=not args.quiet)
    figures = published.lookup(args.name, alpha=kwargs.get("alpha"),
                               side=model.input_shape[1], classes=args.classes)
    print(f"{args.name} ({model.name}), input {shape_text(result.input_shape)}")
    print(totals_text(result, figures))
    if args.json is not None:
        data = {**result.to_dict(), "registry_name": args.name,
                "published": {key: value for key, value in dataclasses.asdict(figures).items()
                              if key in _PUBLISHED_KEYS}}
        fileio.write_text(args.json, fileio.to_json(data, indent=1))
    return 0
