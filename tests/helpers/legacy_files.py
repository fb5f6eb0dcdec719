"""Files in the formats earlier Keras releases wrote, for the tests that read them.

* :func:`save_h5_weights`: the weights-only HDF5 layout of keras.applications' ImageNet
  files (``layer_names`` at the root, one group a layer), which Keras 3's
  ``save_weights`` no longer writes (it asks for ``*.weights.h5``, another layout).
"""

from __future__ import annotations

import os

import h5py


def save_h5_weights(model, path) -> str:
    """Writes ``model``'s weights to ``path`` as keras.applications' ``.h5`` files hold them."""
    from keras.src.legacy.saving import legacy_h5_format  # the writer of that layout

    path = os.fspath(path)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path
