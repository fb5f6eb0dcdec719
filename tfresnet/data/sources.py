"""Data for training and export: three sources, one tf.data pipeline, one normalization.

Sources (:func:`load`), each giving a :class:`DataSplit` of unbatched
``(uint8 image [H, W, 3], int32 label)`` elements already resized to the model input:

* ``"digits"``: scikit-learn's bundled ``load_digits`` (1,797 real 8x8 grey digits,
  10 classes). Needs no download; the default. Read here.
* ``"tfds:<name>[/config][:version]"``: a tensorflow-datasets builder, read from a
  prepared ``data_dir`` or prepared from the original archives in ``manual_dir``.
  It never touches the network: anything else fails within seconds
  (:mod:`tfresnet.data.tfds`).
* a folder path: one sub-folder per class, the way most people hold their images
  (:mod:`tfresnet.data.folder`, which also checks that every image decodes).

:func:`pipeline` batches a split for training or evaluation with the papers'
augmentation per model family; :func:`normalize` is the one normalization rule of the
package, ``(pixel - 128) / 128``, which the INT8 export reproduces exactly as uint8 input
quantization (scale 1/128, zero point 128). Both live in :mod:`tfresnet.data.pipelines`;
:class:`DataSplit` and the split and resize rules every source shares in
:mod:`tfresnet.data.split`; the package :mod:`tfresnet.data` is the front door.
"""

from __future__ import annotations

import difflib
import functools
import os

import numpy as np
import tensorflow as tf

from tfresnet.data.folder import load_folder
from tfresnet.data.pipelines import remember_flip_rule
from tfresnet.data.split import DataSplit, stratified_split
from tfresnet.data.tfds import load_tfds, tfds_names
from tfresnet.utils.flags import DEFAULT_VAL_FRACTION

# --------------------------------------------------------------------------- load


def load(spec="digits", *, image_size, data_dir=None, manual_dir=None, seed=0,
         val_fraction=DEFAULT_VAL_FRACTION, skip_bad_images=False) -> DataSplit:
    """Loads a data set as a train/validation :class:`DataSplit`.

    Args:
      spec: "digits", "tfds:<name>[/config][:version]" or the path of an image folder
        (one sub-folder per class; sorted sub-folder names are the labels).
      image_size: int or (height, width) of the images handed out.
      data_dir: tensorflow-datasets folder holding prepared data (tfds only; default:
        tfds' own default, ``~/tensorflow_datasets``).
      manual_dir: folder holding the data set's original archives (tfds only), e.g.
        ``cifar-10-binary.tar.gz``; prepared into ``data_dir`` without the network.
      seed: seed of the train/validation split (digits and folders).
      val_fraction: share of each class put in validation (digits and folders; tfds
        data sets use their own validation or test split).
      skip_bad_images: image folders only: leave out the files TensorFlow cannot decode
        (each named in a warning on stderr, listed in ``DataSplit.skipped``) instead of
        failing on the first one. Every file is decoded once when the folder is read,
        so a bad one never stops training mid-epoch.

    Returns:
      A DataSplit.

    Raises:
      ValueError: one line naming the problem, for a bad spec, a missing or empty
        folder, an undecodable image (unless skipped), an unknown or unprepared tfds
        data set.
    """
    size = _image_size(image_size)
    if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive). "
                         f"Received: val_fraction={val_fraction!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    spec = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"dataset must be 'digits', 'tfds:<name>' or an image folder. "
                         f"Received: dataset={spec!r}")
    if spec == "digits":
        split = _load_digits(size, seed, val_fraction)
    elif spec.startswith("tfds:"):
        split = load_tfds(spec, size, data_dir, manual_dir, val_fraction)
    else:
        if not os.path.exists(spec):
            raise ValueError(_unknown_spec_message(spec))
        split = load_folder(spec, size, seed, val_fraction, skip_bad_images)
    remember_flip_rule(split.train, split.flip_ok)
    remember_flip_rule(split.val, split.flip_ok)
    return split


