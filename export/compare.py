"""Compare models side by side: parameters, MACs, TFLite size, latency and accuracy.

For every model of a grid the report gives parameters and multiply-adds
(``tfresnet.profile``), the float32 and INT8 TFLite file sizes (``export.convert``),
float32 and INT8 latency in the LiteRT interpreter with XNNPACK at each thread count
(``export.latency``: warm-up, then median and p90 of many runs), the effective
multiply-adds per second, and accuracy where it is known. Next to each figure that a
paper or the TFLite documentation published (``tfresnet.published``) stands the
published one; latencies the TFLite documentation measured on phones are a separate
column named after the phone, never mixed with the ones measured here.

Examples::

    # cost only (untrained models): the MobileNet paper's 16-point grid
    python -m export.compare --quick --model mobilenet_v1 \\
        --alpha 1.0 0.75 0.5 0.25 --res 224 192 160 128
    # other models at their paper's input size, or NAME@SIDE for another size
    python -m export.compare --quick --model resnet20 resnet56 resnet50 alexnet_bn resnet20@16
    # accuracy too: train each model briefly on a data set, or evaluate training runs
    python -m export.compare --model resnet20 mobilenet_v1 --alpha 0.25 --res 32 \\
        --dataset digits --epochs 3
    python -m export.compare --checkpoint runs/resnet20 runs/mobilenet

Writes ``report.md`` (also printed), ``results.csv``, ``results.json`` and PNG plots
(accuracy, INT8 latency against MACs and against parameters) into ``--out``. Each
model's results are kept in ``--out``/models/KEY.json as soon as it is measured, so
an interrupted run continues where it stopped; ``--fresh`` measures everything again.

Latency is timed in ``--rounds`` passes over the whole grid (default 5), and each figure
is the round with the lowest median (``export.latency.best_round``): on a shared machine
latency drifts for seconds to minutes, and one window of timing would catch a model in
whatever state the machine was in. ``--repeat-check N`` times the first N models a second
time (new interpreters, their own rounds, at the end of every pass) and reports how far
the two figures are apart (the target: within 10%).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import math
import os
import platform
import tempfile
import time

import numpy as np

from export import latency as latency_lib
from tfresnet import checkpoint, cli, published
from tfresnet.mobilenet import alpha_text
from tfresnet.registry import list_models, model_info
from tfresnet.variant import ModelVariant

DEFAULT_OUT = os.path.join("reports", "compare")
FORMATS = ("float32", "int8")
REPEAT_LIMIT = 0.10  # latency medians of two measurements should agree within this
DEFAULT_ROUNDS = 5  # timing passes over the grid (--rounds)
QUICK_CALIBRATION = "uniform random uint8 images"


# --------------------------------------------------------------------------------------
# What to measure.

@dataclasses.dataclass(frozen=True)
class Config:
    """One model of the comparison.

    Attributes:
      model: registry name.
      alpha: width multiplier for models that take one (MobileNet), else None.
      side: square input side.
      checkpoint: a training run dir or ``.keras`` file to evaluate, else None.
    """

    model: str
    alpha: float | None
    side: int
    checkpoint: str | None = None

    @property
    def key(self) -> str:
        """File-name-safe id, e.g. ``mobilenet_v1_0.75_160`` or ``resnet20_32``."""
        parts = [self.model] + ([alpha_text(self.alpha)] if self.alpha is not None else [])
        parts.append(str(self.side))
        if self.checkpoint:
            parts.append(os.path.basename(os.path.normpath(self.checkpoint)).replace(".", "_"))
        return "_".join(parts)

    @property
    def label(self) -> str:
        """Short plot label: ``0.75/160`` for MobileNet, ``resnet20@16`` off the paper's size."""
        if self.alpha is not None:
            return f"{alpha_text(self.alpha)}/{self.side}"
        default = model_info(self.model).input_shape[0]
        return self.model if self.side == default else f"{self.model}@{self.side}"

    def builder_kwargs(self) -> dict:
        """Keyword arguments for ``get_model`` (besides ``classes``)."""
        kwargs = {"input_shape": (self.side, self.side, 3)}
        if self.alpha is not None:
            kwargs["alpha"] = self.alpha
        return kwargs


def _parse_model(text: str) -> tuple[str, int | None]:
    name, _, side = text.partition("@")
    model_info(name)  # unknown name -> ValueError with suggestions
    if not side:
        return name, None
    if not side.isdigit() or int(side) < 1:
        raise cli.UsageError(f"the input side after '@' must be a positive integer. "
                             f"Received: --model {text}")
    return name, int(side)


