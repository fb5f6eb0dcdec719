"""What every builder shares: the validated signature, the classifier head, weights.

Every public builder takes the same keyword-only arguments
``input_shape, classes, include_top, pooling, weights, name`` and calls
:func:`validate` first, so a bad value fails before any layer is made, with
one message that names the value and what is allowed.
"""

from __future__ import annotations

import os

import keras

POOLINGS = (None, "avg", "max")


def validate(*, input_shape, default_shape, min_side, classes, include_top, pooling,
             weights, name, multiple_of: int = 1):
    """Checks the common builder arguments and returns the input shape to use.

    Args:
      input_shape: (H, W, C) or None for ``default_shape``.
      default_shape: the paper's input shape.
      min_side: the smallest H and W the network accepts.
      multiple_of: H and W must be multiples of this (e.g. 32 for MobileNet).

    Raises:
      ValueError: naming the bad value and what is allowed.
    """
    shape = default_shape if input_shape is None else input_shape
    ok = (isinstance(shape, (tuple, list)) and len(shape) == 3
          and all(isinstance(s, int) and not isinstance(s, bool) for s in shape))
    if not ok:
        raise ValueError(f"input_shape must be a tuple of 3 integers (height, width, "
                         f"channels). Received: input_shape={input_shape!r}")
    h, w, c = shape
    if c < 1:
        raise ValueError(f"input_shape needs at least 1 channel. Received: "
                         f"input_shape={input_shape!r}")
    for side in (h, w):
        if side < min_side or side % multiple_of:
            rule = f"at least {min_side}"
            if multiple_of > 1:
                rule += f" and a multiple of {multiple_of}"
            raise ValueError(f"input height and width must be {rule} for this network. "
                             f"Received: input_shape={tuple(shape)!r}")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"classes must be a positive integer. Received: classes={classes!r}")
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False. Received: "
                         f"include_top={include_top!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of None, 'avg', 'max'. Received: "
                         f"pooling={pooling!r}")
    if not (weights is None or weights == "imagenet"
            or (isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights))):
        raise ValueError(f"weights must be None, 'imagenet' or the path of an existing "
                         f"weights file. Received: weights={weights!r}")
    if weights is not None and c != 3:
        raise ValueError(f"weights need 3 input channels. Received: "
                         f"input_shape={tuple(shape)!r}")
    if name is not None and not (isinstance(name, str) and name):
        raise ValueError(f"name must be a non-empty string. Received: name={name!r}")
    return tuple(shape)


def head(x, *, classes, include_top, pooling, dropout=0.0):
    """Global average pooling + softmax classifier, or the ``pooling`` of features."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        return keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def finish(inputs, outputs, *, name, weights, load_weights=None):
    """Makes the functional model and loads ``weights`` through ``load_weights``."""
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        if load_weights is None:
            raise ValueError(f"No published weights can be loaded into {name!r}. "
                             f"Received: weights={weights!r}")
        load_weights(model, weights)
    return model