def _image_size(image_size):
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    ok = (isinstance(image_size, (tuple, list)) and len(image_size) == 2
          and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                  for s in image_size))
    if not ok:
        raise ValueError(f"image_size must be a positive integer or (height, width). "
                         f"Received: image_size={image_size!r}")
    return tuple(image_size)


def _unknown_spec_message(spec):
    hint = ""
    if "/" not in spec and os.sep not in spec:
        close = difflib.get_close_matches(spec, ["digits"] + tfds_names(), n=3, cutoff=0.6)
        close = [c if c == "digits" else f"tfds:{c}" for c in close]
        if close:
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?"
    return (f"unknown dataset {spec!r}: expected 'digits', 'tfds:<name>' or an existing "
            f"image folder (no such folder).{hint}")


def _from_arrays(images, labels):
    return tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))


# digits --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_raw():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    return pixels, bunch.target.astype(np.int32)


@functools.lru_cache(maxsize=4)
def _digits_resized(size):
    """All 1,797 digits as uint8 [N, H, W, 3], bilinear-upsampled (cached: ~1.8 MB at 32)."""
    pixels, _ = _digits_raw()
    images = tf.image.resize(pixels[..., None].astype(np.float32), size, method="bilinear")
    images = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
    images = tf.image.grayscale_to_rgb(images).numpy()
    images.setflags(write=False)
    return images


def _load_digits(size, seed, val_fraction):
    """scikit-learn's digits: 8x8 grey 0..16 -> uint8 0..255, bilinear to ``size``, RGB.

    Bilinear (not nearest) upsampling: smooth strokes, closer to a real photo of a digit.
    Flips are off (``flip_ok=False``): a mirrored 2, 3, 4, 5, 7 or 9 is not a digit.
    """
    images = _digits_resized(size)
    _, labels = _digits_raw()
    train, val = stratified_split(labels, val_fraction, seed)
    return DataSplit(train=_from_arrays(images[train], labels[train]),
                     val=_from_arrays(images[val], labels[val]),
                     labels=[str(d) for d in range(10)], num_train=len(train),
                     num_val=len(val), name="digits", image_size=size, flip_ok=False)


# Folder names that say which split a folder holds, not what it holds: a shipped file
# names such a folder by the folder above it (``flowers/train`` -> ``flowers``).
SPLIT_FOLDER_NAMES = ("train", "training", "trainval", "val", "valid", "validation",
                      "test", "testing")


def shipped_name(name: str) -> str:
    """How shipped files (metadata, manifests, reports) name a data set or a model
    file: a path by its base name, never a local path, the folder above when the base
    name is only a split's (:data:`SPLIT_FOLDER_NAMES`); ``digits`` and ``tfds:...``
    as they are."""
    if name == "digits" or name.startswith("tfds:"):
        return name
    path = os.path.normpath(name)
    base = os.path.basename(path) or name
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    while base.lower() in SPLIT_FOLDER_NAMES and parent:
        path = os.path.dirname(os.path.abspath(path))
        base, parent = parent, os.path.basename(os.path.dirname(path))
    return base


# --------------------------------------------------------------------------- as_numpy


def as_numpy(ds, limit=None):
    """Collects ``(uint8 images [N, H, W, 3], int32 labels [N])`` from a dataset.

    Args:
      ds: unbatched (or batched) dataset of (uint8 image, label).
      limit: at most this many images (None: all).

    Returns:
      Two NumPy arrays.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or a non-negative integer. "
                         f"Received: limit={limit!r}")
    if len(ds.element_spec[0].shape) == 4:
        ds = ds.unbatch()
    if limit is not None:
        ds = ds.take(limit)
    images, labels = [], []
    for x, y in ds.batch(512).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    spec = ds.element_spec[0]
    if not images:
        return (np.zeros((0, *spec.shape), spec.dtype.as_numpy_dtype),
                np.zeros((0,), np.int32))
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)