def make_configs(models, *, alphas=None, resolutions=None) -> list[Config]:
    """The grid: models with a width multiplier get every alpha x res; others one side.

    Args:
      models: registry names, each optionally ``NAME@SIDE``.
      alphas: width multipliers for the models that take ``alpha`` (default 1.0).
      resolutions: input sides for the models that take ``res`` (default the paper's).

    Raises:
      UsageError / ValueError: unknown names, sizes a model does not take, or
        ``alphas``/``resolutions`` given where no model takes them.
    """
    configs, takes_any_res, takes_any_alpha = [], False, False
    for text in models:
        name, side = _parse_model(text)
        info = model_info(name)
        takes_alpha, takes_res = "alpha" in info.extra_args, "res" in info.extra_args
        takes_any_alpha |= takes_alpha
        takes_any_res |= takes_res
        sides = ([side] if side else resolutions if takes_res and resolutions
                 else [info.input_shape[0]])
        for alpha in (alphas or [1.0]) if takes_alpha else [None]:
            for s in sides:
                where = "--res" if takes_res and not side else f"{name}@SIDE"
                ModelVariant(name, alpha, int(s)).check(
                    classes=1000, flags={"res": where, "batch": None, "classes": None})
                configs.append(Config(name, None if alpha is None else float(alpha), int(s)))
    if alphas and not takes_any_alpha:
        raise cli.UsageError("--alpha applies to models with a width multiplier "
                             "(mobilenet_v1). Received: --alpha without such a model")
    if resolutions and not takes_any_res:
        raise cli.UsageError("--res applies to models with a resolution multiplier "
                             "(mobilenet_v1); give other models' input side as NAME@SIDE, "
                             "e.g. resnet20@16. Received: --res without such a model")
    check_unique(configs)
    return configs


