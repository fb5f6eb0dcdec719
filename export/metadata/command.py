"""``python -m export.metadata``: a ``.tflite``'s metadata, printed as JSON.

The top of this module imports no TensorFlow: :func:`parse` checks the flags and
:func:`main` the file first, then imports TensorFlow quietly and the reader
(:func:`export.metadata.reader.read_metadata`).
"""

from __future__ import annotations

import json

from tfresnet.utils import cli, fileio, quiet

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


def main(argv=None):
    """Prints the metadata of a .tflite as JSON (associated files as their sizes)."""
    args = parse(argv)
    path = fileio.check_input_file(args.model, "model file")  # before TensorFlow loads
    quiet.import_tensorflow_quietly()
    from export.metadata.reader import read_metadata

    with open(path, "rb") as f:
        meta = read_metadata(f.read())
    meta["associated_files"] = {name: f"{len(content)} bytes"
                                for name, content in meta["associated_files"].items()}
    print(json.dumps(meta, indent=2))
