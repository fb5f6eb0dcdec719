"""Image folders: one sub-folder of images per class, read once and checked up front.

:func:`load_folder` is what :func:`tfresnet.data.load` does with a folder path;
:func:`undecodable_images` is its check that every file decodes with the op training
decodes with, so that a bad file is named when the folder is read, not mid-epoch.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import unicodedata

import numpy as np
import tensorflow as tf

from tfresnet.data.split import DataSplit, fit_image, stratified_split
from tfresnet.utils import cli, quiet

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# First bytes of each accepted format: a cheap check that finds files that are not
# images (or are empty) when the folder is read, not in the middle of training.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a")
IMAGE_MAX_BYTES = 256 * 2 ** 20  # a photo is a few MiB; a larger "image" is not one


# Characters a class name may not hold, by Unicode category, and why: each is invisible,
# or prints as something else, so two classes could print alike in labels.txt, the
# model card or an app (U+200B before "cat", U+202E turning "gnp.exe" around).
_LOOKS_ALIKE = "so that two classes could print alike"
_HIDDEN = {"Cf": f"an invisible format character, {_LOOKS_ALIKE}",
           "Cs": "not UTF-8 (an old archive's Latin-1?), which labels.txt cannot hold",
           "Co": f"a private-use character, {_LOOKS_ALIKE}",
           "Cn": f"an unassigned code point, {_LOOKS_ALIKE}"}


def check_class_names(root, classes):
    """Refuses class folder names that labels.txt cannot hold one a line, or that could
    print like another's: a line break or another control character (category Cc), an
    invisible format character (Cf: zero-width space, bidi overrides, ...), bytes that
    are not UTF-8, a private-use or unassigned code point, a blank name, or the same
    name as another's after Unicode NFKC normalisation (which also folds compatibility
    look-alikes such as full-width letters and ligatures) and stripping white space.
    Each refusal names the folder in Python's escaped form (``'\\u200bcat'``)."""
    seen = {}
    for name in classes:
        folder = os.path.join(root, name)
        if len((name + "x").splitlines()) != 1 or any(
                unicodedata.category(c) == "Cc" for c in name):
            raise cli.UsageError(f"class folder {folder!r}: its name holds a line break or "
                                 f"another control character, which labels.txt (one "
                                 f"class a line) cannot hold; rename the folder")
        hidden = next((c for c in name if unicodedata.category(c) in _HIDDEN), None)
        if hidden is not None and unicodedata.category(hidden) == "Cs" and _utf8(name):
            raise cli.UsageError(f"class folder {folder!r}: its name is UTF-8, but this "
                                 f"Python reads file names as "
                                 f"{sys.getfilesystemencoding()} (the locale, with "
                                 f"PYTHONUTF8=0); run it with PYTHONUTF8=1 or "
                                 f"LC_ALL=C.UTF-8")
        if hidden is not None:
            what = _HIDDEN[unicodedata.category(hidden)]
            char = (f"byte 0x{ord(hidden) - 0xDC00:02x}" if unicodedata.category(hidden) == "Cs"
                    else f"U+{ord(hidden):04X} {unicodedata.name(hidden, '')}".rstrip())
            raise cli.UsageError(f"class folder {folder!r}: its name holds {char}, {what}; "
                                 f"a class name may hold letters, digits, marks, "
                                 f"punctuation, symbols and spaces: rename the folder")
        key = unicodedata.normalize("NFKC", name).strip()
        if not key:
            raise cli.UsageError(f"class folder {folder!r}: its name is blank; rename the "
                                 f"folder after its class")
        if key in seen:
            raise cli.UsageError(f"class folders {os.path.join(root, seen[key])!r} and "
                                 f"{folder!r} name the same class {key!r} (after Unicode "
                                 f"NFKC normalisation and stripping white space); rename one")
        seen[key] = name


