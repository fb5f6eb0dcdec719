"""The tf.distribute strategy a run trains under.

``"mirrored"`` (default; every local GPU, else the CPU, or every logical CPU device
configured), ``"multiworker"`` (MultiWorkerMirroredStrategy over the cluster in
``TF_CONFIG``), ``"one"`` (one device) and ``"default"`` (no distribution).
"""

from __future__ import annotations

import itertools
import json
import os

import tensorflow as tf

STRATEGIES = ("mirrored", "multiworker", "one", "default")


def make_strategy(name: str = "mirrored") -> tf.distribute.Strategy:
    """The tf.distribute strategy ``name`` (one of ``STRATEGIES``).

    ``"multiworker"`` needs ``TF_CONFIG`` and must be made before any other
    TensorFlow op runs in the process (a TensorFlow rule).

    Raises:
      ValueError: for an unknown name or a missing/bad ``TF_CONFIG``.
    """
    if name == "mirrored":
        return mirrored_strategy()
    if name == "multiworker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "one":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}. "
                     f"Received: strategy={name!r}")


def mirrored_strategy(devices=None) -> tf.distribute.MirroredStrategy:
    """``tf.distribute.MirroredStrategy(devices)`` whose collectives cannot clash.

    Every MirroredStrategy of a process numbers its collective operations from the same
    start, so a second one (a second ``fit`` call, a test) can reuse a number the first
    used with another tensor shape, and TensorFlow aborts ("Shape mismatch in the
    collective instance ..."; all later collectives fail too). Each strategy made here
    gets its own range (through ``_collective_key_base``, the attribute TensorFlow's own
    tests use for this).
    """
    cls = tf.distribute.MirroredStrategy
    saved = cls._collective_key_base
    cls._collective_key_base = _KEY_BLOCK * next(_KEY_BASES)
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = saved


_KEY_BASES = itertools.count(1)
_KEY_BLOCK = 10_000


def _check_tf_config():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                         "(cluster and task of this worker); see the README")
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        ok = (isinstance(workers, list) and workers and task["type"] in ("worker", "chief")
              and isinstance(task["index"], int))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"TF_CONFIG must be JSON like {{\"cluster\": {{\"worker\": "
                         f"[\"host:port\", ...]}}, \"task\": {{\"type\": \"worker\", "
                         f"\"index\": 0}}}}. Received: TF_CONFIG={text!r}")


def strategy_name(strategy) -> str:
    """The ``STRATEGIES`` name of a strategy object (its class name when none fits)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.OneDeviceStrategy):
        return "one"
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return "default"
    return type(strategy).__name__


def is_chief(strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


