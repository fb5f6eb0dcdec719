"""What every command-line tool shares: one-line errors with exit status 2, and
writing files so that an interrupted run never leaves one half-written."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile


class UsageError(ValueError):
    """Bad input from the user; the CLI prints it as one line and exits 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (no usage block) and exits 2."""

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


def run(main, argv=None, prog=None):
    """Calls ``main(argv)``; bad input (ValueError, OSError) becomes one line + exit 2."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        print(f"{prog or 'tfresnet'}: interrupted", file=sys.stderr)
        sys.exit(130)
    except (ValueError, OSError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog or 'tfresnet'}: error: {text}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it into place on success.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_bytes(path, data: bytes):
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path, text: str):
    """Writes ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def check_writable_dir(path) -> str:
    """Creates ``path`` if needed and checks it can be written; else UsageError."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"output folder {path!r} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create output folder {path!r}: {err.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"output folder {path!r} is not writable")
    return path