def _utf8(name) -> bool:
    """True when the bytes of file name ``name`` are UTF-8 (whatever Python made of them)."""
    try:
        os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def load_folder(root, size, seed, val_fraction, skip_bad_images=False):
    """A folder with one sub-folder of images per class (sorted names are the labels).

    ``root`` exists (:func:`tfresnet.data.load` names an unknown spec itself); the
    other arguments are :func:`tfresnet.data.load`'s, ``size`` as (height, width).
    """
    if not os.path.isdir(root):
        raise ValueError(f"dataset {root!r} is a file, not a folder of class folders")
    folders = sorted(d.name for d in os.scandir(root) if d.is_dir())
    classes = [name for name in folders if not name.startswith(".")]
    if len(classes) < len(folders):  # .git, .ipynb_checkpoints, ... but never in silence
        hidden = ", ".join(repr(name) for name in folders if name.startswith("."))
        print(f"note: not a class: {hidden} in {root!r} (a folder whose name starts with "
              f"'.' is hidden)", file=sys.stderr)
    if not classes:
        raise ValueError(f"image folder {root!r} has no class folders: put each class's "
                         f"images in a sub-folder named after the class")
    if len(classes) < 2:
        raise ValueError(f"image folder {root!r} has one class folder ({classes[0]!r}); a "
                         f"classifier needs at least two classes, one sub-folder each")
    check_class_names(root, classes)
    files = {}
    for name in classes:
        folder = os.path.join(root, name)
        files[name] = sorted(f.path for f in os.scandir(folder)
                             if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS))
        if not files[name]:
            raise ValueError(f"class folder {folder!r} has no images "
                             f"({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    bad = undecodable_images([p for name in classes for p in files[name]])
    if bad and not skip_bad_images:
        path, reason = next(iter(bad.items()))
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"unreadable image {path!r}: {reason}{more}; remove it or pass "
                         f"`skip_bad_images=True` to leave such files out")
    for path, reason in bad.items():
        print(f"warning: skipping unreadable image {path!r}: {reason}", file=sys.stderr)
    paths, labels = [], []
    for label, name in enumerate(classes):
        good = [p for p in files[name] if p not in bad]
        if not good:
            raise ValueError(f"class folder {os.path.join(root, name)!r} has no decodable "
                             f"images ({len(files[name])} skipped)")
        paths += good
        labels += [label] * len(good)
    # TensorFlow gets the paths as bytes: a file name that is not UTF-8 (Latin-1 from an
    # old archive, held by Python as surrogates) reads like any other.
    paths, labels = np.array([os.fsencode(p) for p in paths]), np.array(labels, np.int32)
    train, val = stratified_split(labels, val_fraction, seed)

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                                   expand_animations=False)
        return fit_image(image, size), label

    def dataset(idx):
        ds = tf.data.Dataset.from_tensor_slices((paths[idx], labels[idx]))
        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    # The absolute path, so that a run finds its data again from any working folder.
    return DataSplit(train=dataset(train), val=dataset(val), labels=classes,
                     num_train=len(train), num_val=len(val), name=os.path.abspath(root),
                     image_size=size, skipped=tuple(bad))


def undecodable_images(paths) -> dict:
    """``{path: reason}`` of the image files that training could not decode, in order.

    First a cheap look at each file's first bytes (not a JPEG, PNG, BMP or GIF: empty,
    text, ...), then every remaining file decoded once with ``tf.io.decode_image``, the
    very op training decodes with, so that what passes here decodes there (a lighter
    check such as PIL's ``verify()`` reads only a JPEG's headers and passes a truncated
    one, and PIL's decoder is not TensorFlow's). The decodes run in parallel in a
    tf.data pipeline (``ignore_errors`` drops the failures; the few failures are then
    decoded again one by one for their message): ~1 ms a photo-sized JPEG a core.
    """
    bad = {}
    for path in paths:
        try:  # before opening it: a FIFO would block, /dev/zero or a sparse file never end
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                bad[path] = "not a regular file (a FIFO, device or socket)"
                continue
            if st.st_size > IMAGE_MAX_BYTES:
                bad[path] = (f"{st.st_size / 2 ** 20:,.0f} MiB, more than the "
                             f"{IMAGE_MAX_BYTES // 2 ** 20} MiB an image file can be")
                continue
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError as err:
            bad[path] = f"cannot read it ({err.strerror})"
            continue
        if not head.startswith(_MAGIC):
            bad[path] = "not a JPEG, PNG, BMP or GIF file"
    rest = [p for p in paths if p not in bad]
    if rest:  # libjpeg's "Premature end of JPEG data" lines hidden: the reason says it
        with quiet.native_noise_hidden():
            _decode_all(rest, bad)
    return {p: bad[p] for p in paths if p in bad}


def _decode_all(rest, bad):
    """Adds to ``bad`` the files of ``rest`` that ``tf.io.decode_image`` cannot decode."""
    def decodes(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                                   expand_animations=False)
        return path, tf.shape(image)[0]

    ds = tf.data.Dataset.from_tensor_slices([os.fsencode(p) for p in rest]).map(
        decodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    good = {os.fsdecode(p) for p, _ in ds.ignore_errors().as_numpy_iterator()}
    for path in rest:
        if path not in good:
            bad[path] = _decode_error(path)


def _decode_error(path) -> str:
    try:
        tf.io.decode_image(tf.io.read_file(os.fsencode(path)), channels=3,
                           expand_animations=False)
    except Exception as err:  # noqa: BLE001 - TensorFlow raises several kinds
        text = getattr(err, "message", None) or str(err)
        text = re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", text, flags=re.S)
        return f"TensorFlow cannot decode it ({' '.join(text.split())[:160]})"
    return "TensorFlow cannot decode it"

