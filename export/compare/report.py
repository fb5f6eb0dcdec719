"""export.compare's report: the rows, the Markdown report and the CSV."""

from __future__ import annotations

import csv
import datetime
import io
import os
import platform

import numpy as np

from export.convert import latency as latency_lib
from tfresnet.models import published
from tfresnet.utils import tables

FORMATS = ("float32", "int8")
REPEAT_LIMIT = 0.10  # latency medians of two measurements should agree within this
# Milliseconds in a row: 0.1 us, so a 0.03 ms median keeps 3 significant figures (and
# the GMAC/s derived from it is within 0.2% of the one from the unrounded median).
MS_DECIMALS = 4


def _published_for(record: dict) -> published.Published:
    return published.lookup(record["model"], alpha=record["alpha"], side=record["side"],
                            classes=record["classes"])


def _diff_pct(ours, ref):
    return None if ours is None or ref is None else round(100.0 * (ours - ref) / ref, 3)


def _phone_note(pub: published.Published) -> tuple[float | None, str]:
    """The published phone INT8 latency to show (the fastest listed) and its device."""
    figures = [p for p in pub.phone if p.int8_ms is not None]
    if not figures:
        return None, ""
    best = min(figures, key=lambda p: p.int8_ms)
    return best.int8_ms, f"{best.label}, {best.int8_method}"


def flat_row(record: dict) -> dict:
    """One CSV row: every figure of a record, with the published ones beside."""
    pub = _published_for(record)
    row = {"key": record["key"], "label": record["label"], "model": record["model"],
           "alpha": record["alpha"], "side": record["side"], "classes": record["classes"],
           "params": record["params"], "params_published": pub.params,
           "params_diff_pct": _diff_pct(record["params"], pub.params),
           "params_agree": (None if pub.params is None
                            else published.agrees(record["params"], pub.params)),
           "macs": record["macs"], "macs_published": pub.macs,
           "macs_diff_pct": _diff_pct(record["macs"], pub.macs),
           "macs_agree": (None if pub.macs is None
                          else published.agrees(record["macs"], pub.macs, pub.macs_unit))}
    for fmt in FORMATS:
        size = record["bytes"].get(fmt)
        row[f"{fmt}_mb"] = None if size is None else round(size / 1e6, 3)
    row["float32_mb_published"], row["int8_mb_published"] = pub.sizes_mb or (None, None)
    for fmt in FORMATS:
        for threads, lat in record["latency"].get(fmt, {}).items():
            median = round(lat["median_ms"], MS_DECIMALS)
            row[f"{fmt}_t{threads}_median_ms"] = median
            row[f"{fmt}_t{threads}_p90_ms"] = round(lat["p90_ms"], MS_DECIMALS)
            row[f"{fmt}_t{threads}_min_ms"] = round(lat["min_ms"], MS_DECIMALS)
            if lat.get("cpu_median_ms") is not None:
                row[f"{fmt}_t{threads}_cpu_ms"] = round(lat["cpu_median_ms"], MS_DECIMALS)
            # From the median the row holds, so the CSV, the JSON and the table agree.
            row[f"{fmt}_t{threads}_gmacs_per_s"] = round(
                latency_lib.macs_per_second(record["macs"], median) / 1e9, 2)
    acc = record.get("accuracy") or {}
    row["accuracy_keras"] = acc.get("keras")
    row["accuracy_float32"] = acc.get("float32")
    row["accuracy_int8"] = acc.get("int8")
    row["accuracy_dataset"] = acc.get("dataset")
    row["accuracy_images"] = acc.get("images")
    row["top1_published"] = pub.top1
    row["top1_published_dataset"] = pub.top1_dataset or None
    row["phone_int8_ms_published"], row["phone_published"] = _phone_note(pub)
    row["phone_published"] = row["phone_published"] or None
    return row


def _millions(n) -> str:
    return "" if n is None else f"{n / 1e6:.3f}M"


def _with_diff(ref, diff, fmt) -> str:
    return "–" if ref is None else f"{fmt(ref)} ({diff:+.1f}%)"


