"""The tf.distribute strategy a run trains under.

``"mirrored"`` (default; every local GPU, else the CPU, or every logical CPU device
configured), ``"multiworker"`` (MultiWorkerMirroredStrategy over the cluster in
``TF_CONFIG``), ``"one"`` (one device) and ``"default"`` (no distribution).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import socket
import time

import tensorflow as tf

from tfresnet.utils.flags import DEFAULT_STRATEGY, DEFAULT_WORKER_TIMEOUT, STRATEGIES  # noqa: F401  (TF-free, for the CLIs)

WAIT_NOTICE_SECONDS = 3       # the "waiting for" line comes after this long


def make_strategy(name: str = DEFAULT_STRATEGY, *,
                  worker_timeout: float = DEFAULT_WORKER_TIMEOUT) -> tf.distribute.Strategy:
    """The tf.distribute strategy ``name`` (one of ``STRATEGIES``).

    ``"multiworker"`` needs ``TF_CONFIG`` (checked by :func:`check_tf_config` before
    TensorFlow reads it) and must be made before any other TensorFlow op runs in the
    process (a TensorFlow rule). It is made once every worker of the cluster is up
    (:func:`wait_for_workers`, at most ``worker_timeout`` seconds).

    A strategy object given for ``name`` is returned as it is.

    Raises:
      ValueError: for an unknown name or a missing/bad ``TF_CONFIG``.
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if name == "mirrored":
        return mirrored_strategy()
    if name == "multiworker":
        wait_for_workers(check_tf_config(os.environ.get("TF_CONFIG")), worker_timeout)
        return MultiWorkerStrategy()
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


