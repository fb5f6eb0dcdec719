"""Files: inputs checked before they are opened (regular files of sane size), outputs
written to a temporary name beside the target and renamed into place, JSON that
strict readers accept."""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import tempfile

from tfresnet.utils.cli import UsageError, disk_full, is_disk_full, size_text

# TFLite's own limit for one flatbuffer (and so for any model file this package reads).
MODEL_MAX_BYTES = 2 ** 31


def check_input_file(path, what="file", max_bytes=MODEL_MAX_BYTES) -> str:
    """Checks, before it is opened, that ``path`` is a regular file of at most
    ``max_bytes`` (a FIFO would block the reader, ``/dev/zero`` never ends, a sparse
    200 GB file fills the memory). Follows symbolic links.

    Raises:
      UsageError: naming ``what`` and ``path`` as the user gave it.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"no such {what}: {path!r}") from None
    except OSError as err:
        raise UsageError(f"cannot read {what} {path!r}: {err.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what} {path!r} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket")
        raise UsageError(f"{what} {path!r} is {kind}, not a regular file")
    if st.st_size > max_bytes:
        raise UsageError(f"{what} {path!r} is {size_text(st.st_size)}, more than the "
                         f"{size_text(max_bytes)} a {what} can hold")
    return path


def temp_path(path) -> str:
    """A new empty hidden file beside ``path`` (``.NAME.XXXXXXXX.tmp``), for writing
    ``path``'s next content before renaming it into place; usual permissions."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=folder)
    except OSError as err:  # name the user's path, never the temporary file
        if is_disk_full(err):
            raise disk_full(path) from None
        raise UsageError(f"cannot write {path!r}: {err.strerror}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    return tmp


# What temp_path (and a .keras saved beside it) names: .NAME.XXXXXXXX.tmp[.keras]
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp(\.[a-z]+)?$")


def remove_temp_files(folder, is_target) -> list[str]:
    """Removes the temporary files a killed writer left in ``folder``: those
    :func:`temp_path` made for a target name for which ``is_target(name)`` is true.

    Call it only while no other process writes such files there (under the folder's
    lock, or when the folder is yours). Returns the names removed.
    """
    removed = []
    for entry in os.scandir(folder):
        match = _TEMP_NAME.match(entry.name)
        if match and entry.is_file(follow_symlinks=False) and is_target(match["target"]):
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)
                removed.append(entry.name)
    return sorted(removed)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it into place on success.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if is_disk_full(err) and not isinstance(err, UsageError):
            raise disk_full(path) from None
        raise


def write_bytes(path, data: bytes):
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path, text: str):
    """Writes ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (JSON null), in nested
    dicts, lists and tuples."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # NumPy scalars
        return finite(obj.item())
    return obj


def to_json(obj, indent=2, **kwargs) -> str:
    """Strict JSON text of ``obj`` ending in a newline: NaN and infinities become null
    (``json.dumps(allow_nan=False)``), so any JSON reader accepts every file written."""
    import json

    return json.dumps(finite(obj), indent=indent, allow_nan=False, **kwargs) + "\n"


def check_writable_dir(path) -> str:
    """Checks that ``path`` is, or can be made, a writable folder; creates nothing.

    The folder is made when the first file is written (:func:`atomic_path`), so bad
    input found later leaves no empty folder behind.

    Raises:
      UsageError: naming ``path`` as the user gave it.
    """
    path = os.fspath(path)
    if not path:
        raise UsageError("the output folder is an empty path. Received: ''")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"output folder {path!r} is a file, not a folder")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"cannot create output folder {path!r}: {existing!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK) or _pseudo_fs(existing):
        where = "" if existing == os.path.abspath(path) else f" ({existing!r} is not)"
        raise UsageError(f"output folder {path!r} is not writable{where}")
    return path


def check_writable_file(path) -> str:
    """Checks that the file ``path`` can be written (its folder: :func:`check_writable_dir`)."""
    path = os.fspath(path)
    if not path:
        raise UsageError("the output file is an empty path. Received: ''")
    if os.path.isdir(path):
        raise UsageError(f"output file {path!r} is a folder")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"output file {path!r} is not writable")
    check_writable_dir(os.path.dirname(os.path.abspath(path)))
    return path


def _pseudo_fs(path) -> bool:
    """True under /proc and /sys, which let root 'write' but hold no files."""
    real = os.path.realpath(path)
    return any(real == top or real.startswith(top + "/") for top in ("/proc", "/sys"))
