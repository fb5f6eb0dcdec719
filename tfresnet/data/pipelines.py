"""tf.data input pipelines: the one normalization, the papers' augmentations, batching.

:func:`pipeline` batches an unbatched ``(uint8 image, int32 label)`` dataset (a
:class:`tfresnet.data.DataSplit`'s ``train`` or ``val``) for training or evaluation
with the augmentation of the model's family; :func:`normalize` is the one normalization
rule of the package, ``(pixel - 128) / 128``, which the INT8 export reproduces exactly
as uint8 input quantization (scale 1/128, zero point 128).
"""

from __future__ import annotations

import difflib
import functools
import weakref

import numpy as np
import tensorflow as tf

from tfresnet.utils.flags import AUGMENTATIONS  # noqa: F401  (TF-free, for the CLIs)

MEAN = 128.0
STD = 128.0


CACHE_LIMIT_BYTES = 2 * 1024**3  # pipeline(cache="auto") caches decoded splits up to this
SHUFFLE_BUFFER = 10_000
CIFAR_PAD = 4
# Random-resized-crop area ranges (fraction of the image), aspect ratio 3/4..4/3 for both.
IMAGENET_SCALE = (0.08, 1.0)  # Inception / torchvision RandomResizedCrop
MOBILENET_SCALE = (0.25, 1.0)  # "less data augmentation" (MobileNet paper, sec. 4); our range
ASPECT_RATIO = (3 / 4, 4 / 3)

# Datasets made by tfresnet.data.load() remember whether horizontal flips keep their
# labels (digits: no), so pipeline(flip=None) gets it right without the caller passing
# it along.
_FLIP_OK = weakref.WeakKeyDictionary()


def normalize(images):
    """Maps pixels 0..255 to ``(pixel - MEAN) / STD`` in float32: 0 -> -1, 255 -> 0.9921875.

    Args:
      images: uint8 or float pixels (0..255), a NumPy array or a tensor.

    Returns:
      float32 of the same kind (NumPy in, NumPy out).
    """
    if isinstance(images, (np.ndarray, np.generic, list, tuple, int, float)):
        return ((np.asarray(images, np.float32) - MEAN) / STD).astype(np.float32)
    return (tf.cast(images, tf.float32) - MEAN) / STD


def pipeline(ds, *, batch_size, training, augment, seed=0, drop_remainder=False,
             flip=None, cache="auto"):
    """Batches an unbatched ``(uint8 image, label)`` dataset for a model.

    Training: cache (decoded uint8) -> seeded shuffle -> augment (per element,
    stateless seeds) -> batch -> normalize -> prefetch. Evaluation: cache -> batch ->
    normalize -> prefetch, with no randomness.

    Augmentations (``augment``, used only when ``training``):

    * "cifar" (ResNet paper, sec. 4.2): zero-pad 4 pixels on each side, random crop
      back to the input size, random horizontal flip.
    * "imagenet": random resized crop (area 8%..100%, aspect 3/4..4/3, via
      ``tf.image.stateless_sample_distorted_bounding_box``) + flip; the Inception /
      torchvision recipe that later ResNet and AlexNet training uses (the ResNet
      paper's own scale augmentation resizes the short side to 256..480 instead).
    * "mobilenet": the same with area 25%..100% (the paper uses "less data
      augmentation" for small models and gives no numbers; this range is ours).
    * "none".

    Args:
      ds: unbatched dataset of (uint8 [H, W, 3], int32 []) as in a DataSplit.
      batch_size: images per batch (global batch under a distribution strategy).
      training: shuffle and augment when True.
      augment: one of AUGMENTATIONS (ignored when ``training`` is False).
      seed: seed of the shuffle and of every random crop / flip: same seed, same batches.
      drop_remainder: drop a last, smaller batch.
      flip: random horizontal flip when training; None: the dataset's own rule
        (``DataSplit.flip_ok``, False for digits) for a dataset from
        :func:`tfresnet.data.load`, else on for every augmentation but "none".
      cache: True, False or "auto" (cache when the decoded images take at most
        CACHE_LIMIT_BYTES).

    Returns:
      Dataset of (float32 normalized [B, H, W, 3], int32 [B]).
    """
    if augment not in AUGMENTATIONS:
        close = difflib.get_close_matches(str(augment), AUGMENTATIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}; {hint}"
                         f"Received: augment={augment!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. "
                         f"Received: batch_size={batch_size!r}")
    if cache not in (True, False, "auto"):
        raise ValueError(f"cache must be True, False or 'auto'. Received: cache={cache!r}")
    if flip is None:
        flip = default_flip(ds, augment)
    if cache is True or (cache == "auto" and _fits_in_memory(ds)):
        ds = ds.cache()
    if training:
        size = int(ds.cardinality())
        buffer = SHUFFLE_BUFFER if size < 0 else max(1, min(size, SHUFFLE_BUFFER))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if augment != "none" or flip:
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip((ds, seeds.batch(2, drop_remainder=True)))
            step = functools.partial(_augment, kind=augment, flip=bool(flip))
            ds = ds.map(step, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda x, y: (normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def remember_flip_rule(ds, flip_ok):
    """Records whether a horizontal flip keeps ``ds``'s labels, for :func:`default_flip`
    (:func:`tfresnet.data.load` records it for both datasets of the split it returns)."""
    _FLIP_OK[ds] = flip_ok


def default_flip(ds, augment):
    """Whether :func:`pipeline` flips by default: never for "none" or for a dataset
    whose :class:`DataSplit` says flips change labels (digits)."""
    return augment != "none" and _FLIP_OK.get(ds, True)


def _fits_in_memory(ds):
    n = int(ds.cardinality())
    shape = ds.element_spec[0].shape
    if n < 0 or not shape.is_fully_defined():
        return False
    return n * int(np.prod(shape)) * ds.element_spec[0].dtype.size <= CACHE_LIMIT_BYTES


def _augment(element, seed, *, kind, flip):
    """One training image's augmentation with its own stateless seed pair."""
    image, label = element
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if kind == "cifar":
        image = cifar_crop(image, crop_seed)
    elif kind == "imagenet":
        image = random_resized_crop(image, crop_seed, IMAGENET_SCALE)
    elif kind == "mobilenet":
        image = random_resized_crop(image, crop_seed, MOBILENET_SCALE)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image, label


def cifar_crop(image, seed, pad=CIFAR_PAD):
    """Zero-pads ``pad`` pixels on each side and crops a random window of the input size."""
    height, width, channels = image.shape
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(padded, (height, width, channels), seed)


def random_resized_crop(image, seed, scale, ratio=ASPECT_RATIO):
    """Crops a random box (area ``scale``, aspect ``ratio``) and resizes it back (uint8)."""
    height, width, _ = image.shape
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=scale[0], aspect_ratio_range=ratio, area_range=scale,
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, box_size)
    crop = tf.image.resize(crop, (height, width), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(crop), 0, 255), tf.uint8)