class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``tf.distribute.MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3
    gives it (keras-team/keras#20585, open in Keras 3.15):

    * a nested structure: before ``fit``, Keras reduces a whole ``(images, labels)``
      batch with one call to build the model (its TensorFlow trainer's
      ``_maybe_symbolic_build``), which across workers fails ("Attempt to convert a
      value (PerReplica ...)"); each tensor is reduced on its own, as MirroredStrategy
      does;
    * a scalar with ``axis=0``: Keras averages each step's logs (loss, metrics) over the
      replicas so ("Invalid reduction dimension 0 for input with 0 dimensions"); a
      scalar is averaged over the replicas alone (``axis=None``), what Keras means;
    * a None leaf (Keras' structures hold some: a batch's absent sample weights) stays
      None instead of failing its conversion to a tensor.
    """

    def reduce(self, reduce_op, value, axis):
        parent = super()

        def one(v):
            if v is None:
                return None
            local = self.experimental_local_results(v)[0]
            scalar = getattr(getattr(local, "shape", None), "rank", None) == 0
            return parent.reduce(reduce_op, v, None if scalar else axis)

        return tf.nest.map_structure(one, value)


_KEY_BASES = itertools.count(1)
_KEY_BLOCK = 10_000


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_EXAMPLE = ('{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}')


def check_tf_config(text) -> dict:
    """``TF_CONFIG`` parsed and checked in full, before TensorFlow sees it: a JSON object
    with ``cluster`` (``worker`` and at most one ``chief``, each a non-empty list of
    distinct ``host:port``: a host name, an IPv4 or a bracketed IPv6 address, a port
    from 1 to 65535) and ``task`` (``type`` one of the cluster's jobs, ``index`` an
    integer within its list).

    Raises:
      ValueError: one line naming what is wrong, ending with the value received.
    """
    if not text:
        raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                         "(cluster and task of this worker); see docs/training.md")

    def bad(what, value):
        return ValueError(f"TF_CONFIG: {what} (like {_EXAMPLE}). Received: {value}")

    try:
        config = json.loads(text)
    except ValueError:
        raise bad("not JSON", f"TF_CONFIG={text[:200]!r}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) \
            or not isinstance(config.get("task"), dict):
        raise bad("must be an object with a 'cluster' and a 'task' object",
                  f"TF_CONFIG={text[:200]!r}")
    cluster, task = config["cluster"], config["task"]
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown:
        raise bad(f"cluster job {unknown[0]!r} is not one MultiWorkerMirroredStrategy runs "
                  f"(chief, worker)", f"cluster={json.dumps(cluster)[:200]}")
    if not cluster:
        raise bad("the cluster has no worker", "cluster={}")
    seen = set()
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise bad(f"cluster.{job} must be a non-empty list of \"host:port\"",
                      f"{job}={json.dumps(addresses)[:200]}")
        if job == "chief" and len(addresses) > 1:
            raise bad("a cluster has at most one chief", f"chief={json.dumps(addresses)}")
        for address in addresses:
            _check_address(job, address, bad)
            if address in seen:
                raise bad(f"address {address!r} is given twice", f"{job}={json.dumps(addresses)}")
            seen.add(address)
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise bad(f"task.type must be one of the cluster's jobs ({', '.join(cluster)})",
                  f"type={json.dumps(kind)}")
    if isinstance(index, bool) or not isinstance(index, int) or \
            not 0 <= index < len(cluster[kind]):
        raise bad(f"task.index must be an integer from 0 to {len(cluster[kind]) - 1} (the "
                  f"{kind} list has {len(cluster[kind])})", f"index={json.dumps(index)}")
    return config


def _check_address(job, address, bad):
    host, sep, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise bad(f"each {job} address must be \"host:port\" with a port from 1 to 65535",
                  f"{job} address {json.dumps(address)}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
            return
        except ValueError:
            pass
    elif re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
            return
        except ValueError:
            pass
    elif len(host) <= 253 and all(_LABEL.match(label) for label in host.split(".")):
        return
    raise bad(f"{host!r} is not a host name or IP address", f"{job} address {json.dumps(address)}")


def _peers(config) -> list[str]:
    """The addresses of every other task of the cluster."""
    task = config["task"]
    return [a for job, addresses in config["cluster"].items()
            for i, a in enumerate(addresses) if (job, i) != (task["type"], task["index"])]


def _own_port(config) -> int:
    task = config["task"]
    return int(config["cluster"][task["type"]][task["index"]].rpartition(":")[2])


def wait_for_workers(config, timeout, *, poll=0.5):
    """Returns once every other task of ``config``'s cluster accepts connections.

    TensorFlow's own wait (in MultiWorkerMirroredStrategy's constructor) holds the
    interpreter and never ends, so it is done here first: this task listens on its own
    port (so that the others see it up too), connects to each other task's until all
    answer, then frees its port for TensorFlow's server. After a few seconds one line
    on stdout names the addresses still waited for.

    Raises:
      ValueError: when this task's port is taken, or after ``timeout`` seconds.
    """
    peers = _peers(config)
    if not peers:
        return
    port = _own_port(config)
    try:
        listener = (socket.create_server(("", port), family=socket.AF_INET6,
                                         dualstack_ipv6=True)
                    if socket.has_dualstack_ipv6() else socket.create_server(("", port)))
    except OSError as err:
        raise ValueError(f"TF_CONFIG: this task's port {port} cannot be listened on "
                         f"({err.strerror}): is another worker running here? Received: "
                         f"task={json.dumps(config['task'])}") from None
    start, said, waiting = time.monotonic(), False, list(peers)
    try:
        while True:
            waiting = [a for a in waiting if not _answers(a)]
            if not waiting:
                return
            waited = time.monotonic() - start
            if waited >= timeout:
                raise ValueError(f"the other workers {', '.join(waiting)} did not come up "
                                 f"within {timeout:g} s: start them with the same TF_CONFIG "
                                 f"cluster, or raise `worker_timeout`. Received: "
                                 f"worker_timeout={timeout:g}")
            if not said and waited >= WAIT_NOTICE_SECONDS:
                print(f"waiting for the other workers of TF_CONFIG's cluster: "
                      f"{', '.join(waiting)} (up to {timeout:g} s, worker_timeout)",
                      flush=True)
                said = True
            time.sleep(poll)
    finally:
        listener.close()


def _answers(address) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
        return True
    except OSError:
        return False


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


