"""Keras model and weights files: which kind a file is, who wrote it, its weights read.

The two formats Keras writes are told apart by their content, never by their name: a
zip ``.keras`` (``config.json``, ``metadata.json``, ``model.weights.h5``) or HDF5 (a
full model with its ``model_config`` attribute, keras.applications' weights-only
files, Keras 3's ``*.weights.h5``). :func:`load_weights` reads arrays only: a model
configuration in the file is never deserialized, so no code stored in it runs.
:func:`check_sizes` (run by :func:`file_kind`, so before any reader opens the file)
refuses a file whose members or arrays declare absurd sizes: a zip bomb.

Nothing here imports TensorFlow at module import: :func:`file_kind` checks a path
before a CLI pays for TensorFlow. Models are loaded by
:mod:`tfresnet.training.checkpoint`.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile

from tfresnet.utils import fileio
from tfresnet.utils.cli import size_text

ZIP, HDF5 = "zip .keras", "HDF5"

# What a model file may unpack to, checked before anything in it is read (a zip member
# or an HDF5 array can declare gigabytes while storing a few bytes of zeros). Measured
# with Keras 3.15 (`model.save`): the registry's largest files are AlexNet's (244 MB of
# weights, 733 MB with Adam's two slots, as a compiled model saves them) and
# resnet152's (243 MB; 725 MB with Adam); the longest config.json is the 1202-layer
# CIFAR ResNet's (5.5 MiB, shortcut C; resnet152's is 0.5 MiB). The bounds leave a
# margin of 1.4x and 11x over those.
UNPACKED_MAX_BYTES = 2 ** 30  # every array (or zip member) of a model file, in total
CONFIG_MAX_BYTES = 64 * 2 ** 20  # config.json, metadata.json, an HDF5 model_config
# The members Keras writes in a zip .keras (it writes nothing else for these models:
# any other member, e.g. assets/, Keras would extract whole into TMPDIR), their bounds.
ZIP_CONFIG, ZIP_METADATA, ZIP_WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
KERAS_MEMBERS = {ZIP_CONFIG: CONFIG_MAX_BYTES, ZIP_METADATA: CONFIG_MAX_BYTES,
                 ZIP_WEIGHTS: UNPACKED_MAX_BYTES}


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
        kind = ZIP if zipfile.is_zipfile(path) else HDF5 if _is_hdf5(path) else None
    except OSError as err:
        raise ValueError(f"cannot read {path!r}: {err.strerror}") from None
    if kind is None:
        raise ValueError(f"cannot load {path!r}: not a readable .keras model (neither a "
                         f"zip .keras nor HDF5)")
    check_sizes(path, kind)
    return kind


def check_sizes(path, kind) -> None:
    """Refuses a model file that would unpack to an absurd size, from what it declares
    and before anything is unpacked: a zip ``.keras`` may hold only Keras' three
    members (:data:`KERAS_MEMBERS`), each within its bound, and the arrays of its
    weights member or of an HDF5 file may declare :data:`UNPACKED_MAX_BYTES` in all;
    HDF5 arrays stored in other files (external, virtual) are refused.

    Raises:
      ValueError: one line naming the file, the member or array, its declared size
        and the bound.
    """
    if kind == HDF5:
        import h5py  # noqa: PLC0415

        try:
            with h5py.File(path, "r") as f:
                _check_hdf5(f, path, "its arrays")
        except (OSError, RuntimeError) as err:
            raise ValueError(f"cannot read {path!r} as HDF5: "
                             f"{' '.join(str(err).split())[:160]}") from None
        return
    with open(path, "rb") as f:
        entries = zip_member_count(f)
    if entries is None:
        raise ValueError(f"cannot load {path!r}: a damaged zip (no end record)")
    if entries > len(KERAS_MEMBERS):
        raise ValueError(f"refusing {path!r}: it holds {entries:,} members, a Keras model "
                         f"file {len(KERAS_MEMBERS)} ({', '.join(KERAS_MEMBERS)})")
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        for info in infos:
            if info.filename not in KERAS_MEMBERS or \
                    [i.filename for i in infos].count(info.filename) > 1:
                raise ValueError(f"refusing {path!r}: it holds {info.filename!r}; a Keras "
                                 f"model file holds {', '.join(KERAS_MEMBERS)} once each")
            if info.file_size > KERAS_MEMBERS[info.filename]:
                _too_big(path, f"its {info.filename} declares", info.file_size,
                         KERAS_MEMBERS[info.filename])
        total = sum(i.file_size for i in infos)
        if total > UNPACKED_MAX_BYTES:
            _too_big(path, "its members declare", total, UNPACKED_MAX_BYTES)
        weights = next((i for i in infos if i.filename == ZIP_WEIGHTS), None)
        if weights is not None:
            import h5py  # noqa: PLC0415

            try:
                with _member(z, path, weights) as member, h5py.File(member, "r") as f:
                    _check_hdf5(f, path, f"the arrays in its {ZIP_WEIGHTS}")
            except (OSError, RuntimeError, zipfile.BadZipFile) as err:
                raise ValueError(f"cannot read {ZIP_WEIGHTS} in {path!r}: "
                                 f"{' '.join(str(err).split())[:160]}") from None


def zip_member_count(f) -> int | None:
    """The member count the end record of the zip in binary file ``f`` declares (None
    without one), read before its directory is: a directory of millions of members
    would fill the memory as zipfile reads it."""
    # zipfile's own reader of the end record (a private helper, there since 2.x)
    end = zipfile._EndRecData(f)  # noqa: SLF001
    return None if end is None else end[zipfile._ECD_ENTRIES_TOTAL]  # noqa: SLF001


def _member(z, path, info):
    """A read-only file object of a zip member: a window on the file for a stored one
    (as Keras writes them; h5py seeks a lot, and zipfile's seek re-reads from the
    member's start), else the member read into memory (its size already bounded)."""
    if info.compress_type != zipfile.ZIP_STORED:
        return io.BytesIO(z.read(info))
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    return _Window(path, start, info.file_size)


class _Window(io.RawIOBase):
    """Bytes ``[start, start + size)`` of the file at ``path``, as a file object."""

    def __init__(self, path, start, size):
        super().__init__()
        self._f, self._start, self._size, self._pos = open(path, "rb"), start, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        self._pos = max(0, offset + (0, self._pos, self._size)[whence])
        return self._pos

    def readinto(self, buffer):
        n = max(0, min(len(buffer), self._size - self._pos))
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(buffer)[:n])
        self._pos += got
        return got

    def close(self):
        self._f.close()
        super().close()


