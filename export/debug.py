"""``python -m export.debug``: where INT8 loses accuracy, layer by layer.

The command: its flags (the top of this module imports no TensorFlow), then :func:`main`,
which checks the output folder, imports TensorFlow quietly and the debugger
(:mod:`export.convert.int8_errors`), loads the run with its saved settings
(:func:`export.convert.source.load_source`) and writes the report.
"""

from __future__ import annotations

import os
import sys

from export.convert.defaults import CALIBRATION_IMAGES
from export.convert.int8_errors import DEBUG_IMAGES
from tfresnet.utils import cli, fileio, flags, quiet

PROG = "python -m export.debug"


def build_parser():
    """The ``python -m export.debug`` flags."""
    p = cli.ArgumentParser(prog=PROG, description=(
        "Per-layer INT8 quantization error of a trained float model (TensorFlow's "
        "QuantizationDebugger): writes STEM_quant_debug.csv/.json/.png into --out and "
        "prints the five worst layers."))
    p.add_argument("model", type=cli.non_empty, help="a tfresnet.train run folder or .keras file")
    flags.add_dataset(p, default=None, dirs=False, help="calibration data (default: the "
                      "data the run was trained on, else the bundled digits)")
    flags.add_calibration(p, default=CALIBRATION_IMAGES, help="training images that "
                          "calibrate the INT8 conversion")
    p.add_argument("--images", type=cli.positive_int(flags.MAX_IMAGES), default=DEBUG_IMAGES,
                   help="images float and INT8 are compared on")
    flags.add_out(p, default=".")
    return p


def parse(argv=None):
    return build_parser().parse_args(argv)


def main(argv=None):
    """``python -m export.debug``: returns the rows (exit status 0), 2 on bad input."""
    args = parse(argv)
    out = fileio.check_writable_dir(args.out)
    quiet.import_tensorflow_quietly()
    from export.convert.converter import calibration_images
    from export.convert.int8_errors import layer_errors, report_files, worst_text
    from export.convert.source import DEFAULT_DATASET, load_source
    from tfresnet.data import sources

    source = load_source(args.model)
    model, seed = source.model, source.seed or 0
    split = sources.load(args.dataset or source.dataset or DEFAULT_DATASET,
                         image_size=(source.side, source.side), seed=seed,
                         val_fraction=source.val_fraction)
    calibration = calibration_images(split, args.calibration, seed)
    debug_images, _ = sources.as_numpy(split.val, limit=args.images)
    rows = layer_errors(model, calibration, debug_images)
    stem = os.path.basename(os.path.normpath(args.model)).removesuffix(".keras")
    os.makedirs(out, exist_ok=True)
    for name, content in report_files(rows, stem).items():
        fileio.write_bytes(os.path.join(out, name), content)
    print(worst_text(rows))
    print(f"Wrote {stem}_quant_debug.csv, .json, .png to {out}", file=sys.stderr)
    return rows


if __name__ == "__main__":  # main checks the flags before TensorFlow loads
    cli.run(main, prog=PROG)
