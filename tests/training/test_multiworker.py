"""Two worker processes on 127.0.0.1 (TF_CONFIG) train like one device.

Each worker runs ``tests/helpers/mw_worker.py``: ``tfresnet.train.fit`` under
MultiWorkerMirroredStrategy, one CPU replica per worker, global batch 2 x 16, with
synchronized BatchNormalization. Both workers must end with identical weights, and
those must equal one device trained in this process on the same global batch of 32
(same seed, same batches), within float tolerance. Only the chief writes the run dir.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from tfresnet import train

HERE = os.path.dirname(os.path.abspath(__file__))
HELPERS = os.path.join(os.path.dirname(HERE), "helpers")
from helpers import mw_worker  # noqa: E402

TIMEOUT = 300


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_workers(tmp_path, n=2):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(n)]}
    procs, weights = [], []
    for index in range(n):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        weights.append(tmp_path / f"worker{index}.npz")
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HELPERS, "mw_worker.py"), str(tmp_path / "run"),
             str(weights[-1])], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    return [np.load(w) for w in weights]


def test_two_workers_match_each_other_and_one_device(tmp_path):
    w0, w1 = _run_workers(tmp_path)
    assert int(w0["replicas"]) == int(w1["replicas"]) == 2
    keys = [k for k in w0.files if k.startswith("arr_")]
    assert keys and keys == [k for k in w1.files if k.startswith("arr_")]
    for k in keys:
        np.testing.assert_array_equal(w0[k], w1[k])

    args = {**mw_worker.FIT_ARGS, "batch_size": 2 * mw_worker.FIT_ARGS["batch_size"]}
    single = train.fit(mw_worker.small_cnn(), strategy="one", **args)
    start = mw_worker.small_cnn().get_weights()
    moved = max(float(np.max(np.abs(a - w0[k]))) for a, k in zip(start, keys))
    assert moved > 1e-2  # the workers did train
    single_weights = single.model.get_weights()
    # BatchNorm's moving statistics are left out: PreciseBN recomputes them in batches
    # of what each replica trained with (16 images here, 32 on the one device), so the
    # two runs' statistics differ as their training-mode normalization did.
    paths = [w.path for w in single.model.weights]
    trained = [(k, a) for k, a, path in zip(keys, single_weights, paths) if "moving_" not in path]
    assert len(trained) < len(keys)
    for k, a in trained:
        np.testing.assert_allclose(w0[k], a, rtol=1e-4, atol=1e-5, err_msg=k)
    diff = max(float(np.max(np.abs(w0[k] - a))) for k, a in trained)
    print(f"\n2 workers vs 1 device: max |diff| {diff:.2e}, weights moved up to {moved:.3f}")

    run = tmp_path / "run"
    assert sorted(os.listdir(run)) == ["best.keras", "config.json", "history.csv",
                                       "labels.txt", "logs", "model.keras"]
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"] == "multiworker"
    assert config["replicas"] == 2 and config["global_batch"] == 32
    assert len(train.read_history(str(run))) == mw_worker.FIT_ARGS["epochs"]


def test_reduce_keeps_none_leaves_and_reduces_the_rest():
    """MultiWorkerStrategy.reduce over a structure with a None leaf (one worker, in a
    fresh process: collective ops are set up before TensorFlow starts)."""
    code = ("import tensorflow as tf\n"
            "from tfresnet.training.strategy import MultiWorkerStrategy\n"
            "s = MultiWorkerStrategy()\n"
            "v = s.run(lambda: {'loss': tf.constant(2.0), 'x': tf.ones([2, 3]), 'w': None})\n"
            "out = s.reduce(tf.distribute.ReduceOp.SUM, v, axis=0)\n"
            "print(float(out['loss']), out['x'].numpy().tolist(), out['w'])\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "2.0 [2.0, 2.0, 2.0] None"
