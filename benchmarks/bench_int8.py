"""INT8 vs float32 latency of MobileNet v1, and ours vs keras.applications' MobileNet.

Not a test: a benchmark to run by hand on an otherwise idle machine::

    python benchmarks/bench_int8.py                  # MobileNet v1 1.0, 224x224, 1 thread

It builds the package's MobileNet v1 and keras.applications' ``MobileNet`` (same
alpha, same input; untrained, latency does not depend on the weights), converts both
the same way (``export.convert.to_float32`` and ``to_int8``: full INT8, per-channel
weights, uint8 I/O, calibrated on the same 100 bundled digits images) and times every
file with ``export.convert.latency.measure`` (LiteRT, XNNPACK, warm-up, median of many runs).
Rounds alternate between the four files (in reverse order every other round), so a
drift of the machine's speed hits them alike. The two targets are ratios of files timed
side by side: each round gives a ratio, and the figure is the median of the rounds'
ratios (on this shared virtual machine the speed drifts by 10% or more over seconds, so
ratios of separately chosen figures would measure the drift). The table also shows
each file's best round (``export.convert.latency.best_round``, as in ``export.compare``).

Targets (issue 4): INT8 at least 2x faster than float32 on this x86 CPU, and our INT8
model within 5% of keras.applications' INT8 model. The exit status is 1 when one is
missed.
"""

from __future__ import annotations

import sys

from tfresnet.utils import cli, fileio, flags, quiet

PROG = "python benchmarks/bench_int8.py"
# The model variant's settings (its errors' words) as this script's flags.
FLAGS = {"alpha": "--alpha", "res": "--res"}
MIN_SPEEDUP = 2.0
MAX_GAP = 0.05


def build_parser():
    p = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    flags.add_variant(p, alpha_default=1.0, res_default=224)
    flags.add_threads(p, help="interpreter threads")
    flags.add_timing(p, runs=50, rounds=11, runs_help="timed invokes per round",
                     rounds_help="measurement rounds, each timing all four files")
    flags.add_json(p)
    return p


def convert_pair(model, calibration):
    """(float32 bytes, INT8 bytes) of one Keras model."""
    from export import convert

    return convert.to_float32(model), convert.to_int8(model, calibration, io="uint8")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.json:  # before TensorFlow loads
        fileio.check_writable_file(args.json)
    quiet.import_tensorflow_quietly()  # its start-up lines hidden, once the flags are checked
    import keras
    import numpy as np

    from export import convert
    from export.convert import latency
    from tfresnet import data, get_model
    from tfresnet.models.variant import ModelVariant

    try:
        ModelVariant("mobilenet_v1", args.alpha, args.res).check(classes=1000)
    except ValueError as err:  # the library's words in this script's flags
        raise cli.UsageError(cli.flag_words(str(err), FLAGS)) from None
    if args.json:  # before minutes of work, not after
        fileio.check_writable_file(args.json)
    calibration, _ = data.as_numpy(data.load("digits", image_size=args.res).train, limit=100)
    ours = get_model("mobilenet_v1", alpha=args.alpha, res=args.res)
    theirs = keras.applications.MobileNet(input_shape=(args.res, args.res, 3),
                                          alpha=args.alpha, weights=None)
    print(f"converting tfresnet mobilenet_v1 and keras.applications MobileNet "
          f"(alpha {args.alpha:g}, {args.res}x{args.res})", flush=True)
    ours_f32, ours_int8 = convert_pair(ours, calibration)
    theirs_f32, theirs_int8 = convert_pair(theirs, calibration)
    files = {"ours float32": ours_f32, "ours INT8": ours_int8,
             "keras.applications float32": theirs_f32, "keras.applications INT8": theirs_int8}
    for name, model_bytes in files.items():
        bad = convert.non_integer_ops(model_bytes) if "INT8" in name else []
        if bad:
            raise RuntimeError(f"{name} is not full-integer: {bad}")
    def progress(i, results):
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(
            f"{n} {r[-1].median_ms:.2f} ms" for n, r in results.items()), flush=True)

    results = latency.alternate_rounds(files, rounds=args.rounds, on_round=progress,
                                       runs=args.runs, threads=args.threads, warmup=10)
    medians = {name: [r.median_ms for r in rounds] for name, rounds in results.items()}
    figure = {name: latency.best_round(rounds).median_ms for name, rounds in results.items()}
    speedups = np.divide(medians["ours float32"], medians["ours INT8"])
    gaps = np.divide(medians["ours INT8"], medians["keras.applications INT8"]) - 1.0
    speedup, gap = float(np.median(speedups)), float(np.median(gaps))

    width = max(map(len, files))
    print(f"\n{'model':<{width}}  {'size':>9}  {'median':>9}  rounds (ms)")
    for name, model_bytes in files.items():
        rounds = " ".join(f"{m:.2f}" for m in medians[name])
        print(f"{name:<{width}}  {len(model_bytes) / 1e6:>6.2f} MB  {figure[name]:>6.2f} ms"
              f"  {rounds}")
    ok_speed, ok_gap = speedup >= MIN_SPEEDUP, abs(gap) <= MAX_GAP
    print(f"\nINT8 speed-up over float32 (ours): {speedup:.2f}x, rounds "
          f"{speedups.min():.2f}x to {speedups.max():.2f}x "
          f"(target >= {MIN_SPEEDUP:g}x: {'met' if ok_speed else 'MISSED'})")
    print(f"ours INT8 vs keras.applications INT8: {100 * gap:+.1f}%, rounds "
          f"{100 * gaps.min():+.1f}% to {100 * gaps.max():+.1f}% "
          f"(target within {100 * MAX_GAP:g}%: {'met' if ok_gap else 'MISSED'})")
    print(f"(median of {args.rounds} rounds' ratios; {args.threads} thread(s), LiteRT + "
          f"XNNPACK, each file {args.runs} timed runs per round)")
    results = {"alpha": args.alpha, "res": args.res, "threads": args.threads,
               "median_ms": figure, "rounds_ms": medians, "speedup_int8": speedup,
               "speedup_int8_rounds": speedups.tolist(), "gap_rounds": gaps.tolist(),
               "ours_vs_keras_applications_int8": gap,
               "sizes": {n: len(b) for n, b in files.items()}}
    if args.json:
        fileio.write_text(args.json, fileio.to_json(results))
    return 0 if ok_speed and ok_gap else 1


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
