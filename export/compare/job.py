"""Compare models side by side: parameters, MACs, TFLite size, latency and accuracy.

For every model of a grid the report gives parameters and multiply-adds
(``tfresnet.profile``), the float32 and INT8 TFLite file sizes (``export.convert``),
float32 and INT8 latency in the LiteRT interpreter with XNNPACK at each thread count
(``export.convert.latency``: warm-up, then median and p90 of many runs), the effective
multiply-adds per second, and accuracy where it is known. Next to each figure that a
paper or the TFLite documentation published (``tfresnet.models.published``) stands the
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

Writes ``report.md``, ``results.csv``, ``results.json`` and PNG plots (accuracy, INT8
latency against MACs and against parameters) into ``--out``, and prints a line a model
and the report's path. Each
model's results are kept in ``--out``/models/KEY.json as soon as it is measured, so
an interrupted run continues where it stopped; ``--fresh`` measures everything again.
The work is split: :mod:`export.compare.measure` (measuring), :mod:`export.compare.report`
(rows, report text, CSV) and :mod:`export.compare.plots` (the PNGs); this module holds
the grid and the passes over it; the command line is :mod:`export.compare.command`.

Latency is timed in ``--rounds`` passes over the whole grid (default 5), and each figure
is the round with the lowest median (``export.convert.latency.best_round``): on a shared machine
latency drifts for seconds to minutes, and one window of timing would catch a model in
whatever state the machine was in. ``--repeat-check N`` times the first N models a second
time (new interpreters, their own rounds, at the end of every pass) and reports how far
the two figures are apart (the target: within 10%).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

from export.compare.defaults import DEFAULT_OUT
from export.compare.measure import (
    Settings,
    add_round,
    cache_path,
    calibration_for,
    export_model,
    load_avg,
    load_cached,
    measure_config,
    model_and_data,
    repeat_entries,
    rounds_done,
    time_files,
)
from export.compare.plots import write_plots
from export.compare.report import csv_text, flat_row, machine_text, progress_text, report_text, round_text
from export.convert.source import load_source
from tfresnet.models.registry import model_info
from tfresnet.models.variant import ModelVariant
from tfresnet.training import checkpoint
from tfresnet.utils import cli, fileio

__all__ = ["Config", "Report", "Settings", "checkpoint_config", "compare",
           "make_configs"]



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
    def variant(self) -> ModelVariant:
        """The architecture at its input side; it names the model (``variant.stem``)."""
        return ModelVariant(self.model, self.alpha, self.side)

    @property
    def key(self) -> str:
        """File-name-safe id: the variant's stem (``mobilenet_v1_0.75_160``,
        ``resnet20_32``), then a checkpoint's run folder name."""
        parts = [self.variant.stem]
        if self.checkpoint:
            parts.append(os.path.basename(os.path.normpath(self.checkpoint)).replace(".", "_"))
        return "_".join(parts)

    @property
    def label(self) -> str:
        """Short plot label: ``0.75/160`` for MobileNet, ``resnet20@16`` off the paper's
        size; a checkpoint's adds its run's folder name (``0.25/64 run-a``), so two runs
        of one architecture can be told apart."""
        if self.alpha is not None:
            label = f"{self.variant.info.multipliers.alpha_text(self.alpha)}/{self.side}"
        else:
            default = self.variant.info.input_shape[0]
            label = self.model if self.side == default else f"{self.model}@{self.side}"
        if self.checkpoint:
            label += " " + os.path.basename(os.path.normpath(self.checkpoint))
        return label


def _parse_model(text: str) -> tuple[str, int | None]:
    name, _, side = text.partition("@")
    model_info(name)  # unknown name -> ValueError with suggestions
    if not side:
        return name, None
    if not side.isdigit() or int(side) < 1:
        raise cli.UsageError(f"the input side after '@' must be a positive integer. "
                             f"Received: --model {text}")
    return name, int(side)