def _ms(row, fmt, threads) -> str:
    median = row.get(f"{fmt}_t{threads}_median_ms")
    return "–" if median is None else f"{median:.2f} ({row[f'{fmt}_t{threads}_p90_ms']:.2f})"


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def gmacs_column(threads) -> str:
    """The report's GMAC/s header; the figure is the row's ``int8_t{threads}_gmacs_per_s``
    (multiply-adds over the best round's median, the latency cell beside it)."""
    return f"int8 GMAC/s {threads} thr (best round's median)"


def markdown_table(rows: list[dict], threads) -> str:
    """The report's table: ours and the published figure beside it."""
    with_acc = any(r["accuracy_float32"] is not None for r in rows)
    head = ["model", "params", "pub. params", "MMACs", "pub. MMACs", "f32 MB", "int8 MB",
            "pub. MB f32/int8"]
    head += [f"{fmt} ms {t} thr" for fmt in ("f32", "int8") for t in threads]
    head += [gmacs_column(threads[0])]
    head += ["acc f32 %", "acc int8 %"] if with_acc else []
    head += ["pub. top-1 %", "phone int8 ms (pub.)"]
    body = []
    for r in rows:
        sizes = r["float32_mb_published"]
        cells = [r["key"], _millions(r["params"]),
                 _with_diff(r["params_published"], r["params_diff_pct"], _millions),
                 f"{r['macs'] / 1e6:.1f}",
                 _with_diff(r["macs_published"], r["macs_diff_pct"], lambda m: f"{m / 1e6:g}"),
                 f"{r['float32_mb']:.2f}",
                 "–" if r["int8_mb"] is None else f"{r['int8_mb']:.2f}",
                 "–" if sizes is None else f"{sizes:g} / {r['int8_mb_published']:g}"]
        cells += [_ms(r, fmt, t) for fmt in FORMATS for t in threads]
        gmacs = r.get(f"int8_t{threads[0]}_gmacs_per_s")
        cells.append("–" if gmacs is None else f"{gmacs:.1f}")
        if with_acc:
            cells += [_pct(r["accuracy_float32"]), _pct(r["accuracy_int8"])]
        cells.append("–" if r["top1_published"] is None
                     else f"{r['top1_published']:g} ({r['top1_published_dataset']})")
        cells.append("–" if r["phone_int8_ms_published"] is None
                     else f"{r['phone_int8_ms_published']:g} ({r['phone_published']})")
        body.append(cells)
    return tables.table(head, body, markdown=True)


