"""Loading keras.applications weights into the package's models.

The package's ResNet-50/101/152 and MobileNet v1 use keras.applications' layer names,
so its ``.h5`` files map layer by layer. Two differences are folded on the way:

* keras.applications ResNet convs carry a bias; ours do not, since BN follows
  every conv. BN(conv(x) + b) equals BN'(conv(x)) with moving_mean' = moving_mean - b.
* keras.applications MobileNet classifies with a 1x1 conv (``conv_preds``); ours with
  a Dense layer of the same weights.

``weights="imagenet"`` reads the files from the Keras cache (``$KERAS_HOME/models``,
default ``~/.keras/models``) and never downloads: this package runs offline.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from tfresnet.utils import kerasfiles

RESNET_FILES = {
    "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels",
    "ResNet101": "resnet101_weights_tf_dim_ordering_tf_kernels",
    "ResNet152": "resnet152_weights_tf_dim_ordering_tf_kernels",
}


def cache_dir() -> str:
    """Where Keras keeps downloaded weights files."""
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")


def cache_file(app: str, *, include_top: bool, alpha: float = 1.0, rows: int = 224,
               grid=None) -> str:
    """The file name keras.applications gives ``app``'s ImageNet weights.

    ``grid``: MobileNet's :class:`~tfresnet.models.modelinfo.Multipliers`; keras.applications
    publishes the paper's grid (its alphas x resolutions), so an alpha or side outside it
    is refused. Its file names spell the alpha in two digits: 0.75 -> ``7_5``, 1 -> ``1_0``.
    """
    if app in RESNET_FILES:
        return RESNET_FILES[app] + ("" if include_top else "_notop") + ".h5"
    if app == "MobileNet":
        if grid is not None and (alpha not in grid.alphas or rows not in grid.resolutions):
            raise ValueError(
                f"ImageNet MobileNet weights exist for alpha in {sorted(grid.alphas)} and "
                f"res in {sorted(grid.resolutions)}. Received: alpha={alpha!r}, res={rows!r}")
        digits = f"{alpha:.2f}".replace(".", "").lstrip("0")  # 1.00 -> 100, 0.75 -> 75
        return (f"mobilenet_{digits[0]}_{digits[1]}_{rows}_tf"
                + ("" if include_top else "_no_top") + ".h5")
    raise ValueError(f"No keras.applications weights for {app!r}. Received: app={app!r}")


def source_model(app: str, model: keras.Model, alpha: float = 1.0) -> keras.Model:
    """The keras.applications twin of ``model`` (random weights, same shape and head)."""
    include_top = _has_top(model)
    kwargs = dict(weights=None, input_shape=model.input_shape[1:], include_top=include_top,
                  classes=model.output_shape[-1] if include_top else 1000)
    if app == "MobileNet":
        return keras.applications.MobileNet(alpha=alpha, **kwargs)
    return getattr(keras.applications, app)(**kwargs)


def _has_top(model) -> bool:
    return any(layer.name == "predictions" for layer in model.layers)


def transfer(src: keras.Model, dst: keras.Model) -> None:
    """Copies keras.applications weights ``src`` into the package's model ``dst``.

    Raises:
      ValueError: when a layer is missing or of another shape (another architecture).
    """
    for layer in dst.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = _src_weights(src, layer.name)
            conv = layer.name[: -len("_bn")] + ("_conv" if layer.name.endswith("_bn") else "")
            conv_layer = _maybe_layer(src, conv) or _maybe_layer(src, layer.name[: -len("_bn")])
            if conv_layer is not None and getattr(conv_layer, "use_bias", False):
                mean = mean - conv_layer.get_weights()[1]
            values = [gamma, beta, mean, var]
        elif layer.name == "predictions" and _maybe_layer(src, "conv_preds") is not None:
            kernel, bias = _src_weights(src, "conv_preds")
            values = [kernel.reshape(kernel.shape[-2:]), bias]
        else:
            values = _src_weights(src, layer.name)[: len(layer.weights)]
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(v.shape) for v in values] != expected:
            raise ValueError(f"Layer {layer.name!r} has shapes {expected} here but "
                             f"{[tuple(v.shape) for v in values]} in the weights: another "
                             f"architecture. Received: weights for {src.name!r}")
        layer.set_weights(values)


def _maybe_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _src_weights(src, name):
    layer = _maybe_layer(src, name)
    if layer is None:
        raise ValueError(f"The weights have no layer {name!r}: another architecture. "
                         f"Received: weights for {src.name!r}")
    return [np.asarray(w) for w in layer.get_weights()]


def imagenet_file(app: str, *, include_top: bool, classes: int, alpha: float = 1.0,
                  rows: int = 224, grid=None) -> str:
    """The path of ``app``'s ImageNet weights in the Keras cache (``grid``: see
    :func:`cache_file`).

    Builders call it before building, so that a missing file fails at once.

    Raises:
      ValueError: when the file is not in the cache (this package does not download),
        or the classifier does not have 1000 classes.
    """
    name = cache_file(app, include_top=include_top, alpha=alpha, rows=rows, grid=grid)
    path = os.path.join(cache_dir(), name)
    if not os.path.isfile(path):
        raise ValueError(
            f"weights='imagenet' needs {name} in {cache_dir()}, and this package does not "
            f"download (no network here): fetch it with keras.applications on a machine "
            f"online and copy it there, or pass weights=<path to the .h5>. "
            f"Received: weights='imagenet'")
    if include_top and classes != 1000:
        raise ValueError(f"ImageNet weights with the classifier need classes=1000. "
                         f"Received: classes={classes}")
    return path


def load_keras_applications(model: keras.Model, weights, *, app: str, alpha: float = 1.0,
                            grid=None):
    """Loads a keras.applications ``.h5`` file (or ``"imagenet"`` from the cache;
    ``grid``: see :func:`cache_file`).

    Raises:
      ValueError: when ``"imagenet"`` is asked for and the file is not in the cache
        (this package does not download), or when the file does not fit the model.
    """
    if weights == "imagenet":
        weights = imagenet_file(app, include_top=_has_top(model),
                                classes=model.output_shape[-1], alpha=alpha,
                                rows=model.input_shape[1], grid=grid)
    src = source_model(app, model, alpha=alpha)
    try:
        kerasfiles.load_weights(src, weights)  # arrays only: no code in the file runs
    except (ValueError, OSError) as err:
        raise ValueError(f"Cannot load {os.fspath(weights)!r} as keras.applications {app} "
                         f"weights for this model ({err}). Received: weights={weights!r}") from None
    transfer(src, model)
