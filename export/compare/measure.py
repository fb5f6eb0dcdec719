"""export.compare's measuring: build (or train / load) a model, profile, convert, time.

One :class:`Settings` decides what a stored result must match to be reused; a model's
record (:func:`measure_config`) gains one latency round per pass (:func:`add_round`),
and the quoted figure is the best round's (``export.convert.latency.best_round``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time

import numpy as np

from export.compare.defaults import DEFAULT_ROUNDS
from export.convert import latency as latency_lib
from tfresnet.models.registry import model_info
from tfresnet.training.runschema import RUN_FILES

QUICK_CALIBRATION = "uniform random uint8 images"


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


def load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def model_and_data(config, settings: Settings, out: str, log):
    """(keras model, DataSplit or None, data note) for a config."""
    import keras

    from tfresnet.data import sources
    from tfresnet.models.registry import get_model
    from tfresnet.training import api as train
    from tfresnet.training import checkpoint
    keras.utils.set_random_seed(settings.seed)
    if config.checkpoint:
        model, run_config, _ = checkpoint.load_run(config.checkpoint)
        spec = settings.dataset or run_config.get("dataset", "digits")
        split = sources.load(spec, image_size=(config.side, config.side), seed=settings.seed)
        return model, split
    if settings.quick:
        # the builder's own classes (1000; 10 for the CIFAR ResNets)
        return get_model(config.model, **config.variant.builder_kwargs()), None
    from tfresnet.training import recipes
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


def calibration_for(settings: Settings, side: int, split):
    from tfresnet.data import sources
    if split is None:
        rng = np.random.default_rng(settings.seed)
        images = rng.integers(0, 256, size=(settings.calibration_images, side, side, 3),
                              dtype=np.uint8)
        return images, f"{len(images)} {QUICK_CALIBRATION} (latency and size only)"
    images, _ = sources.as_numpy(split.train, limit=settings.calibration_images)
    return images, f"{len(images)} training images of {split.name}"


def _accuracy(tflite: bytes, images, labels) -> float:
    from export.convert.converter import Runner
    probabilities = Runner(tflite, threads=2).predict(images)
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def export_model(model, calibration, int8: bool) -> dict:
    """``{"float32": bytes, "int8": bytes or None}`` via export.convert."""
    from export.convert import converter
    return {"float32": converter.to_float32(model),
            "int8": converter.to_int8(model, calibration) if int8 else None}


def time_files(files: dict, settings: Settings) -> dict:
    """One round: ``{format: {threads: Latency dict}}`` for every file and thread count.

    ``files`` maps formats to TFLite bytes or paths (None: no such file)."""
    return {fmt: {str(t): latency_lib.measure(data, threads=t, warmup=settings.warmup,
                                              runs=settings.runs,
                                              min_seconds=settings.min_seconds).to_dict()
                  for t in settings.threads}
            for fmt, data in files.items() if data is not None}


def measure_config(config, settings: Settings, out: str, log=print):
    """Builds (or trains / loads), profiles, exports and times one model.

    Returns:
      ``(record, files)``: the JSON-ready record and the TFLite bytes by format.
    """
    from tfresnet.models.profiling import profile
    started, load_before = time.perf_counter(), load_avg()
    model, split = model_and_data(config, settings, out, log)
    prof = profile(model, print_table=False)
    classes = int(model.output_shape[-1])
    info = model_info(config.model)
    calibration, calibration_note = calibration_for(settings, config.side, split)
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
        from tfresnet.data import pipelines, sources
        images, labels = sources.as_numpy(split.val, limit=settings.eval_images)
        record["accuracy"] = {fmt: _accuracy(b, images, labels) if b is not None else None
                              for fmt, b in files.items()}
        keras_pred = model.predict(pipelines.normalize(images), batch_size=256, verbose=0)
        record["accuracy"].update(keras=float(np.mean(np.argmax(keras_pred, -1) == labels)),
                                  dataset=split.name, images=int(len(labels)))
    record.update(settings=settings.to_dict(), seconds=round(time.perf_counter() - started, 1),
                  load_avg=[load_before, load_avg()],
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


def cache_path(out: str, key: str) -> str:
    return os.path.join(out, "models", f"{key}.json")


def checkpoint_stamp(path: str | None) -> float | None:
    """Modification time of a checkpoint's model file (a retrained run is measured again)."""
    if not path:
        return None
    model_file = path if os.path.isfile(path) else os.path.join(path, RUN_FILES.model)
    return os.path.getmtime(model_file)


def load_cached(out: str, config, settings: Settings) -> dict | None:
    """The stored record of ``config`` if it was measured with the same settings."""
    path = cache_path(out, config.key)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict):  # a hand-edited cache file: measured again
        return None
    if (record.get("settings") != settings.to_dict()
            or record.get("checkpoint_stamp") != checkpoint_stamp(config.checkpoint)):
        return None
    return record


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
                         "load_avg": load_avg()}
                if before.get("cpu_median_ms") and lat.get("cpu_median_ms"):
                    entry.update(first_cpu_ms=before["cpu_median_ms"],
                                 second_cpu_ms=lat["cpu_median_ms"],
                                 cpu_diff_pct=_change(before["cpu_median_ms"],
                                                      lat["cpu_median_ms"]))
                entries.append(entry)
    return entries