def _too_big(path, what, size, bound):
    raise ValueError(f"refusing {path!r}: {what} {size_text(size)} unpacked, more than "
                     f"the {size_text(bound)} a model file of this package can hold (a "
                     f"zip bomb, or not a model of this package)")


def _check_hdf5(f, path, arrays) -> None:
    """Applies :func:`check_sizes`' bounds to the open HDF5 file ``f`` (of ``path``;
    ``arrays`` names its arrays in a message)."""
    import h5py  # noqa: PLC0415

    config = f.attrs.get_id("model_config") if "model_config" in f.attrs else None
    if config is not None and config.get_storage_size() > CONFIG_MAX_BYTES:
        _too_big(path, "its model_config declares", config.get_storage_size(),
                 CONFIG_MAX_BYTES)
    total = 0

    def visit(name, obj):
        nonlocal total
        if not isinstance(obj, h5py.Dataset):
            return None
        if obj.external or obj.is_virtual:
            raise ValueError(f"refusing {path!r}: {arrays} include {name!r}, stored in "
                             f"other files; a model file holds its own arrays")
        total += math.prod(obj.shape or ()) * obj.dtype.itemsize
        if total > UNPACKED_MAX_BYTES:
            _too_big(path, f"{arrays} (up to {name!r}) declare", total, UNPACKED_MAX_BYTES)
        return None

    f.visititems(visit)


def keras_version(path) -> str | None:
    """The Keras version that wrote the zip ``.keras`` at ``path`` (its metadata.json),
    or None when the file does not say."""
    try:
        with zipfile.ZipFile(path) as z:
            if ZIP_METADATA not in z.namelist():
                return None
            metadata = json.loads(z.read(ZIP_METADATA))
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
