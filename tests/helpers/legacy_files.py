"""Files in the formats earlier Keras releases wrote, for the tests that read them.

* :func:`save_h5_weights`: the weights-only HDF5 layout of keras.applications' ImageNet
  files (``layer_names`` at the root, one group a layer), which Keras 3's
  ``save_weights`` no longer writes (it asks for ``*.weights.h5``, another layout).
* :func:`write_keras2_model`: a registry model saved by Keras 2 (tf_keras, what this
  package's earlier releases trained with), its weights random, with its outputs. It
  needs tf_keras; tests/fixtures/keras2_run is such a file made once, for when
  tf_keras is gone.
* :data:`KERAS2_RUN`, :data:`KERAS2_OUTPUTS`: that fixture (see
  tests/fixtures/make_keras2_run.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures")
KERAS2_RUN = os.path.join(FIXTURES, "keras2_run")
KERAS2_OUTPUTS = os.path.join(FIXTURES, "keras2_outputs.npz")
REPO = os.path.dirname(os.path.dirname(FIXTURES))

# Runs in a subprocess: this package's builders with `keras` bound to tf_keras build the
# same layers, with the same names, as the earlier releases did.
_WRITE_KERAS2 = """
import json, sys
import numpy as np
import tf_keras
sys.modules["keras"] = tf_keras
import tfresnet
path, kwargs, side = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
model = tfresnet.model_info(kwargs.pop("model")).builder(**kwargs)
assert isinstance(model, tf_keras.Model)
rng = np.random.default_rng(0)
for layer in model.layers:
    values = [rng.normal(0, 0.2, w.shape).astype("float32") for w in layer.get_weights()]
    if isinstance(layer, tf_keras.layers.BatchNormalization):
        values[3] = rng.uniform(0.5, 1.5, values[3].shape).astype("float32")  # variance
    layer.set_weights(values)
x = rng.uniform(-1, 0.99, (4, side, side, 3)).astype("float32")
model.save(path)
np.savez(path + ".npz", x=x, y=model.predict(x, verbose=0))
"""


def save_h5_weights(model, path) -> str:
    """Writes ``model``'s weights to ``path`` as keras.applications' ``.h5`` files hold them."""
    from keras.src.legacy.saving import legacy_h5_format  # the writer of that layout

    path = os.fspath(path)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def write_keras2_model(path, model, *, side, **kwargs) -> dict:
    """Saves the registry model ``model`` (builder arguments ``kwargs``) built by tf_keras to
    ``path`` (``.keras`` or ``.h5``), with random weights; returns ``{"x": images, "y": its outputs}``."""
    path = os.fspath(path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _WRITE_KERAS2, path,
                           json.dumps({"model": model, **kwargs}), str(side)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(path + ".npz") as f:
        return {"x": f["x"], "y": f["y"]}