def csv_text(rows: list[dict]) -> str:
    """All rows as CSV; the columns are the union of every row's keys, in order."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r[k] for k in columns})
    return buffer.getvalue()


def published_checks(rows: list[dict]) -> list[str]:
    """One line per kind: how many params and MACs agree with the published figures."""
    lines = []
    for what, title in (("params", "Params"), ("macs", "MACs")):
        checked = [r for r in rows if r[f"{what}_agree"] is not None]
        if not checked:
            continue
        agree = [r for r in checked if r[f"{what}_agree"]]
        within = [r for r in checked if abs(r[f"{what}_diff_pct"]) <= 100 * published.TOLERANCE]
        worst = max(checked, key=lambda r: abs(r[f"{what}_diff_pct"]))
        text = (f"- {title} vs published: {len(within)}/{len(checked)} within 1%"
                f", {len(agree)}/{len(checked)} within 1% or the printed figure's rounding; "
                f"largest difference {worst['key']} {worst[f'{what}_diff_pct']:+.2f}%")
        off = [f"{r['key']} {r[f'{what}_diff_pct']:+.2f}%" for r in checked
               if not r[f"{what}_agree"]]
        lines.append(text + (f". DISAGREE: {', '.join(off)}." if off else "."))
    return lines


def phone_section(rows: list[dict]) -> list[str]:
    """Every published phone latency for the models in the report (not measured here)."""
    body = []
    for r in rows:
        pub = published.lookup(r["model"], alpha=r["alpha"], side=r["side"],
                               classes=r["classes"])
        for p in pub.phone:
            f32 = "–" if p.float_ms is None else f"{p.float_ms:g}"
            body.append((r["key"], p.label, f32, f"{p.int8_ms:g}", p.int8_method, p.source))
        for q in pub.int8:
            body.append((r["key"], f"top-1 float {q.float_top1:g}% -> 8-bit {q.int8_top1:g}%",
                         "", "", q.method, q.source))
        if pub.sizes_mb:
            body.append((r["key"], f"file size {pub.sizes_mb[0]:g} MB -> {pub.sizes_mb[1]:g} MB",
                         "", "", "", pub.sizes_source))
    if not body:
        return []
    return ["## Published on phones and for 8-bit models (reference only, not measured here)",
            "", tables.table(("model", "device / figure", "float32 ms", "int8 ms", "int8 method",
                              "source"), body, markdown=True, left=6), ""]


def repeat_section(repeats: list[dict]) -> list[str]:
    """Both measurements of the re-timed models (median, fastest run, CPU time)."""
    if not repeats:
        return []
    lines = ["## Repeatability", "",
             "The first model(s) timed a second time as separate interpreters: their own "
             "rounds, at the end of each pass, away from the first ones. Median: the figure "
             "the table quotes (best round), with every round's median in brackets. Min: the "
             "fastest run. CPU: the process's CPU time per invoke (all threads).", ""]
    header = ("model", "format", "threads", "median ms, first", "second", "diff",
              "min ms, first", "second", "diff", "CPU ms, first", "second", "diff")

    def with_rounds(ms, rounds):
        if not rounds or len(rounds) < 2:
            return f"{ms:.3f}"
        return f"{ms:.3f} ({' '.join(f'{x:.2f}' for x in rounds)})"

    body = []
    for r in repeats:
        cpu = ((f"{r['first_cpu_ms']:.3f}", f"{r['second_cpu_ms']:.3f}",
                f"{r['cpu_diff_pct']:+.1f}%") if r.get("cpu_diff_pct") is not None
               else ("–", "–", "–"))
        body.append((r["key"], r["format"], r["threads"],
                     with_rounds(r["first_ms"], r.get("first_rounds_ms")),
                     with_rounds(r["second_ms"], r.get("second_rounds_ms")),
                     f"{r['diff_pct']:+.1f}%", f"{r['first_min_ms']:.3f}",
                     f"{r['second_min_ms']:.3f}", f"{r['min_diff_pct']:+.1f}%", *cpu))
    lines += [tables.table(header, body, markdown=True, left=2), ""]
    for key, what in (("diff_pct", "medians"), ("min_diff_pct", "fastest runs"),
                      ("cpu_diff_pct", "CPU times")):
        diffs = [abs(r[key]) for r in repeats if r.get(key) is not None]
        if diffs and key == "diff_pct":
            verdict = "within" if max(diffs) <= 100 * REPEAT_LIMIT else "NOT within"
            lines.append(f"Largest difference of the {what}: {max(diffs):.1f}% ({verdict} "
                         f"{100 * REPEAT_LIMIT:.0f}%, the target).")
        elif diffs:
            lines.append(f"Largest difference of the {what}: {max(diffs):.1f}%.")
    return lines + [""]


def machine_text() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def accuracy_note(records) -> str:
    """Which images the accuracy columns were measured on ("" when none were)."""
    sets = sorted({f"{r['accuracy']['images']} validation images of {r['accuracy']['dataset']}"
                   for r in records if r.get("accuracy")})
    if not sets:
        return ""
    return (f"Accuracy: top-1 of the TFLite files on {'; '.join(sets)} (the Keras model's "
            f"is `accuracy_keras` in results.csv).")


def measured_note(records, reused: int) -> str:
    """How long measuring the models took, when some were measured in earlier runs."""
    if not reused:
        return ""
    total = sum(r["seconds"] for r in records)
    return (f"; {reused} of {len(records)} models reused from earlier runs (measuring all "
            f"took {total:.0f} s)")


def _contention(records) -> str:
    """How much of the 1-thread wall time this process actually computed."""
    shares = [lat["cpu_median_ms"] / lat["median_ms"] for r in records
              for by_threads in r["latency"].values() for t, lat in by_threads.items()
              if t == "1" and lat.get("cpu_median_ms")]
    if not shares:
        return ""
    return (f"1-thread runs got {100 * float(np.median(shares)):.0f}% of a CPU (median CPU "
            f"time / wall time; about 100% on an idle machine).")


def intro(records, settings, wall_time: float, reused: int) -> str:
    """The paragraph above the table: how, where and under what load it was measured."""
    xnnpack = all(lat["xnnpack"] for r in records for by_threads in r["latency"].values()
                  for lat in by_threads.values())
    loads = [x for r in records for x in r.get("load_avg", []) if x is not None]
    calibrations = sorted({r["calibration"] for r in records})
    sentences = [
        f"Measured {datetime.date.today().isoformat()} on {machine_text()}; LiteRT interpreter "
        f"with XNNPACK ({'on' if xnnpack else 'NOT on for every file'}), {settings.warmup} "
        f"warm-up runs, then at least {settings.runs} timed runs"
        + (f" and {settings.min_seconds:g} s" if settings.min_seconds else "")
        + (f", in each of {settings.rounds} rounds (passes over all models); a latency is "
           f"the median of the round with the lowest median (every round: "
           f"`latency_rounds` in results.json)" if settings.rounds > 1 else "") + ".",
        "Latency cells: the best round's median (that round's p90) in ms. GMAC/s: "
        "multiply-adds over the INT8 cell's median, as results.csv holds it. "
        "`pub.` columns: the published figure (difference from ours).",
        f"INT8: full-integer post-training quantization calibrated on "
        f"{'; '.join(calibrations)}." if calibrations else "",
        (f"Load average (1 min) while measuring: {min(loads):.1f} to {max(loads):.1f} on "
         f"{os.cpu_count()} CPUs (the machine is shared; latencies grow under load).")
        if loads else "",
        _contention(records),
        accuracy_note(records),
        f"Wall time of this run: {wall_time:.0f} s" + measured_note(records, reused) + ".",
    ]
    return "\n".join(s for s in sentences if s)


def report_text(rows, records, settings, repeats, plots, wall_time,
                reused: int = 0) -> str:
    """The whole Markdown report."""
    lines = ["# Model comparison", "", intro(records, settings, wall_time, reused), "",
             markdown_table(rows, list(settings.threads)), ""]
    lines += published_checks(rows) + [""]
    notes = [f"- {r['key']}: no INT8 file ({r['int8_note']})." for r in records if r["int8_note"]]
    lines += notes + ([""] if notes else [])
    lines += phone_section(rows)
    lines += repeat_section(repeats)
    if plots:
        lines += ["## Plots", ""] + [f"![{os.path.splitext(p)[0]}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def round_text(record: dict, settings) -> str:
    """The last round's 1st-thread-count medians of a model, for the progress line."""
    t0 = str(settings.threads[0])
    return ", ".join(f"{fmt} {bt[t0][-1]['median_ms']:.2f} ms"
                     for fmt, bt in record["latency_rounds"].items() if t0 in bt)


