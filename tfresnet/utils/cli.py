"""What every command-line tool shares: argparse types and help, one-line errors with
exit status 2, Ctrl-C and a full disk as one line. Writing files so that an interrupted
run never leaves one half-written is :mod:`tfresnet.utils.fileio`."""

from __future__ import annotations

import argparse
import ast
import errno
import math
import os
import re
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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C with what to do next; :func:`run` prints "<program>: interrupted; <hint>"."""


_NO_SPACE = ("No space left on device", "Disk quota exceeded")


def is_disk_full(err) -> bool:
    """True for an error of a write that failed for lack of space (an OSError, or
    TensorFlow's and h5py's errors, which only say it in their message)."""
    return (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        any(text in str(err) for text in _NO_SPACE)


def size_text(n) -> str:
    return f"{n / 2 ** 30:,.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:,.1f} MiB"


def disk_full(path, *, temporary=False) -> UsageError:
    """The one-line error for a write into ``path`` (a folder or a file in it) that ran
    out of space: it names the folder and how much is free; TMPDIR by that name for a
    ``temporary`` file there, or when the temporary folder written was already removed
    (its own name would mean nothing to the user)."""
    folder = os.path.abspath(os.fspath(tempfile.gettempdir() if temporary else path))
    while not os.path.isdir(folder) or folder.endswith("_temp"):  # TensorFlow's temporaries
        folder = os.path.dirname(folder)
    try:
        free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
        left = f" ({size_text(free)} free)"
    except OSError:
        left = ""
    if os.path.realpath(folder) == os.path.realpath(tempfile.gettempdir()):
        return UsageError(f"no space left in TMPDIR, {folder!r}{left}, for temporary files: "
                          f"the write failed; free some space there "
                          f"or set TMPDIR to a folder with room, and run the same command "
                          f"again")
    return UsageError(f"no space left on the device holding {folder!r}{left}: the write "
                      f"failed and the files there are as they were before it; free some "
                      f"space and run the same command again")


# ----------------------------------------------------------------------------- flag words
# The library raises in its settings' words (``Received: batch_size=8``); a CLI says them in
# its flags (``Received: --batch-size=8``) through this one function and its own table.

_VALUE = r"('[^']*'|\[[^\]]*\]|\([^)]*\)|[^\s,;)`]+)"


def flag_words(text: str, flags: dict, given: dict | None = None) -> str:
    """A library error's (or warning's) text in a command's flags.

    Args:
      text: the message, in the settings' words.
      flags: ``{setting name: its flag}`` (``{"out_dir": "--out"}``), the command's table.
      given: ``{setting name: the value its flag gave}`` (None: a flag gave every value).

    A setting in backticks becomes its flag (```name=value```: ``--flag value``, the
    bare flag for ``True``). A setting written ``name=value`` becomes
    ``--flag=value`` after "Received:" (``True``: the bare flag) and ``--flag value``
    before it, and a message that starts with a setting's name starts with its flag.
    With ``given``, only the values the flags gave are rewritten, after "Received:" only
    (the text before it may quote a line of Python to run), and a leading name only when
    its value was; any other ``name=value`` (a key of a run's config.json, the recipe's
    batch) is left as written.
    """
    if not flags:
        return text
    names = "|".join(map(re.escape, sorted(flags, key=len, reverse=True)))
    said = []

    def spelled(part, joiner):
        def one(match):
            name, value = match[1], match[2]
            if given is not None:
                if given.get(name) is None or value not in (repr(given[name]),
                                                            str(given[name])):
                    return match[0]
            said.append(name)
            return flags[name] if value == "True" else f"{flags[name]}{joiner}{_value_text(value)}"
        return re.sub(rf"(?<![\w-])({names})={_VALUE}", one, part)

    def quoted(match):
        name, value = match[1], match[2]
        if value is None or value == "True":
            return flags[name]
        return f"{flags[name]} {_value_text(value)}"

    text = re.sub(rf"`({names})(?:=([^`]*))?`", quoted, text)
    before, received, after = text.partition("Received: ")
    after = spelled(after, "=")
    if given is None:
        before = spelled(before, " ")
    leading = names if given is None else "|".join(map(re.escape, said))
    if leading:
        before = re.sub(rf"^({leading})(?=[\s:])", lambda m: flags[m[1]], before)
    return before + received + after


def _value_text(value: str) -> str:
    """A value as the user types it: ``'x'`` is ``x``, ``['a', 'b']`` is ``a b``."""
    if value.startswith(("'", '"', "[", "(")):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


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


