"""Every TFLite format's size and latency side by side, with ratios to float32.

Not a test: a benchmark to run by hand on an otherwise idle machine::

    python benchmarks/bench_formats.py               # MobileNet v1 1.0 224 and ResNet-50

Builds each model untrained (latency does not depend on the weights), converts it to
float32 and to each of ``--formats`` (``export.convert.formats.convert_format``, each graph
checked; the calibrated formats on 20 bundled digits images) and times all the files
of a model side by side in rounds (``export.convert.latency.alternate_rounds``, LiteRT +
XNNPACK), quoting each file's best round and, for each format, the median of the
rounds' float32 / format ratios (ratios taken round by round: the shared machine's
speed drifts). int16x8 is not in the default list: XNNPACK has no int16 kernels and
LiteRT's reference kernels take seconds an image at 224x224; ask for it with
``--formats int8,int16x8 --runs 3``.

Expected from LiteRT's guide: dynamic range 2-3x faster than float32 on a CPU, full
INT8 3x or more.
"""

from __future__ import annotations

import sys

from export.convert import formats  # no TensorFlow until a conversion
from tfresnet.utils import cli, fileio, flags, quiet

PROG = "python benchmarks/bench_formats.py"
MODELS = ("mobilenet_v1", "resnet50")
CALIBRATION = 20


def build_parser():
    p = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=cli.non_empty, nargs="+", default=list(MODELS),
                   metavar="NAME", help="registry names, built at their paper's input")
    p.add_argument("--formats", type=formats.format_names, default=["int8", "float16", "dynamic"],
                   help=f"comma-separated formats beside float32: {', '.join(formats.FORMATS)} "
                   f"or all")
    flags.add_threads(p, help="interpreter threads")
    flags.add_timing(p, runs=20, rounds=5, runs_help="timed invokes per file and round",
                     rounds_help="measurement rounds, each timing every file of a model")
    flags.add_json(p)
    return p


def bench_model(name, fmts, args):
    """{file name: (bytes, [round medians], best median)} and the ratio lines of one model."""
    import numpy as np

    from export import convert
    from export.convert import latency
    from tfresnet import data, get_model

    model = get_model(name)
    side = int(model.input_shape[1])
    calibration, _ = data.as_numpy(data.load("digits", image_size=side).train,
                                   limit=CALIBRATION)
    print(f"converting {name} ({side}x{side}) to float32, {', '.join(fmts)}", flush=True)
    files = {"float32": convert.to_float32(model)}
    for fmt in fmts:
        files[fmt] = formats.convert_format(model, fmt, calibration)
    results = latency.alternate_rounds(files, rounds=args.rounds, runs=args.runs,
                                       threads=args.threads, warmup=3)
    medians = {k: [r.median_ms for r in rounds] for k, rounds in results.items()}
    rows = {}
    for kind, tflite in files.items():
        speedup = np.divide(medians["float32"], medians[kind])
        rows[kind] = {"size_bytes": len(tflite), "median_ms": latency.best_round(
            results[kind]).median_ms, "rounds_ms": medians[kind],
            "speedup_vs_float32": float(np.median(speedup)),
            "size_vs_float32": len(tflite) / len(files["float32"])}
    return rows


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.json:
        fileio.check_writable_file(args.json)
    quiet.import_tensorflow_quietly()  # its start-up lines hidden, once the flags are checked
    from tfresnet.models import registry

    for name in args.models:
        registry.model_info(name)  # an unknown name: did you mean ...
    fmts = [f for f in args.formats]
    everything = {}
    for name in args.models:
        everything[name] = bench_model(name, fmts, args)
    print(f"\n{'model':<14} {'format':<9} {'size':>9} {'x float32':>9} {'median':>10} "
          f"{'speed-up':>9}")
    for name, rows in everything.items():
        for kind, r in rows.items():
            print(f"{name:<14} {kind:<9} {r['size_bytes'] / 1e6:>6.2f} MB "
                  f"{r['size_vs_float32']:>8.2f}x {r['median_ms']:>7.2f} ms "
                  f"{r['speedup_vs_float32']:>8.2f}x")
    print(f"(speed-up: median of {args.rounds} rounds' float32/format ratios; best round's "
          f"median quoted; {args.threads} thread(s), LiteRT + XNNPACK, {args.runs} runs a "
          f"file and round)")
    if args.json:
        fileio.write_text(args.json, fileio.to_json({"threads": args.threads, "models": everything}))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
