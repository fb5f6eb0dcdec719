"""``multipliers`` (Howard et al. 2017, Tables 6 and 7): MobileNet v1 over alpha x res.

Accuracy against multiply-adds, with the latency that ``export.compare`` measures
beside it. ``export.compare`` trains every model with its short-run preset (the
MobileNet recipe's optimizer and learning rate, divided by 10 at 1/2 and 3/4 of the
run, no augmentation); the summary describes the training from each run's own
``config.json``, so it states what was used.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time

from experiments import defaults as experiment_defaults
from experiments.common import (
    PROG,
    Result,
    Settings,
    check_positive,
    conclusion,
    finish,
    judged,
    markdown_table,
    near_chance,
    pct,
    training_lines,
)
from tfresnet.models import published
from tfresnet.models.registry import model_info
from tfresnet.training import runschema
from tfresnet.utils import plots

NAME = "multipliers"
DEFAULTS = experiment_defaults.DEFAULTS[NAME]
CURVES = experiment_defaults.CURVES[NAME]
# MobileNet's multipliers: the paper's alphas and how an alpha is written, from the registry.
_MULTIPLIERS = model_info("mobilenet_v1").multipliers
ALPHAS, alpha_text = _MULTIPLIERS.alphas, _MULTIPLIERS.alpha_text
QUICK_ALPHAS = experiment_defaults.QUICK_ALPHAS
QUICK_RESOLUTIONS = experiment_defaults.QUICK_RESOLUTIONS
DIGITS_SIDE = experiment_defaults.MULTIPLIERS_SIDE["digits"]  # read by experiments.runner
OTHER_SIDE = experiment_defaults.MULTIPLIERS_SIDE["other"]
# Accuracy differences below this (a fraction) do not break a trend.
ACCURACY_TOLERANCE = 0.01


def paper_claim() -> str:
    """The paper's claim, its multipliers from the registry (:data:`ALPHAS`, the
    resolutions) and its figures from :mod:`tfresnet.models.published`."""
    wide, thin = max(ALPHAS), min(ALPHAS)
    sides = _MULTIPLIERS.resolutions
    top1 = {a: published.TOP1[("mobilenet_v1", a, max(sides))][0] for a in (wide, thin)}
    mmacs = {a: published.MACS[("mobilenet_v1", a, max(sides))][0] / 1e6 for a in (wide, thin)}
    return (f"Howard et al. 2017 (MobileNet), Tables 6 and 7: shrinking the width multiplier "
            f"alpha ({alpha_text(wide)} to {alpha_text(thin)}) or the resolution "
            f"({max(sides)} to {min(sides)}) trades accuracy smoothly for multiply-adds "
            f"(ImageNet top-1 {top1[wide]:g}% at {mmacs[wide]:.0f}M MACs down to "
            f"{top1[thin]:g}% at {mmacs[thin]:.0f}M for alpha {alpha_text(thin)})")


PAPER = paper_claim()


def experiment_args(args, s: Settings) -> dict:
    from export import compare
    check_positive("latency-runs", args.latency_runs)
    alphas = args.alphas or (QUICK_ALPHAS if args.quick else ALPHAS)
    resolutions = args.resolutions or (QUICK_RESOLUTIONS if args.quick
                                       else resolutions_below(s.image_size))
    compare.make_configs(["mobilenet_v1"], alphas=list(alphas), resolutions=list(resolutions),
                         flags={"alpha": "--alphas", "res": "--resolutions"})
    return {"alphas": tuple(alphas), "resolutions": tuple(resolutions), "fresh": args.fresh,
            "latency_runs": args.latency_runs
            or experiment_defaults.LATENCY_RUNS["quick" if args.quick else "default"]}


def resolutions_below(side: int) -> tuple:
    """The paper's grid steps down by the side's multiple from 224 (224/192/160/128); so from
    ``side``, as many sides as the paper's that are still valid."""
    step = _MULTIPLIERS.res_multiple
    return tuple(r for r in range(side, side - step * len(_MULTIPLIERS.resolutions), -step)
                 if r >= step)


