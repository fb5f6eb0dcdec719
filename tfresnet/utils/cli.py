"""What every command-line tool shares: one-line errors with exit status 2, and
writing files so that an interrupted run never leaves one half-written."""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import re
import stat
import sys
import tempfile


class UsageError(ValueError):
    """Bad input from the user; the CLI prints it as one line and exits 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` ends each flag's help with its default, written once (in ``default=``):
    "(default: 8)", a list as "1 2"; not for None (the help says what happens then),
    False (a switch) or a help that names ``%(default)s`` itself."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default is None or default is False or default == []
                or default is argparse.SUPPRESS
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return text
        if isinstance(default, (list, tuple)):
            shown = " ".join(_shown(v) for v in default)
        else:
            shown = _shown(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (no usage block) and exits 2, and
    whose ``--help`` shows every default (:class:`HelpFormatter`)."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------------------- flag types
# argparse ``type=`` helpers: a bad value becomes "argument --flag: <why>. Received: x"
# (one line, exit 2) before any work, and no CLI writes its own validator.

SEED_MAX = 2 ** 32 - 1


def _number(text, kind):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}. Received: {text!r}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number. Received: {text!r}")
    return value


def int_range(low=None, high=None):
    """``type=``: an integer in [low, high] (either bound may be None)."""
    def parse(text):
        value = _number(text, int)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"expected an integer {_bounds(low, high)}. Received: {text}")
        return value
    parse.__name__ = "integer"
    return parse


def float_range(low=None, high=None, *, low_open=False, high_open=False):
    """``type=``: a finite number in [low, high] (``low_open``: > low; ``high_open``: < high)."""
    def parse(text):
        value = _number(text, float)
        if ((low is not None and (value < low or (low_open and value == low)))
                or (high is not None and (value > high or (high_open and value == high)))):
            raise argparse.ArgumentTypeError(
                f"expected a number {_bounds(low, high, low_open, high_open)}. "
                f"Received: {text}")
        return value
    parse.__name__ = "number"
    return parse


def _bounds(low, high, low_open=False, high_open=False):
    if low is not None and high is not None:
        return (f"{'>' if low_open else '>='} {low:g} and {'<' if high_open else '<='} "
                f"{high:g}")
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"{'<' if high_open else '<='} {high:g}"


def positive_int(high=None):
    """``type=``: an integer >= 1 (and <= ``high``)."""
    return int_range(1, high)


def seed(text):
    """``type=``: a seed, an integer from 0 to 2**32 - 1."""
    value = _number(text, int)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 0 to 2**32 - 1. Received: {text}")
    return value


def non_empty(text):
    """``type=``: a non-empty string (a name, a path)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a non-empty value. Received: {text!r}")
    return text


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
        raise UsageError(f"{what} {path!r} is {_size(st.st_size)}, more than the "
                         f"{_size(max_bytes)} a {what} can hold")
    return path


def _size(n) -> str:
    return f"{n / 2 ** 30:,.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:,.1f} MiB"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C with what to do next; :func:`run` prints "<program>: interrupted; <hint>"."""


_NO_SPACE = ("No space left on device", "Disk quota exceeded")


def is_disk_full(err) -> bool:
    """True for an error of a write that failed for lack of space (an OSError, or
    TensorFlow's and h5py's errors, which only say it in their message)."""
    return (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        any(text in str(err) for text in _NO_SPACE)


def disk_full(path) -> UsageError:
    """The one-line error for a write into ``path`` (a folder or a file in it) that ran
    out of space: it names the folder and how much is free."""
    folder = os.path.abspath(os.fspath(path))
    while not os.path.isdir(folder) or folder.endswith("_temp"):  # TensorFlow's temporaries
        folder = os.path.dirname(folder)
    try:
        free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
        left = f" ({_size(free)} free)"
    except OSError:
        left = ""
    return UsageError(f"no space left on the device holding {folder!r}{left}: the write "
                      f"failed and the files there are as they were before it; free some "
                      f"space and run the same command again")


def _path_in(text):
    """The first absolute path in an error message (TensorFlow names the file)."""
    match = re.search(r"(?:^|[\s'\"(])(/[^\s;:'\")]+)", text)
    return match[1] if match else None


def run(main, argv=None, prog=None):
    """Calls ``main(argv)``; bad input (ValueError, OSError) becomes one line + exit 2,
    Ctrl-C one line (with :class:`Interrupted`'s hint) + exit 130."""
    try:
        return main(argv)
    except KeyboardInterrupt as stop:
        hint = f"; {stop}" if isinstance(stop, Interrupted) and str(stop) else ""
        print(f"{prog or 'tfresnet'}: interrupted{hint}", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - a full disk raises many kinds (TensorFlow's)
        if is_disk_full(err) and not isinstance(err, UsageError):
            where = getattr(err, "filename", None) or _path_in(str(err))
            err = disk_full(where) if where else err
        elif not isinstance(err, (ValueError, OSError)):
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog or 'tfresnet'}: error: {text}", file=sys.stderr)
        sys.exit(2)


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
