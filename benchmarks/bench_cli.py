"""How fast each command line answers ``--help``: no TensorFlow before the flags are checked.

Runs every CLI's ``--help`` ``--runs`` times in a fresh interpreter and prints the median
wall time beside ``python -c pass`` measured in the same run, as a ratio (the target:
under 10x, TensorFlow's import alone is some 100x). The exit status is 1 when a CLI
misses it.

    python benchmarks/bench_cli.py --runs 5
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import time

from tfresnet.utils import cli, fileio, flags

PROG = "python benchmarks/bench_cli.py"
REPO = pathlib.Path(__file__).resolve().parents[1]
TARGET_RATIO = 10.0
CLIS = (("-m", "tfresnet.train"), ("-m", "tfresnet.profile"), ("-m", "export.tflite"),
        ("-m", "export.compare"), ("-m", "export.metadata"), ("-m", "export.debug"),
        ("-m", "experiments"), ("benchmarks/bench_int8.py",),
        ("benchmarks/bench_formats.py",), ("benchmarks/bench_train.py",),
        ("benchmarks/bench_transfer.py",), ("benchmarks/transfer_quality.py",))


def build_parser():
    p = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=cli.positive_int(flags.MAX_RUNS), default=5,
                   help="runs of each command; the median counts")
    flags.add_json(p)
    return p


def wall(argv, runs) -> float:
    """Median seconds of ``python *argv`` (output discarded; exit status 0 required)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv], cwd=REPO, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.json:
        fileio.check_writable_file(args.json)
    base = wall(["-c", "pass"], args.runs)
    rows = [(" ".join(cmd), wall([*cmd, "--help"], args.runs)) for cmd in CLIS]
    width = max(len(name) for name, _ in rows) + len(" --help")
    print(f"{'command':<{width}}  median ms  x python -c pass")
    print(f"{'python -c pass':<{width}}  {1000 * base:9.1f}  {1.0:5.1f}x")
    for name, seconds in rows:
        print(f"{name + ' --help':<{width}}  {1000 * seconds:9.1f}  {seconds / base:5.1f}x")
    worst = max(seconds for _, seconds in rows) / base
    met = worst < TARGET_RATIO
    print(f"(median of {args.runs} runs each; slowest {worst:.1f}x, target under "
          f"{TARGET_RATIO:g}x: {'met' if met else 'MISSED'})")
    if args.json:
        fileio.write_text(args.json, fileio.to_json({
            "runs": args.runs, "python_c_pass_s": base, "target_ratio": TARGET_RATIO,
            "help_s": dict(rows), "ratio": {name: s / base for name, s in rows}}))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
