"""One latency harness for TFLite models: export.tflite, export.compare and the
benchmarks all time models with :func:`measure`.

The model runs in the LiteRT interpreter (``ai_edge_litert``) with its default op
resolver, which applies the XNNPACK delegate to every op XNNPACK supports (float32
and 8-bit). :attr:`Latency.xnnpack` records whether it did: an interpreter whose
graph was delegated lists an extra ``DELEGATE`` node. Inputs are random of the
model's dtype (the time of a convolution does not depend on the pixel values);
``warmup`` invokes are excluded, then each ``invoke()`` is timed on its own with
``time.perf_counter``. The median is the figure to quote; p90 shows the tail. The
process CPU time per invoke is kept too: on a shared machine it shows how much of the
wall time other processes took.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from tfresnet.utils import fileio, quiet


@dataclasses.dataclass(frozen=True)
class Latency:
    """Wall time of one ``invoke()`` over ``runs`` timed runs, in milliseconds.

    Attributes:
      median_ms: median over the timed runs (the figure to quote).
      p90_ms: 90th percentile.
      mean_ms: arithmetic mean.
      min_ms: fastest run.
      runs: number of timed runs (warm-up excluded).
      threads: interpreter threads.
      xnnpack: True when the XNNPACK delegate took over (part of) the graph.
      cpu_median_ms: median CPU time of the process per invoke (all its threads). On a
        busy machine wall time grows while CPU time does not; with 1 thread, on an idle
        machine, it is close to ``median_ms``.
      rounds_ms: the median of every round, when :func:`best_round` chose this one.
    """

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    threads: int
    xnnpack: bool = True
    cpu_median_ms: float | None = None
    rounds_ms: tuple[float, ...] | None = None

    def to_dict(self) -> dict:
        """The fields as a plain dict (JSON-ready)."""
        d = dataclasses.asdict(self)
        if d["rounds_ms"] is not None:
            d["rounds_ms"] = list(d["rounds_ms"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Latency":
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        if d.get("rounds_ms") is not None:
            d["rounds_ms"] = tuple(d["rounds_ms"])
        return cls(**d)

    def __str__(self) -> str:
        return (f"median {self.median_ms:.2f} ms, p90 {self.p90_ms:.2f} ms "
                f"({self.runs} runs, {self.threads} thread{'s' if self.threads > 1 else ''})")


def read_tflite(tflite) -> bytes:
    """The bytes of a ``.tflite`` given as bytes or as a file path (``export.convert``
    reads its models with it too); ValueError for a missing file or another type."""
    if isinstance(tflite, (bytes, bytearray, memoryview)):
        return bytes(tflite)
    if isinstance(tflite, (str, os.PathLike)):
        if not os.path.exists(tflite):
            raise ValueError(f"No TFLite file at {os.fspath(tflite)!r}. Received: tflite={tflite!r}")
        with open(fileio.check_input_file(tflite, "model file"), "rb") as f:
            return f.read()
    raise ValueError(f"Expected TFLite bytes or a file path. Received: tflite of type "
                     f"{type(tflite).__name__}")


def random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    """A random array of the shape and dtype of an interpreter input ``detail``."""
    shape = [max(int(d), 1) for d in detail["shape"]]
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        low, high = max(info.min, -128), min(info.max, 255)
        return rng.integers(low, high, size=shape, endpoint=True).astype(dtype)
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def is_delegated(interpreter: Interpreter) -> bool:
    """True when a delegate (XNNPACK, LiteRT's default) replaced part of the graph."""
    return any(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def measure(tflite, *, threads: int = 1, warmup: int = 10, runs: int = 50,
            min_seconds: float = 0.0, seed: int = 0, xnnpack: bool = True) -> Latency:
    """Times ``invoke()`` of a TFLite model on random input.

    Args:
      tflite: the model as bytes, or a path to a ``.tflite`` file.
      threads: interpreter threads (``num_threads``).
      warmup: untimed invokes first (allocations, caches, XNNPACK packing).
      runs: timed invokes, at least.
      min_seconds: keep timing past ``runs`` until this much time was spent timing.
      seed: seed of the random input.
      xnnpack: False runs LiteRT's own kernels without the default XNNPACK delegate
        (for comparison only).

    Returns:
      A :class:`Latency`.

    Raises:
      ValueError: on bad arguments or a missing file.
    """
    for key, value, low in (("threads", threads, 1), ("warmup", warmup, 0), ("runs", runs, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}. Received: {key}={value!r}")
    if min_seconds < 0:
        raise ValueError(f"min_seconds must be >= 0. Received: min_seconds={min_seconds!r}")
    resolver = (OpResolverType.AUTO if xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    with quiet.native_noise_hidden():  # "INFO: Created ... XNNPACK delegate"
        interpreter = Interpreter(model_content=read_tflite(tflite),
                                  num_threads=int(threads),
                                  experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], random_input(detail, rng))
    for _ in range(warmup):
        interpreter.invoke()
    times, cpu_times = [], []
    started = time.perf_counter()
    while len(times) < runs or time.perf_counter() - started < min_seconds:
        c0, t0 = time.process_time(), time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    ms = np.asarray(times) * 1000.0
    return Latency(median_ms=float(np.median(ms)), p90_ms=float(np.percentile(ms, 90)),
                   mean_ms=float(ms.mean()), min_ms=float(ms.min()), runs=len(ms),
                   threads=int(threads), xnnpack=is_delegated(interpreter),
                   cpu_median_ms=float(np.median(cpu_times) * 1000.0))


def alternate_rounds(files: dict, *, rounds: int, on_round=None, **measure_kwargs) -> dict:
    """Times several files side by side: ``{name: [Latency of each round]}``.

    Each round times every file once (:func:`measure` with ``measure_kwargs``), in
    reverse order every other round, so a drift of the machine's speed hits the files
    alike. ``on_round(i, results)`` is called after round ``i`` (0-based), e.g. to print
    progress. Quote :func:`best_round` of each list, or ratios taken round by round.
    """
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1. Received: rounds={rounds!r}")
    results = {name: [] for name in files}
    for i in range(rounds):
        for name in (list(files) if i % 2 == 0 else list(reversed(files))):
            results[name].append(measure(files[name], **measure_kwargs))
        if on_round is not None:
            on_round(i, results)
    return results


def best_round(rounds) -> Latency:
    """The figure to quote from several rounds of :func:`measure` of one file.

    On a shared (virtual) machine, latency drifts between states that last seconds to
    minutes: here, a 1-thread MobileNet INT8 median moves between 4.2 and 4.7 ms with
    nothing else running, and a neighbour can double it for a second. Rounds taken at
    different times (``export.compare`` times every model once per pass over the whole
    grid) and the round with the lowest median quoted give a figure that does not depend
    on when the model came up: the least disturbed state the machine reached. Its p90,
    mean and CPU time are that round's, ``min_ms`` the fastest run of all rounds;
    ``rounds_ms`` keeps every round's median, so the spread stays visible.

    Args:
      rounds: :class:`Latency` objects or their dicts, of the same file and threads.

    Returns:
      The chosen round as a :class:`Latency`, with ``runs`` the total over all rounds.
    """
    rounds = [r if isinstance(r, Latency) else Latency.from_dict(r) for r in rounds]
    if not rounds:
        raise ValueError("best_round needs at least one round. Received: rounds=[]")
    if len({r.threads for r in rounds}) != 1:
        raise ValueError(f"rounds of different thread counts: {[r.threads for r in rounds]}")
    best = min(rounds, key=lambda r: r.median_ms)
    return dataclasses.replace(best, runs=sum(r.runs for r in rounds),
                               min_ms=min(r.min_ms for r in rounds),
                               xnnpack=all(r.xnnpack for r in rounds),
                               rounds_ms=tuple(r.median_ms for r in rounds))


def macs_per_second(macs: float, latency: Latency | float) -> float:
    """Effective multiply-adds per second: ``macs`` over the median latency.

    Args:
      macs: multiply-adds of one inference.
      latency: a :class:`Latency`, or a median in milliseconds.
    """
    median_ms = latency.median_ms if isinstance(latency, Latency) else float(latency)
    if median_ms <= 0:
        raise ValueError(f"latency must be > 0 ms. Received: latency={latency!r}")
    return float(macs) / (median_ms / 1000.0)
