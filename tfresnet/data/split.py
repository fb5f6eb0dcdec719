"""What every data source hands out: a :class:`DataSplit`, split and resized the same way.

The three sources of :func:`tfresnet.data.load` (scikit-learn's digits in ``sources``, image
folders in ``folder``, tensorflow-datasets in ``tfds``) share two rules kept
here: :func:`stratified_split`, the seeded per-class train/validation split, and
:func:`fit_image`, the resize of one image to the model input.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class DataSplit:
    """A train/validation pair of unbatched ``(uint8 [H, W, 3], int32 [])`` datasets.

    Attributes:
      train, val: the two datasets, images already resized to ``image_size``.
      labels: class names; label ``i`` is ``labels[i]``.
      num_train, num_val: number of elements in each.
      name: the spec it was loaded from (e.g. "digits", "tfds:cifar10", a folder).
      image_size: (height, width).
      flip_ok: whether a horizontal flip keeps an image's label (False for digits).
      skipped: image files of a folder left out as undecodable (``skip_bad_images``).
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    labels: list
    num_train: int
    num_val: int
    name: str
    image_size: tuple
    flip_ok: bool = True
    skipped: tuple = ()

    def val_labels(self) -> np.ndarray:
        """The validation images' integer labels, in the dataset's order."""
        return np.fromiter((int(y) for y in self.val.map(
            lambda image, label: label).as_numpy_iterator()), dtype=np.int64)



def stratified_split(labels, val_fraction, seed):
    """Seeded per-class split: round(n * val_fraction) of each class to validation.

    Returns sorted (train_indices, val_indices).
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def fit_image(image, size):
    """Resizes a uint8 [h, w, c] image to uint8 [H, W, 3] (bilinear, antialiased).

    A non-square source is first centre-cropped to the target's aspect ratio, so
    objects keep their shape (as keras' ``crop_to_aspect_ratio=True``).
    """
    image = tf.convert_to_tensor(image)
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    height, width = size
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    crop_h = tf.minimum(h, tf.cast(tf.round(tf.cast(w, tf.float32) * height / width), tf.int32))
    crop_w = tf.minimum(w, tf.cast(tf.round(tf.cast(h, tf.float32) * width / height), tf.int32))
    crop_h, crop_w = tf.maximum(crop_h, 1), tf.maximum(crop_w, 1)
    image = tf.image.crop_to_bounding_box(image, (h - crop_h) // 2, (w - crop_w) // 2,
                                          crop_h, crop_w)
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return tf.ensure_shape(image, (height, width, 3))