def check_unique(configs):
    """UsageError when two configs would share a key (and so a result file)."""
    keys = [c.key for c in configs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise cli.UsageError(f"the same model is asked for twice. Received: {', '.join(duplicates)}")


def checkpoint_config(path: str) -> tuple[Config, dict]:
    """The :class:`Config` of a training run dir (or ``.keras`` file) and its config.json."""
    from tfresnet import train
    model, config, _ = train.load_run(path)
    side = int(model.input_shape[1])
    kwargs = config.get("model_kwargs") or {}
    name = config.get("model") or model.name
    alpha = kwargs.get("alpha")
    return Config(name, None if alpha is None else float(alpha), side,
                  checkpoint=os.path.abspath(path)), config


def _check_checkpoint(path: str):
    try:
        checkpoint.locate(path)
    except ValueError as err:
        raise cli.UsageError(f"--checkpoint: {err}") from None


# --------------------------------------------------------------------------------------
# Measuring one model.

@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a cached result must match to be reused."""

    quick: bool
    threads: tuple[int, ...]
    runs: int
    warmup: int
    min_seconds: float
    calibration_images: int
    seed: int
    rounds: int = DEFAULT_ROUNDS
    dataset: str | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    eval_images: int | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["threads"] = list(self.threads)
        return d


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _model_and_data(config: Config, settings: Settings, out: str, log):
    """(keras model, DataSplit or None, data note) for a config."""
    import tf_keras as keras
    from tfresnet import data as data_lib
    from tfresnet import train
    from tfresnet.registry import get_model
    keras.utils.set_random_seed(settings.seed)
    if config.checkpoint:
        model, run_config, _ = train.load_run(config.checkpoint)
        spec = settings.dataset or run_config.get("dataset", "digits")
        split = data_lib.load(spec, image_size=(config.side, config.side), seed=settings.seed)
        return model, split
    if settings.quick:
        return get_model(config.model, **config.builder_kwargs()), None
    from tfresnet import recipes
    kwargs = {"alpha": config.alpha} if config.alpha is not None else None
    short_run = recipes.short_run_settings(
        model_info(config.model).recipe, epochs=settings.epochs,
        batch_size=settings.batch_size or recipes.SHORT_RUN_BATCH_SIZE, seed=settings.seed)
    result = train.fit(config.model, dataset=settings.dataset,
                       steps_per_epoch=settings.steps_per_epoch,
                       image_size=(config.side, config.side), model_kwargs=kwargs,
                       out_dir=os.path.join(out, "runs", config.key), overwrite=True,
                       verbose=0, **short_run)
    log(f"    trained {config.key}: val accuracy {result.val_accuracy:.4f} "
        f"({result.wall_time:.0f} s)")
    return result.model, result.data


def _calibration(settings: Settings, side: int, split):
    from tfresnet import data as data_lib
    if split is None:
        rng = np.random.default_rng(settings.seed)
        images = rng.integers(0, 256, size=(settings.calibration_images, side, side, 3),
                              dtype=np.uint8)
        return images, f"{len(images)} {QUICK_CALIBRATION} (latency and size only)"
    images, _ = data_lib.as_numpy(split.train, limit=settings.calibration_images)
    return images, f"{len(images)} training images of {split.name}"


def _accuracy(tflite: bytes, images, labels) -> float:
    from export.convert import Runner
    probabilities = Runner(tflite, threads=2).predict(images)
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def export_model(model, calibration, int8: bool) -> dict:
    """``{"float32": bytes, "int8": bytes or None}`` via export.convert."""
    from export import convert
    return {"float32": convert.to_float32(model),
            "int8": convert.to_int8(model, calibration) if int8 else None}


def time_files(files: dict, settings: Settings) -> dict:
    """One round: ``{format: {threads: Latency dict}}`` for every file and thread count.

    ``files`` maps formats to TFLite bytes or paths (None: no such file)."""
    return {fmt: {str(t): latency_lib.measure(data, threads=t, warmup=settings.warmup,
                                              runs=settings.runs,
                                              min_seconds=settings.min_seconds).to_dict()
                  for t in settings.threads}
            for fmt, data in files.items() if data is not None}


def measure_config(config: Config, settings: Settings, out: str, log=print):
    """Builds (or trains / loads), profiles, exports and times one model.

    Returns:
      ``(record, files)``: the JSON-ready record and the TFLite bytes by format.
    """
    from tfresnet.profile import profile
    started, load_before = time.perf_counter(), _load_avg()
    model, split = _model_and_data(config, settings, out, log)
    prof = profile(model, print_table=False)
    classes = int(model.output_shape[-1])
    info = model_info(config.model)
    calibration, calibration_note = _calibration(settings, config.side, split)
    files = export_model(model, calibration, info.int8)
    record = {
        "key": config.key, "model": config.model, "alpha": config.alpha, "side": config.side,
        "label": config.label, "classes": classes, "checkpoint": config.checkpoint,
        "checkpoint_stamp": checkpoint_stamp(config.checkpoint),
        "params": prof.params, "trainable": prof.trainable,
        "non_trainable": prof.non_trainable, "macs": prof.macs,
        "bytes": {fmt: (len(b) if b is not None else None) for fmt, b in files.items()},
        "int8_note": "" if info.int8 else info.int8_note,
        "calibration": calibration_note,
        "latency": {}, "latency_rounds": {},
        "accuracy": None,
    }
    add_round(record, time_files(files, settings))
    if split is not None:
        from tfresnet import data as data_lib
        images, labels = data_lib.as_numpy(split.val, limit=settings.eval_images)
        record["accuracy"] = {fmt: _accuracy(b, images, labels) if b is not None else None
                              for fmt, b in files.items()}
        keras_pred = model.predict(data_lib.normalize(images), batch_size=256, verbose=0)
        record["accuracy"].update(keras=float(np.mean(np.argmax(keras_pred, -1) == labels)),
                                  dataset=split.name, images=int(len(labels)))
    record.update(settings=settings.to_dict(), seconds=round(time.perf_counter() - started, 1),
                  load_avg=[load_before, _load_avg()],
                  measured_at=datetime.datetime.now().isoformat(timespec="seconds"))
    return record, files


def add_round(record: dict, timing: dict) -> None:
    """Appends one round of :func:`time_files` and recomputes the quoted figures."""
    rounds = record.setdefault("latency_rounds", {})
    for fmt, by_threads in timing.items():
        for threads, lat in by_threads.items():
            rounds.setdefault(fmt, {}).setdefault(threads, []).append(lat)
    record["latency"] = {fmt: {t: latency_lib.best_round(r).to_dict() for t, r in bt.items()}
                         for fmt, bt in rounds.items()}


def rounds_done(record: dict) -> int:
    """How many timing rounds a record holds."""
    counts = [len(r) for bt in record.get("latency_rounds", {}).values() for r in bt.values()]
    return min(counts) if counts else 0


def _cache_path(out: str, key: str) -> str:
    return os.path.join(out, "models", f"{key}.json")


def checkpoint_stamp(path: str | None) -> float | None:
    """Modification time of a checkpoint's model file (a retrained run is measured again)."""
    if not path:
        return None
    model_file = path if os.path.isfile(path) else os.path.join(path, "model.keras")
    return os.path.getmtime(model_file)


def load_cached(out: str, config: Config, settings: Settings) -> dict | None:
    """The stored record of ``config`` if it was measured with the same settings."""
    path = _cache_path(out, config.key)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    if (record.get("settings") != settings.to_dict()
            or record.get("checkpoint_stamp") != checkpoint_stamp(config.checkpoint)):
        return None
    return record


# --------------------------------------------------------------------------------------
# Rows, tables, files.

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
            row[f"{fmt}_t{threads}_median_ms"] = round(lat["median_ms"], 3)
            row[f"{fmt}_t{threads}_p90_ms"] = round(lat["p90_ms"], 3)
            row[f"{fmt}_t{threads}_min_ms"] = round(lat["min_ms"], 3)
            if lat.get("cpu_median_ms") is not None:
                row[f"{fmt}_t{threads}_cpu_ms"] = round(lat["cpu_median_ms"], 3)
            row[f"{fmt}_t{threads}_gmacs_per_s"] = round(
                latency_lib.macs_per_second(record["macs"], lat["median_ms"]) / 1e9, 2)
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


def markdown_table(rows: list[dict], threads) -> str:
    """The report's table: ours and the published figure beside it."""
    with_acc = any(r["accuracy_float32"] is not None for r in rows)
    head = ["model", "params", "pub. params", "MMACs", "pub. MMACs", "f32 MB", "int8 MB",
            "pub. MB f32/int8"]
    head += [f"{fmt} ms {t} thr" for fmt in ("f32", "int8") for t in threads]
    head += [f"int8 GMAC/s {threads[0]} thr"]
    head += ["acc f32 %", "acc int8 %"] if with_acc else []
    head += ["pub. top-1 %", "phone int8 ms (pub.)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
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
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    lines = []
    for r in rows:
        pub = published.lookup(r["model"], alpha=r["alpha"], side=r["side"],
                               classes=r["classes"])
        for p in pub.phone:
            f32 = "–" if p.float_ms is None else f"{p.float_ms:g}"
            lines.append(f"| {r['key']} | {p.label} | {f32} | {p.int8_ms:g} | "
                         f"{p.int8_method} | {p.source} |")
        for q in pub.int8:
            lines.append(f"| {r['key']} | top-1 float {q.float_top1:g}% -> 8-bit "
                         f"{q.int8_top1:g}% | | | {q.method} | {q.source} |")
        if pub.sizes_mb:
            lines.append(f"| {r['key']} | file size {pub.sizes_mb[0]:g} MB -> "
                         f"{pub.sizes_mb[1]:g} MB | | | | {pub.sizes_source} |")
    if not lines:
        return []
    return ["## Published on phones and for 8-bit models (reference only, not measured here)",
            "", "| model | device / figure | float32 ms | int8 ms | int8 method | source |",
            "|---|---|---|---|---|---|"] + lines + [""]


def repeat_section(repeats: list[dict]) -> list[str]:
    """Both measurements of the re-timed models (median, fastest run, CPU time)."""
    if not repeats:
        return []
    lines = ["## Repeatability", "",
             "The first model(s) timed a second time as separate interpreters: their own "
             "rounds, at the end of each pass, away from the first ones. Median: the figure "
             "the table quotes (best round), with every round's median in brackets. Min: the "
             "fastest run. CPU: the process's CPU time per invoke (all threads).", "",
             "| model | format | threads | median ms, first | second | diff | min ms, first | "
             "second | diff | CPU ms, first | second | diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def with_rounds(ms, rounds):
        if not rounds or len(rounds) < 2:
            return f"{ms:.3f}"
        return f"{ms:.3f} ({' '.join(f'{x:.2f}' for x in rounds)})"

    for r in repeats:
        cpu = (f"{r['first_cpu_ms']:.3f} | {r['second_cpu_ms']:.3f} | {r['cpu_diff_pct']:+.1f}%"
               if r.get("cpu_diff_pct") is not None else "– | – | –")
        lines.append(f"| {r['key']} | {r['format']} | {r['threads']} | "
                     f"{with_rounds(r['first_ms'], r.get('first_rounds_ms'))} | "
                     f"{with_rounds(r['second_ms'], r.get('second_rounds_ms'))} | "
                     f"{r['diff_pct']:+.1f}% | {r['first_min_ms']:.3f} | "
                     f"{r['second_min_ms']:.3f} | {r['min_diff_pct']:+.1f}% | {cpu} |")
    lines.append("")
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


def _machine() -> str:
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


def intro(records, settings: Settings, wall_time: float, reused: int) -> str:
    """The paragraph above the table: how, where and under what load it was measured."""
    xnnpack = all(lat["xnnpack"] for r in records for by_threads in r["latency"].values()
                  for lat in by_threads.values())
    loads = [x for r in records for x in r.get("load_avg", []) if x is not None]
    calibrations = sorted({r["calibration"] for r in records})
    sentences = [
        f"Measured {datetime.date.today().isoformat()} on {_machine()}; LiteRT interpreter "
        f"with XNNPACK ({'on' if xnnpack else 'NOT on for every file'}), {settings.warmup} "
        f"warm-up runs, then at least {settings.runs} timed runs"
        + (f" and {settings.min_seconds:g} s" if settings.min_seconds else "")
        + (f", in each of {settings.rounds} rounds (passes over all models); a latency is "
           f"the median of the round with the lowest median (every round: "
           f"`latency_rounds` in results.json)" if settings.rounds > 1 else "") + ".",
        "Latency cells: median (p90) in ms. GMAC/s: multiply-adds over the median latency. "
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


def report_text(rows, records, settings: Settings, repeats, plots, wall_time,
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


# --------------------------------------------------------------------------------------
# Plots (one point per model, labelled, log x like the MobileNet paper's figures).

_FAMILY_STYLE = {"mobilenet_v1": ("tab:blue", "o"), "resnet": ("tab:red", "s"),
                 "resnet_cifar": ("tab:orange", "D"), "alexnet": ("tab:green", "^")}
_FAMILY_NAME = {"mobilenet_v1": "MobileNet v1 (alpha/res)", "resnet": "ResNet (ImageNet)",
                "resnet_cifar": "ResNet (CIFAR)", "alexnet": "AlexNet"}


def _family(row) -> str:
    return model_info(row["model"]).family


def _scatter(ax, rows, x_key, y_key, *, scale=1e-6, **style) -> list[tuple]:
    """One marker per row (colour and shape by family); returns (x, y, label) per point."""
    points = []
    for family in dict.fromkeys(_family(r) for r in rows):
        pts = [r for r in rows if _family(r) == family and r.get(y_key) is not None]
        if not pts:
            continue
        color, marker = _FAMILY_STYLE.get(family, ("tab:gray", "x"))
        ax.scatter([p[x_key] * scale for p in pts], [p[y_key] for p in pts],
                   **{"color": color, "marker": marker, "s": 36, "zorder": 3, **style})
        points += [(p[x_key] * scale, p[y_key], p["label"]) for p in pts]
    return points


# Label positions tried in turn (offset in points from the marker), first free one wins.
_LABEL_OFFSETS = ((5, 3), (5, -10), (-5, 3), (-5, -10), (0, 7), (0, -14), (9, -4), (-9, -4))


def _label_points(ax, points, obstacles=()):
    """Labels each point inside the axes where it overlaps no marker (of ``points`` or
    ``obstacles``) and no label placed before it."""
    renderer = ax.figure.canvas.get_renderer()
    markers = [(x, y) for x, y, *_ in list(points) + list(obstacles)]
    centres = ax.transData.transform(markers) if markers else []
    taken = [((cx - 7, cy - 7), (cx + 7, cy + 7)) for cx, cy in centres]
    frame = ax.get_window_extent(renderer)

    def free(box):
        inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                  and box.y1 <= frame.y1)
        return inside and not any(box.x0 < b[1][0] and box.x1 > b[0][0] and box.y0 < b[1][1]
                                  and box.y1 > b[0][1] for b in taken)

    for x, y, text in points:
        for dx, dy in _LABEL_OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                               fontsize=7, ha=ha, zorder=4)
            box = note.get_window_extent(renderer)
            if free(box) or (dx, dy) == _LABEL_OFFSETS[-1]:
                break
            note.remove()
        taken.append(((box.x0, box.y0), (box.x1, box.y1)))


def _log_ticks(axis, low, high):
    """Plain-number ticks on a log axis, denser when the data span few decades."""
    from matplotlib import ticker
    decades = math.log10(high / low) if low > 0 and high > low else 0.0
    subs = ((1, 1.5, 2, 3, 4, 5, 7) if decades < 1 else (1, 2, 5) if decades < 3 else (1,))
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _legend(ax, rows, extra):
    import matplotlib.lines as mlines
    handles = [mlines.Line2D([], [], color=_FAMILY_STYLE.get(f, ("tab:gray", "x"))[0],
                             marker=_FAMILY_STYLE.get(f, ("tab:gray", "x"))[1], linestyle="",
                             label=_FAMILY_NAME.get(f, f))
               for f in dict.fromkeys(_family(r) for r in rows)]
    ax.legend(handles=handles + list(extra), fontsize=8, loc="best")


def _marker(text, **style):
    import matplotlib.lines as mlines
    return mlines.Line2D([], [], color="k", linestyle="", label=text,
                         **{"marker": "o", **style})


def _save(fig, ax, path, labels, *, title, xlabel, ylabel, logy=False, obstacles=()):
    """Log axes, titles, point labels (placed last, on the final layout), atomic write."""
    import matplotlib.pyplot as plt
    ax.set_xscale("log")
    _log_ticks(ax.xaxis, *ax.dataLim.intervalx)
    if logy:
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, *ax.dataLim.intervaly)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.1, y=0.08)  # room for the point labels
    fig.tight_layout()
    _label_points(ax, labels, obstacles)
    with cli.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _latency_plot(rows, out, name, x_key, xlabel, threads) -> bool:
    import matplotlib.pyplot as plt
    first, last = threads[0], threads[-1]
    if not any(r.get(f"int8_t{first}_median_ms") for r in rows):
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    labels = _scatter(ax, rows, x_key, f"int8_t{first}_median_ms")
    extra, hollow = [_marker(f"{first} thread{'s' if first > 1 else ''} (filled)")], []
    if last != first:
        hollow = _scatter(ax, rows, x_key, f"int8_t{last}_median_ms", facecolors="none",
                          linewidths=1.2)
        extra.append(_marker(f"{last} threads (hollow)", markerfacecolor="none"))
    _legend(ax, rows, extra)
    what = "MACs" if x_key == "macs" else "parameters"
    _save(fig, ax, os.path.join(out, name), labels, obstacles=hollow, logy=True, xlabel=xlabel,
          title=f"INT8 latency vs {what} (median; LiteRT + XNNPACK on this CPU)",
          ylabel="INT8 latency, ms (log)")
    return True


def _accuracy_plot(rows, out, name) -> bool:
    import matplotlib.pyplot as plt
    measured = [r for r in rows if r["accuracy_float32"] is not None]
    pub = [dict(r, _y=r["top1_published"]) for r in rows if r["top1_published"] is not None]
    if not measured and not pub:
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    labels, extra, obstacles = [], [], []
    if measured:
        dataset = measured[0]["accuracy_dataset"]
        f32 = [dict(r, _y=100 * r["accuracy_float32"]) for r in measured]
        labels = _scatter(ax, f32, "macs", "_y")
        extra.append(_marker(f"float32 TFLite, {dataset} (filled)"))
        int8 = [dict(r, _y=100 * r["accuracy_int8"]) for r in measured
                if r["accuracy_int8"] is not None]
        if int8:
            obstacles = _scatter(ax, int8, "macs", "_y", facecolors="none", linewidths=1.2)
            extra.append(_marker(f"INT8 TFLite, {dataset} (hollow)", markerfacecolor="none"))
    if pub:
        pub_points = _scatter(ax, pub, "macs", "_y", marker="*", s=90)
        labels, obstacles = (labels, obstacles + pub_points) if labels else (pub_points, [])
        sets = ", ".join(sorted({r["top1_published_dataset"] for r in pub}))
        extra.append(_marker(f"published top-1 ({sets})", marker="*", markersize=10))
    _legend(ax, measured + pub, extra)
    title = ("Top-1 accuracy vs multiply-adds" if measured else
             "Published top-1 accuracy vs multiply-adds (no accuracy measured: --quick)")
    _save(fig, ax, os.path.join(out, name), labels, obstacles=obstacles, title=title,
          xlabel="million multiply-adds (log)", ylabel="top-1 accuracy, %")
    return True


def write_plots(rows: list[dict], out: str, threads) -> list[str]:
    """PNG plots like the MobileNet paper's; returns their file names (in ``out``)."""
    import matplotlib
    matplotlib.use("Agg")
    written = []
    for name, x_key, xlabel in (("int8_latency_vs_macs.png", "macs",
                                 "million multiply-adds (log)"),
                                ("int8_latency_vs_params.png", "params",
                                 "million parameters (log)")):
        if _latency_plot(rows, out, name, x_key, xlabel, list(threads)):
            written.append(name)
    if _accuracy_plot(rows, out, "accuracy_vs_macs.png"):
        written.append("accuracy_vs_macs.png")
    return written


# --------------------------------------------------------------------------------------
# The whole comparison.

@dataclasses.dataclass
class Report:
    """What :func:`compare` measured and wrote."""

    records: list[dict]
    rows: list[dict]
    repeats: list[dict]
    files: dict[str, str]
    markdown: str
    wall_time: float


def _change(first: float, second: float) -> float:
    return 100.0 * (second - first) / first


def repeat_entries(records: list[dict], copies: list[dict]) -> list[dict]:
    """One entry per (model, format, threads): the table's figure and the second one."""
    by_key = {r["key"]: r for r in records}
    entries = []
    for copy in copies:
        record = by_key[copy["key"]]
        for fmt, by_threads in copy["latency"].items():
            for threads, lat in by_threads.items():
                before = record["latency"][fmt][threads]
                entry = {"key": record["key"], "format": fmt, "threads": int(threads),
                         "first_ms": before["median_ms"], "second_ms": lat["median_ms"],
                         "diff_pct": _change(before["median_ms"], lat["median_ms"]),
                         "first_rounds_ms": before.get("rounds_ms"),
                         "second_rounds_ms": lat.get("rounds_ms"),
                         "first_min_ms": before["min_ms"], "second_min_ms": lat["min_ms"],
                         "min_diff_pct": _change(before["min_ms"], lat["min_ms"]),
                         "load_avg": _load_avg()}
                if before.get("cpu_median_ms") and lat.get("cpu_median_ms"):
                    entry.update(first_cpu_ms=before["cpu_median_ms"],
                                 second_cpu_ms=lat["cpu_median_ms"],
                                 cpu_diff_pct=_change(before["cpu_median_ms"],
                                                      lat["cpu_median_ms"]))
                entries.append(entry)
    return entries


def _keep(files: dict, scratch: str, key: str) -> dict:
    """Writes a model's TFLite files to the scratch folder: ``{format: path or None}``."""
    paths = {}
    for fmt, model_bytes in files.items():
        if model_bytes is None:
            paths[fmt] = None
            continue
        paths[fmt] = os.path.join(scratch, f"{key}_{fmt}.tflite")
        with open(paths[fmt], "wb") as f:
            f.write(model_bytes)
    return paths


def round_text(record: dict, settings: Settings) -> str:
    """The last round's 1st-thread-count medians of a model, for the progress line."""
    t0 = str(settings.threads[0])
    return ", ".join(f"{fmt} {bt[t0][-1]['median_ms']:.2f} ms"
                     for fmt, bt in record["latency_rounds"].items() if t0 in bt)


def compare(configs: list[Config], settings: Settings, *, out: str = DEFAULT_OUT,
            fresh: bool = False, repeat: int = 1, log=print) -> Report:
    """Measures every config (reusing stored results), then writes the report files.

    Pass 1 builds, exports and times each model in turn; passes 2 to ``settings.rounds``
    time every model's files again, and the quoted latency is the best round's
    (:func:`export.latency.best_round`). The first ``repeat`` models get a second,
    separate set of rounds, timed at the end of each pass, for the repeatability check.

    Args:
      configs: the models (see :func:`make_configs`).
      settings: how to measure; stored results are reused only with equal settings.
      out: output folder.
      fresh: measure everything again.
      repeat: how many models (the first ones) to time a second time.
      log: progress printer.
    """
    started = time.perf_counter()
    cli.check_writable_dir(os.path.join(out, "models"))
    records, reused, n = [], 0, len(configs)
    with tempfile.TemporaryDirectory(prefix="tfresnet-compare-") as scratch:
        kept = {}

        def files_of(config):
            if config.key not in kept:  # measured in an earlier run: export it again
                log(f"re-exporting {config.key} to time it")
                model, split = _model_and_data(config, settings, out, log)
                calibration, _ = _calibration(settings, config.side, split)
                files = export_model(model, calibration, model_info(config.model).int8)
                kept[config.key] = _keep(files, scratch, config.key)
            return kept[config.key]

        for i, config in enumerate(configs, start=1):
            record = None if fresh else load_cached(out, config, settings)
            if record is not None:
                done = rounds_done(record)
                log(f"[{i}/{n}] {config.key}: measured {record['measured_at']}, "
                    + ("skipped" if done >= settings.rounds
                       else f"{done} of {settings.rounds} rounds timed"))
                reused += 1
            else:
                record, files = measure_config(config, settings, out, log)
                kept[config.key] = _keep(files, scratch, config.key)
                cli.write_text(_cache_path(out, config.key), json.dumps(record, indent=1))
                log(f"[{i}/{n}] {progress_text(record, settings)}")
            records.append(record)

        copies = [{"key": c.key, "latency_rounds": {}} for c in configs[:repeat]]
        for r in range(settings.rounds):
            todo = [(c, rec) for c, rec in zip(configs, records) if rounds_done(rec) <= r]
            again = [(c, copy) for c, copy in zip(configs, copies) if rounds_done(copy) <= r]
            if todo or again:
                log(f"timing round {r + 1}/{settings.rounds}: {len(todo)} model(s)"
                    + (f", {len(again)} again for the repeatability check" if again else ""))
            for k, (config, record) in enumerate(todo, start=1):
                t = time.perf_counter()
                add_round(record, time_files(files_of(config), settings))
                record["seconds"] = round(record["seconds"] + time.perf_counter() - t, 1)
                record["load_avg"] = record.get("load_avg", []) + [_load_avg()]
                cli.write_text(_cache_path(out, config.key), json.dumps(record, indent=1))
                log(f"  [{k}/{len(todo)}] {config.key}: {round_text(record, settings)}")
            for config, copy in again:
                add_round(copy, time_files(files_of(config), settings))
                log(f"  again {config.key}: {round_text(copy, settings)}")
    repeats = repeat_entries(records, copies)
    rows = [flat_row(r) for r in records]
    wall = time.perf_counter() - started
    plots = write_plots(rows, out, list(settings.threads))
    markdown = report_text(rows, records, settings, repeats, plots, wall, reused)
    paths = {"report": os.path.join(out, "report.md"), "csv": os.path.join(out, "results.csv"),
             "json": os.path.join(out, "results.json")}
    cli.write_text(paths["report"], markdown)
    cli.write_text(paths["csv"], csv_text(rows))
    cli.write_text(paths["json"], json.dumps(
        {"settings": settings.to_dict(), "machine": _machine(), "wall_time_s": round(wall, 1),
         "rows": rows, "records": records, "repeatability": repeats}, indent=1))
    paths.update({os.path.splitext(p)[0]: os.path.join(out, p) for p in plots})
    return Report(records, rows, repeats, paths, markdown, wall)


def progress_text(record: dict, settings: Settings) -> str:
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


# --------------------------------------------------------------------------------------
# Command line.

def _parser():
    p = cli.ArgumentParser(
        prog="python -m export.compare",
        description="Compare models side by side: parameters, MACs, TFLite size, latency "
                    "(LiteRT + XNNPACK) and accuracy, with the published figures beside; "
                    "writes report.md, results.csv, results.json and PNG plots.")
    p.add_argument("--model", nargs="+", type=cli.non_empty, default=[], metavar="NAME[@SIDE]",
                   help=f"registry models ({', '.join(list_models())}); NAME@SIDE sets "
                        f"the input side, e.g. resnet20@16 (default: the paper's)")
    p.add_argument("--alpha", nargs="+", type=cli.float_range(), metavar="A",
                   help="MobileNet width multipliers (default 1.0)")
    p.add_argument("--res", nargs="+", type=cli.int_range(), metavar="R",
                   help="MobileNet resolutions, multiples of 32 (default 224)")
    p.add_argument("--checkpoint", nargs="+", type=cli.non_empty, default=[], metavar="RUN",
                   help="training run dirs (or .keras files) to evaluate; accuracy on the "
                        "run's data set (or --dataset)")
    p.add_argument("--quick", action="store_true",
                   help="untrained models, cost only (no accuracy); INT8 calibrated on "
                        "uniform random images, good for size and latency only")
    p.add_argument("--dataset", type=cli.non_empty, help="data set to train each --model briefly on and to "
                                     "measure accuracy with: digits, tfds:NAME or a folder")
    p.add_argument("--epochs", type=cli.positive_int(100_000), default=4,
                   help="training epochs with --dataset (default 4: export.tflite's short "
                        "run, the model's recipe with its learning rate divided by 10 at "
                        "1/2 and 3/4 of the run, no augmentation)")
    p.add_argument("--steps-per-epoch", type=cli.positive_int(10_000_000), help="training steps per epoch (default: "
                                                        "the whole training split)")
    p.add_argument("--batch-size", type=cli.positive_int(),
                   help="training batch size (default 8, as export.tflite: many steps in a "
                        "few epochs, so BatchNorm's moving statistics settle)")
    p.add_argument("--eval-images", type=cli.positive_int(), default=1000,
                   help="validation images to measure accuracy on (default 1000)")
    p.add_argument("--calibration-images", type=cli.positive_int(),
                   help="images to calibrate INT8 with (default 8 random with --quick, "
                        "else 200 training images)")
    p.add_argument("--threads", nargs="+", type=cli.positive_int(1024), default=[1, 2], metavar="N",
                   help="interpreter thread counts to time (default 1 2)")
    p.add_argument("--runs", type=cli.positive_int(1_000_000), default=50, help="timed runs per measurement, at "
                                                       "least (default 50)")
    p.add_argument("--warmup", type=cli.int_range(0, 1_000_000), default=10, help="untimed runs first (default 10)")
    p.add_argument("--min-seconds", type=cli.float_range(0, 3600), default=1.0,
                   help="time each measurement for at least this long (default 1.0)")
    p.add_argument("--rounds", type=cli.positive_int(1000), default=DEFAULT_ROUNDS,
                   help="timing passes over all models; each latency is the best round's "
                        "median, so a slow spell of a shared machine does not decide it "
                        f"(default {DEFAULT_ROUNDS})")
    p.add_argument("--repeat-check", type=cli.int_range(0, 1000), default=1, metavar="N",
                   help="time the first N models a second time (own rounds, later in each "
                        "pass) and report how far the figures differ (default 1; 0: off)")
    p.add_argument("--seed", type=cli.seed, default=0, help="seed for models, data, calibration")
    p.add_argument("--out", type=cli.non_empty, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--fresh", action="store_true",
                   help="measure every model again instead of reusing stored results")
    return p


def settings_from_args(args) -> Settings:
    """Validates the flags that are not about models; raises UsageError."""
    # Each flag's own range is its argparse type; here the checks across flags.
    if not args.model and not args.checkpoint:
        raise cli.UsageError("give --model NAME ... and/or --checkpoint RUN ...")
    if args.quick and (args.dataset or args.checkpoint):
        raise cli.UsageError("--quick measures untrained models; it does not go with "
                             "--dataset or --checkpoint")
    if args.model and not args.quick and not args.dataset:
        raise cli.UsageError("give --quick (cost only, untrained) or --dataset (train "
                             "briefly and measure accuracy) for --model")
    if len(set(args.threads)) != len(args.threads):
        raise cli.UsageError(f"--threads lists a count twice. Received: {args.threads}")
    cli.check_writable_dir(args.out)
    calibration = args.calibration_images or (8 if args.quick else 200)
    return Settings(quick=args.quick, threads=tuple(args.threads), runs=args.runs,
                    warmup=args.warmup, min_seconds=args.min_seconds,
                    calibration_images=calibration, seed=args.seed, rounds=args.rounds,
                    dataset=None if args.quick else args.dataset,
                    epochs=None if args.quick else args.epochs,
                    steps_per_epoch=None if args.quick else args.steps_per_epoch,
                    batch_size=None if args.quick else args.batch_size,
                    eval_images=None if args.quick else args.eval_images)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_from_args(args)
    configs = make_configs(args.model, alphas=args.alpha, resolutions=args.res)
    for path in args.checkpoint:
        _check_checkpoint(path)
    configs += [checkpoint_config(path)[0] for path in args.checkpoint]
    check_unique(configs)
    print(f"Comparing {len(configs)} model{'s' if len(configs) > 1 else ''} into {args.out}",
          flush=True)
    report = compare(configs, settings, out=args.out, fresh=args.fresh,
                     repeat=args.repeat_check,
                     log=lambda text: print(text, flush=True))
    print()
    print(report.markdown)
    print("Wrote " + ", ".join(report.files.values()))
    return 0


if __name__ == "__main__":
    cli.run(main, prog="python -m export.compare")