def run(s: Settings, split, *, alphas=ALPHAS, resolutions=None,
        latency_runs=experiment_defaults.LATENCY_RUNS["default"], fresh=False, log=print) -> Result:
    """MobileNet v1 over width multipliers and resolutions, via ``export.compare``.

    ``export.compare`` trains each model (``tfresnet.train.fit``, the MobileNet recipe),
    profiles it (MACs), exports float32 and INT8 TFLite files, measures their accuracy
    on the validation set and their latency (LiteRT + XNNPACK, one thread). Its full
    report lands in ``s.out/compare``; this function plots accuracy against MACs with
    the latency beside it and writes ``results.csv`` and ``summary.md``.

    Args:
      s: the settings (``s.steps`` training steps per model, ``s.batch_size``).
      split: the loaded DataSplit (for the number of training images).
      alphas, resolutions: the grid (resolutions default to :func:`resolutions_below`
        ``s.image_size``).
      latency_runs: timed runs per latency measurement.
      fresh: measure again the models that ``export.compare`` has stored already.
      log: progress printer.
    """
    from export import compare
    started = time.perf_counter()
    resolutions = tuple(resolutions or resolutions_below(s.image_size))
    configs = compare.make_configs(["mobilenet_v1"], alphas=list(alphas),
                                   resolutions=list(resolutions))
    one_pass = max(1, split.num_train // s.batch_size)
    per_epoch = min(one_pass, s.steps)
    settings = compare.Settings(
        quick=False, threads=(1,), runs=latency_runs, warmup=2 if s.quick else 10,
        min_seconds=0.0 if s.quick else 1.0, calibration_images=16 if s.quick else 200,
        seed=s.seed, dataset=s.dataset, epochs=math.ceil(s.steps / per_epoch),
        steps_per_epoch=per_epoch, batch_size=s.batch_size)
    report = compare.compare(configs, settings, out=os.path.join(s.out, "compare"),
                             fresh=fresh, repeat=0, log=log)
    points = [multiplier_point(row, record) for row, record in
              zip(report.rows, report.records)]
    files = {"png": os.path.join(s.out, "multipliers.png"),
             "csv": os.path.join(s.out, "results.csv"),
             "summary": os.path.join(s.out, "summary.md"),
             "compare": report.files["report"]}
    by_alpha = _group(points, "alpha")
    plots.tradeoff(
        [(f"alpha {alpha_text(a)}", [p["macs"] for p in ps],
          [p["accuracy_float32"] for p in ps], [str(p["res"]) for p in ps])
         for a, ps in by_alpha], files["png"],
        across=[(f"res {r}", [p["macs"] for p in ps], [p["accuracy_float32"] for p in ps])
                for r, ps in _group(points, "res") if len(ps) > 1],
        right=("INT8 latency, ms (1 thread, log)",
               [(f"alpha {alpha_text(a)}", [p["macs"] for p in ps], [p["int8_ms"] for p in ps])
                for a, ps in by_alpha]),
        title=(f"MobileNet v1 on {split.name}: accuracy (float32 TFLite, labels = res) "
               f"and INT8 latency against multiply-adds"))
    configs = [(p["key"], run_config(os.path.join(s.out, "compare"), p["key"]))
               for p in points]
    return finish(s, files, started, curves=points,
                  summary=multipliers_summary(s, split, points, settings, configs),
                  table=multipliers_table(points), data=[("csv", points_csv(points))])


def _group(points, key):
    """``[(value, points sorted by MACs), ...]`` per value of ``key``, largest first."""
    return [(v, sorted((p for p in points if p[key] == v), key=lambda p: p["macs"]))
            for v in sorted({p[key] for p in points}, reverse=True)]


MULTIPLIER_COLUMNS = ("key", "alpha", "res", "params", "macs", "accuracy_keras",
                      "accuracy_float32", "accuracy_int8", "float32_ms", "int8_ms")


def multiplier_point(row: dict, record: dict) -> dict:
    """One grid point from an ``export.compare`` row and record."""
    return {"key": row["key"], "alpha": row["alpha"], "res": row["side"], "params": row["params"],
            "macs": row["macs"], "accuracy_keras": (record.get("accuracy") or {}).get("keras"),
            "accuracy_float32": row["accuracy_float32"], "accuracy_int8": row["accuracy_int8"],
            "float32_ms": row.get("float32_t1_median_ms"),
            "int8_ms": row.get("int8_t1_median_ms")}


def points_csv(points) -> str:
    """``results.csv``: one row per (alpha, res)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, MULTIPLIER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for p in points:
        writer.writerow({k: ("" if p[k] is None else p[k]) for k in MULTIPLIER_COLUMNS})
    return out.getvalue()


def multipliers_table(points):
    """(header, rows) of the multipliers summary table."""
    header = ("alpha/res", "MMACs", "params", "accuracy float32", "accuracy INT8",
              "float32 ms", "INT8 ms")
    rows = [(f"{alpha_text(p['alpha'])}/{p['res']}", f"{p['macs'] / 1e6:.1f}",
             f"{p['params']:,}", pct(p["accuracy_float32"], 1), pct(p["accuracy_int8"], 1),
             _ms(p["float32_ms"]), _ms(p["int8_ms"])) for p in points]
    return header, rows


def _ms(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _rank_correlation(x, y) -> float:
    """Spearman's rank correlation (no ties expected)."""
    import numpy as np
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if len(x) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _monotone(points, vary, fixed, tolerance):
    """Groups (by ``fixed``) where accuracy does not rise as ``vary`` shrinks."""
    groups = {}
    for p in points:
        groups.setdefault(p[fixed], []).append(p)
    good, checked, broken = 0, 0, []
    for key, ps in groups.items():
        ps = sorted(ps, key=lambda p: p[vary], reverse=True)
        if len(ps) < 2:
            continue
        checked += 1
        acc = [p["accuracy_float32"] for p in ps]
        if all(acc[i + 1] <= acc[i] + tolerance for i in range(len(acc) - 1)):
            good += 1
        else:
            broken.append(key)
    return good, checked, broken


def run_config(compare_out, key):
    """The run configuration ``tfresnet.train.fit`` wrote for ``key`` under
    ``export.compare``'s folder, or None when that model was not trained there."""
    folder = os.path.join(compare_out, "runs", key)
    if not os.path.isfile(os.path.join(folder, runschema.RUN_FILES.config)):
        return None
    return runschema.read_config(folder)  # checked: a damaged file is one line


def multipliers_summary(s: Settings, split, points, settings, configs) -> str:
    """The Markdown summary: setup, table, observation against the paper's claim.

    ``configs``: ``[(key, run config)]``, what each model was really trained with.
    """
    alphas = sorted({p["alpha"] for p in points}, reverse=True)
    resolutions = sorted({p["res"] for p in points}, reverse=True)
    top = max(points, key=lambda p: p["macs"])
    low = min(points, key=lambda p: p["macs"])
    tol = f"{100 * ACCURACY_TOLERANCE:g} percentage point"
    chance = 1.0 / len(split.labels)
    failures = [f"- {alpha_text(p['alpha'])}/{p['res']} FAILED: it never learned (float32 "
                f"accuracy {pct(p['accuracy_float32'])}, chance is {pct(chance)})."
                for p in points if near_chance(p["accuracy_float32"], len(split.labels))]
    judge = judged(s, failures)
    lines = ["# MobileNet v1: width and resolution multipliers", "",
             f"Paper: {PAPER}.", "", "Setup:",
             f"- data: {split.name}, {split.num_train:,} training / {split.num_val:,} "
             f"validation images, resized to each resolution",
             f"- grid: alpha {', '.join(alpha_text(a) for a in alphas)} x resolution "
             f"{', '.join(map(str, resolutions))}",
             *training_lines(configs),
             "- trained, exported and measured by export.compare (report: "
             "compare/report.md)",
             f"- accuracy: float32 and INT8 TFLite files on the whole validation set; "
             f"latency: median of at least {settings.runs} runs, LiteRT + XNNPACK, 1 thread, "
             f"on this (shared) CPU", "",
             f"Command: `{PROG} multipliers --dataset {s.dataset} --steps {s.steps} "
             f"--batch-size {s.batch_size} --seed {s.seed} --alphas "
             f"{' '.join(alpha_text(a) for a in alphas)} --resolutions "
             f"{' '.join(map(str, resolutions))}`", "",
             markdown_table(*multipliers_table(points)), "", "## Observed", "",
             *failures,
             f"- Cost: {top['macs'] / 1e6:.1f}M MACs at {alpha_text(top['alpha'])}/"
             f"{top['res']} down to {low['macs'] / 1e6:.2f}M at {alpha_text(low['alpha'])}/"
             f"{low['res']} ({top['macs'] / low['macs']:.0f}x fewer); MACs scale with about "
             f"alpha^2 and res^2, as the paper's Tables 6 and 7."]
    shown = True
    good, checked, broken = _monotone(points, "alpha", "res", ACCURACY_TOLERANCE)
    if checked:
        if good == checked:
            lines.append(f"- Width: at every resolution accuracy does not rise as alpha "
                         f"shrinks (within {tol})"
                         + (", the paper's smooth trade-off." if judge else "."))
        else:
            shown = False
            lines.append(f"- Width: at {good} of {checked} resolutions accuracy falls (or "
                         f"stays within {tol}) as alpha shrinks; NOT at resolution(s) "
                         f"{', '.join(map(str, broken))}"
                         + (": the paper's smooth trade-off did not fully appear."
                            if judge else "."))
    good, checked, broken = _monotone(points, "res", "alpha", ACCURACY_TOLERANCE)
    if checked:
        note = (" (The digits are 8x8 images upsampled to every resolution: a smaller "
                "resolution removes no image detail here, only spatial extent inside the "
                "network, e.g. 1x1 final maps at 32.)" if split.name == "digits" else "")
        lines.append(f"- Resolution: at {good} of {checked} widths accuracy does not rise "
                     f"as the resolution shrinks (within {tol})"
                     + (f"; it does at alpha {', '.join(alpha_text(a) for a in broken)}."
                        if broken else ".") + note)
    latencies = [(p["macs"], p["int8_ms"]) for p in points if p["int8_ms"] is not None]
    if len(latencies) > 1:
        rho = _rank_correlation([m for m, _ in latencies], [ms for _, ms in latencies])
        lines.append(f"- Latency: INT8 latency against MACs has rank correlation {rho:.2f} "
                     f"(1 = strictly ordered by MACs); fastest "
                     f"{min(ms for _, ms in latencies):.2f} ms, slowest "
                     f"{max(ms for _, ms in latencies):.2f} ms.")
    lines += ["", conclusion(s, shown, "the paper trains on ImageNet for many epochs",
                                failures)]
    return "\n".join(lines) + "\n"


