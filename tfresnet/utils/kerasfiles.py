"""Keras model and weights files: which kind a file is, who wrote it, its weights read.

The two formats Keras writes are told apart by their content, never by their name: a
zip ``.keras`` (``config.json``, ``metadata.json``, ``model.weights.h5``) or HDF5 (a
full model with its ``model_config`` attribute, keras.applications' weights-only
files, Keras 3's ``*.weights.h5``). :func:`load_weights` reads arrays only: a model
configuration in the file is never deserialized, so no code stored in it runs.

Nothing here imports TensorFlow at module import: :func:`file_kind` checks a path
before a CLI pays for TensorFlow. Models are loaded by
:mod:`tfresnet.training.checkpoint`.
"""

from __future__ import annotations

import json
import os
import zipfile

from tfresnet.utils import fileio

ZIP, HDF5 = "zip .keras", "HDF5"


def _is_hdf5(path) -> bool:
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        return True
    import h5py  # noqa: PLC0415 - a user block moves the signature to 512, 1024, ...
    return bool(h5py.is_hdf5(path))


def file_kind(path) -> str:
    """``ZIP`` or ``HDF5`` for a readable model or weights file; else ValueError.

    Cheap (no TensorFlow): the CLIs call it while checking their flags.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("expected a model file, got an empty path. Received: ''")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder, not a model file (.keras or .h5)")
    if not os.path.exists(path):
        raise ValueError(f"no such model file: {path!r}")
    fileio.check_input_file(path, "model file")  # a FIFO, /dev/zero, a 200 GB file: refused
    try:
        if zipfile.is_zipfile(path):
            return ZIP
        if _is_hdf5(path):
            return HDF5
    except OSError as err:
        raise ValueError(f"cannot read {path!r}: {err.strerror}") from None
    raise ValueError(f"cannot load {path!r}: not a readable .keras model (neither a zip "
                     f".keras nor HDF5)")


def keras_version(path) -> str | None:
    """The Keras version that wrote the zip ``.keras`` at ``path`` (its metadata.json),
    or None when the file does not say."""
    try:
        with zipfile.ZipFile(path) as z:
            if "metadata.json" not in z.namelist():
                return None
            metadata = json.loads(z.read("metadata.json"))
    except (OSError, ValueError, zipfile.BadZipFile, RuntimeError):
        return None
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else None


def written_by_keras2(path) -> bool:
    """True for a zip ``.keras`` that Keras 2 (tf_keras, this package's earlier
    releases) wrote: Keras 3 cannot deserialize it, but reads its weights."""
    version = keras_version(path)
    return version is not None and version.split(".")[0] in ("2", "1")


def _legacy_layout(path) -> bool:
    """True for an HDF5 file in the layout Keras 2 wrote with ``save_weights("x.h5")``
    or ``save("x.h5")`` (keras.applications' files): ``layer_names`` at its root or in
    ``model_weights``."""
    import h5py  # noqa: PLC0415

    with h5py.File(path, "r") as f:
        return "layer_names" in f.attrs or "model_weights" in f


def load_weights(model, path) -> None:
    """Loads the weights in ``path`` into ``model``: arrays only, whoever wrote the file.

    Reads a zip ``.keras`` (Keras 3's, or Keras 2's / tf_keras': its
    ``model.weights.h5``), a ``*.weights.h5`` of either, and the HDF5 layout of
    keras.applications' files and of full-model ``.h5`` files (whatever the name).

    Raises:
      ValueError: for a missing file, another format, or weights of another shape.
    """
    path = os.fspath(path)
    kind = file_kind(path)
    if kind == ZIP and not path.endswith(".keras"):
        raise ValueError(f"{path!r} is a zip file: a zip Keras file must be named *.keras")
    try:
        if kind == HDF5 and _legacy_layout(path):
            import h5py  # noqa: PLC0415
            from keras.src.legacy.saving import legacy_h5_format  # noqa: PLC0415 - the
            # reader keras' load_weights picks for a file named *.h5, whatever its name here
            with h5py.File(path, "r") as f:
                group = f["model_weights"] if "layer_names" not in f.attrs else f
                legacy_h5_format.load_weights_from_hdf5_group(group, model)
        else:
            model.load_weights(path)
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for a bad file
        text = " ".join(str(err).split())[:200] or type(err).__name__
        raise ValueError(f"cannot load the weights in {path!r} into {model.name!r}: "
                         f"{text}") from None
