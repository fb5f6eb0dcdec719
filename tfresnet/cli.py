"""What every command-line tool shares: one-line errors with exit status 2, and
writing files so that an interrupted run never leaves one half-written."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile


class UsageError(ValueError):
    """Bad input from the user; the CLI prints it as one line and exits 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (no usage block) and exits 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


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