def progress_text(record: dict, settings) -> str:
    """One line for a freshly measured model."""
    t0 = str(settings.threads[0])
    parts = [f"{record['key']}: {record['params'] / 1e6:.3f}M params",
             f"{record['macs'] / 1e6:.1f}M MACs",
             f"float32 {record['bytes']['float32'] / 1e6:.2f} MB "
             f"{record['latency']['float32'][t0]['median_ms']:.2f} ms"]
    if record["bytes"].get("int8"):
        parts.append(f"int8 {record['bytes']['int8'] / 1e6:.2f} MB "
                     f"{record['latency']['int8'][t0]['median_ms']:.2f} ms")
    if record.get("accuracy"):
        parts.append(f"accuracy {_pct(record['accuracy']['float32'])}% / "
                     f"{_pct(record['accuracy'].get('int8'))}%")
    return ", ".join(parts) + f" ({t0} thread; {record['seconds']:.0f} s)"


def summary_text(rows: list[dict], threads) -> str:
    """The terminal's summary: one line per model (size, latency at the first thread
    count, accuracy when measured)."""
    t = threads[0]
    with_acc = any(r["accuracy_float32"] is not None for r in rows)
    header = ["model", "params", "MMACs", "int8 MB", f"f32 ms {t} thr", f"int8 ms {t} thr"]
    header += ["acc f32 %", "acc int8 %"] if with_acc else []
    body = []
    for r in rows:
        median = [r.get(f"{fmt}_t{t}_median_ms") for fmt in FORMATS]
        cells = [r["key"], _millions(r["params"]), f"{r['macs'] / 1e6:.1f}",
                 "–" if r["int8_mb"] is None else f"{r['int8_mb']:.2f}",
                 *("–" if m is None else f"{m:.2f}" for m in median)]
        cells += [_pct(r["accuracy_float32"]), _pct(r["accuracy_int8"])] if with_acc else []
        body.append(cells)
    return tables.table(header, body)
