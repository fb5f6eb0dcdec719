"""The ``python -m export.metadata`` flags; no TensorFlow (the job:
:func:`export.metadata.writer.main`)."""

from __future__ import annotations

from tfresnet.utils import cli

PROG = "python -m export.metadata"


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Print the metadata embedded in a .tflite image classifier (what "
                    "MediaPipe and the TFLite Task Library read) as JSON.")
    parser.add_argument("model", type=cli.non_empty, help="the .tflite file")
    return parser


def parse(argv=None):
    return build_parser().parse_args(argv)
