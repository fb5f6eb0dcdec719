"""The export's output folder: its ``models.json`` manifest and the final write step.

:func:`publish` writes an export's files and merges its entries into ``models.json``
so that, whatever moment the export is killed (``kill -9``, power cut after the
fsyncs), a reader of the folder never sees a manifest entry whose ``sha256`` differs
from the file it names:

1. Everything below runs under an exclusive lock on the folder (``fcntl.flock`` on
   the folder itself: no lock file; the kernel releases it when the process dies).
   Two exports into one folder take turns: the second reads the manifest the first
   wrote, and both keep their entries.
2. Under the lock, temporary files a killed export left behind are removed (only a
   holder of the lock writes them, so any found are litter), entries a killed export
   left ``pending`` are adopted where they match their file (step 4), and the
   manifest is read.
3. Every file is written to a hidden temporary name beside it
   (``.NAME.XXXXXXXX.tmp``) and fsynced.
4. Renames, in this order: (a) ``models.json`` without the entries of the files about
   to be replaced or removed (``stale``: an earlier export's files of the same stem
   that this one does not write), the replaced entries and the new ones recorded under
   ``pending``; (b) the model files and ``labels.txt``; (c) the results JSON; then the
   stale files are deleted; (d) the final ``models.json``. Between (a) and (d) the
   files being replaced have no entry, so a kill there leaves entries missing, never
   wrong (a stale file's entry never comes back); the next export into the folder
   adopts each pending entry whose sha256 matches the file now there (the old or the
   new one). Ctrl-C and SIGTERM wait until the renames are done.
5. The folder is fsynced.

Why not content-addressed file names (``..._int8.3f2a9c.tflite``), which would make
the manifest's rename the only switch: the Android examples load a model by a fixed
file name (``mobilenet_v1_0.75_160_int8.tflite``, see android_demo_assets/README.md),
and such a name would change at every export.

A reader that loads a file some time after reading the manifest (while another export
may replace it) can still check the entry's ``sha256`` against the bytes it loaded.

This module needs no TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import threading

from export.names import LABELS_FILE, MANIFEST, REPORT_SUFFIXES
from tfresnet.utils import cli, fileio

MANIFEST_FORMAT = 1


def is_export_file(name: str) -> bool:
    """True for the names an export writes into its folder."""
    return (name in (MANIFEST, LABELS_FILE) or name.endswith(".tflite")
            or name.endswith(REPORT_SUFFIXES))


def read_manifest(path) -> dict:
    """The ``models.json`` at ``path`` (an empty manifest when there is none).

    Raises:
      ValueError: for a file that is not a manifest written by this tool.
    """
    if not os.path.exists(path):
        return {"format": MANIFEST_FORMAT, "models": []}
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{os.fspath(path)!r} is not a readable JSON manifest ({err}); "
                         f"move it away or fix it") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
        raise ValueError(f"{os.fspath(path)!r} is not a models.json manifest (no 'models' "
                         f"list); move it away or fix it")
    return manifest


def _by_file(entries) -> list:
    return sorted(entries, key=lambda e: str(e.get("file")))


def merged_manifest(old: dict, entries: list, header: dict | None = None) -> dict:
    """``old`` with ``entries`` added, replacing entries for the same file, and the
    top-level fields of ``header`` set."""
    files = {e["file"] for e in entries}
    kept = [e for e in old.get("models", []) if e.get("file") not in files]
    rest = {k: v for k, v in old.items() if k != "pending"}
    return {**rest, "format": MANIFEST_FORMAT, **(header or {}),
            "models": _by_file(kept + list(entries))}


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def adopt_pending(folder, manifest: dict) -> dict:
    """``manifest`` without its ``pending`` list, each pending entry whose file in
    ``folder`` matches its sha256 (and has no entry yet) moved into ``models``."""
    pending = manifest.get("pending")
    models = list(manifest["models"])
    listed = {e.get("file") for e in models}
    for entry in reversed(pending if isinstance(pending, list) else []):  # newest first
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in listed or os.path.basename(name) != name:
            continue
        path = os.path.join(folder, name)
        if os.path.isfile(path) and sha256_file(path) == entry.get("sha256"):
            models.append(entry)
            listed.add(name)
    rest = {k: v for k, v in manifest.items() if k != "pending"}
    return {**rest, "models": _by_file(models)}


@contextlib.contextmanager
def folder_lock(folder, say=None):
    """Holds an exclusive ``flock`` on ``folder`` (waits for another holder)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say:
                say(f"Waiting for another export into {folder} to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _signals_held():
    """Defers SIGINT and SIGTERM (main thread only) to the end of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not None:  # None: a handler not set from Python
            saved[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in caught:
            signal.raise_signal(sig)


def _write_temp(path, content: bytes) -> str:
    """``content`` in a new temporary file beside ``path``, fsynced; its path."""
    tmp = fileio.temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if cli.is_disk_full(err):
            raise cli.disk_full(path) from None
        raise
    return tmp


def publish(folder, files: dict, entries: list, *, header: dict | None = None,
            say=None, stale=()) -> list[str]:
    """Writes ``files`` into ``folder`` and merges ``entries`` into its models.json,
    so that no reader ever sees an entry whose file differs (the module docstring).

    Args:
      folder: the output folder (made if missing).
      files: ``{name: bytes}`` in the order they land: the files the entries describe
        with their companions (``labels.txt``), then the rest (the results JSON).
        Not ``models.json``.
      entries: manifest entries, each with the ``file`` (one of ``files``) it describes
        and that file's ``sha256``.
      header: top-level manifest fields to set (``generator``, ``normalization``).
      say: prints a progress line (when waiting for another export).
      stale: names of earlier files this export replaces without writing them (an
        earlier export of the same stem wrote them): removed, with their entries, once
        the new files are in place. Their entries leave the manifest at the first
        rename, so no entry ever names a removed file.

    Returns:
      The temporary files of earlier, killed exports that were removed.

    Raises:
      ValueError: an entry that does not describe one of ``files``; a models.json
        in the folder that is not a manifest.
      OSError: a write failed (ValueError naming the folder for a full disk): nothing
        was renamed then.
    """
    folder = os.fspath(folder)
    stale = [name for name in stale if name not in files and os.path.basename(name) == name]
    if MANIFEST in files:
        raise ValueError(f"{MANIFEST} is written by publish itself, not passed in files")
    for entry in entries:
        content = files.get(entry.get("file"))
        if content is None or hashlib.sha256(content).hexdigest() != entry.get("sha256"):
            raise ValueError(f"manifest entry {entry.get('file')!r} does not describe one "
                             f"of the files written ({', '.join(files)})")
    path = os.path.join(folder, MANIFEST)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise cli.UsageError(f"cannot create output folder {folder!r}: {err.strerror}") \
            from None
    with folder_lock(folder, say=say) as lock:
        removed = fileio.remove_temp_files(folder, is_export_file)
        old = adopt_pending(folder, read_manifest(path))
        old = {**old, "models": [e for e in old["models"] if e.get("file") not in stale]}
        retracted = {**old, "models": [e for e in old["models"] if e.get("file") not in files],
                     "pending": [e for e in old["models"] if e.get("file") in files]
                     + list(entries)}
        final = merged_manifest(old, entries, header)
        renames = []  # (temporary, destination) in the order they are done
        try:
            renames.append((_write_temp(path, fileio.to_json(retracted).encode()), path))
            for name, content in files.items():
                target = os.path.join(folder, name)
                renames.append((_write_temp(target, content), target))
            renames.append((_write_temp(path, fileio.to_json(final).encode()), path))
            with _signals_held():
                while renames:
                    if len(renames) == 1:  # the new files are in place: the stale go
                        for name in stale:
                            with contextlib.suppress(OSError):  # gone already
                                os.remove(os.path.join(folder, name))
                    os.replace(*renames[0])
                    renames.pop(0)
        finally:
            for tmp, _ in renames:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
        os.fsync(lock)
    return removed