def make_configs(models, *, alphas=None, resolutions=None, flags=None) -> list[Config]:
    """The grid: models with a width multiplier get every alpha x res; others one side.

    Args:
      models: registry names, each optionally ``NAME@SIDE``.
      alphas: width multipliers for the models that take ``alpha`` (default 1.0).
      resolutions: input sides for the models that take ``res`` (default the paper's).
      flags: what the caller's command line calls ``alpha`` and ``res`` (the names its
        errors give; default ``{"alpha": "--alpha", "res": "--res"}``).

    Raises:
      UsageError / ValueError: unknown names, sizes a model does not take, or
        ``alphas``/``resolutions`` given where no model takes them.
    """
    flags = {"alpha": "--alpha", "res": "--res", **(flags or {})}
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
                where = flags["res"] if takes_res and not side else f"{name}@SIDE"
                config = Config(name, None if alpha is None else float(alpha), int(s))
                try:
                    config.variant.check(classes=1000)
                except ValueError as err:  # the variant's words in the caller's flags
                    raise cli.UsageError(cli.flag_words(
                        str(err), {"alpha": flags["alpha"], "res": where})) from None
                configs.append(config)
    if alphas and not takes_any_alpha:
        raise cli.UsageError(f"{flags['alpha']} applies to models with a width multiplier "
                             f"(mobilenet_v1). Received: {flags['alpha']} without such a model")
    if resolutions and not takes_any_res:
        raise cli.UsageError(f"{flags['res']} applies to models with a resolution multiplier "
                             f"(mobilenet_v1); give other models' input side as NAME@SIDE, "
                             f"e.g. resnet20@16. Received: {flags['res']} without such a model")
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
    source = load_source(path)
    alpha = source.model_kwargs.get("alpha")
    return Config(source.name or source.model.name, None if alpha is None else float(alpha),
                  source.side, checkpoint=os.path.abspath(path)), source.record


def check_checkpoint(path: str):
    """A ``--checkpoint`` that names no run folder or model file: one line in its words."""
    try:
        checkpoint.locate(path)
    except ValueError as err:
        raise cli.UsageError(f"--checkpoint: {err}") from None


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


def _keep(files: dict, scratch: str, key: str) -> dict:
    """Writes a model's TFLite files to the scratch folder: ``{format: path or None}``."""
    paths = {}
    for fmt, model_bytes in files.items():
        if model_bytes is None:
            paths[fmt] = None
            continue
        paths[fmt] = os.path.join(scratch, f"{key}_{fmt}.tflite")
        try:
            with open(paths[fmt], "wb") as f:
                f.write(model_bytes)
        except OSError as err:  # the scratch folder is removed on the way out
            if cli.is_disk_full(err):
                raise cli.disk_full(scratch, temporary=True) from None
            raise
    return paths


def compare(configs: list[Config], settings: Settings, *, out: str = DEFAULT_OUT,
            fresh: bool = False, repeat: int = 1, log=print) -> Report:
    """Measures every config (reusing stored results), then writes the report files.

    Pass 1 builds, exports and times each model in turn; passes 2 to ``settings.rounds``
    time every model's files again, and the quoted latency is the best round's
    (:func:`export.convert.latency.best_round`). The first ``repeat`` models get a second,
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
    fileio.check_writable_dir(os.path.join(out, "models"))
    records, reused, n = [], 0, len(configs)
    with tempfile.TemporaryDirectory(prefix="tfresnet-compare-") as scratch:
        kept = {}

        def files_of(config):
            if config.key not in kept:  # measured in an earlier run: export it again
                log(f"re-exporting {config.key} to time it")
                model, split = model_and_data(config, settings, out, log)
                calibration, _ = calibration_for(settings, config.side, split)
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
                fileio.write_text(cache_path(out, config.key), fileio.to_json(record, indent=1))
                log(f"[{i}/{n}] {progress_text(record, settings)}")
            records.append(record)

        copies = [{"key": c.key, "latency_rounds": {}} for c in configs[:repeat]]
        for r in range(settings.rounds):
            todo = [(c, rec) for c, rec in zip(configs, records) if rounds_done(rec) <= r]
            again = [(c, copy) for c, copy in zip(configs, copies) if rounds_done(copy) <= r]
            timed = ([f"{len(todo)} model{'s' if len(todo) > 1 else ''}"] if todo else []) + (
                [f"{', '.join(c.key for c, _ in again)} again for the repeatability check"]
                if again else [])
            if timed:
                log(f"timing round {r + 1}/{settings.rounds}: {'; '.join(timed)}")
            for k, (config, record) in enumerate(todo, start=1):
                t = time.perf_counter()
                add_round(record, time_files(files_of(config), settings))
                record["seconds"] = round(record["seconds"] + time.perf_counter() - t, 1)
                record["load_avg"] = record.get("load_avg", []) + [load_avg()]
                fileio.write_text(cache_path(out, config.key), fileio.to_json(record, indent=1))
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
    fileio.write_text(paths["report"], markdown)
    fileio.write_text(paths["csv"], csv_text(rows))
    fileio.write_text(paths["json"], fileio.to_json(
        {"settings": settings.to_dict(), "machine": machine_text(), "wall_time_s": round(wall, 1),
         "rows": rows, "records": records, "repeatability": repeats}, indent=1))
    paths.update({os.path.splitext(p)[0]: os.path.join(out, p) for p in plots})
    return Report(records, rows, repeats, paths, markdown, wall)


# --------------------------------------------------------------------------------------
# Command line.
