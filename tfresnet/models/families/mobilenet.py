"""MobileNet v1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks
for Mobile Vision Applications", 2017).

The body is the paper's Table 1: a full 3x3/2 conv of 32 filters, then 13
depthwise-separable blocks (3x3 depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU),
global average pooling and a fully connected classifier. Table 1 prints the 13th
depthwise conv as "s2"; its output stays 7x7, so it is stride 1, as in every
reference implementation.

Width multiplier alpha: every layer has ``int(c * alpha)`` channels (the paper's
rule, which reproduces its Table 6 mult-adds; research/slim rounds to multiples of
8 instead). Resolution multiplier rho: the input side is ``res = 224 * rho``, any
multiple of 32 from 32 up. The activation is ReLU6, as in the paper's TensorFlow
release and keras.applications, so their weights load and give equal outputs, and
so the activation range suits 8-bit quantization. Layer names follow
keras.applications (``conv1``, ``conv_dw_3_bn``, ``conv_pw_13_relu``).

The paper's two ablations are builder options over the same table:

* ``separable=False``, "Conv MobileNet" (Table 4): every depthwise-separable row is one
  full 3x3 conv + BN + ReLU6 of the same stride and output channels (layers
  ``conv_{row}``, ``conv_{row}_bn``, ``conv_{row}_relu``). At alpha 1 and 224: 4866M
  mult-adds and 29.3M parameters, against 569M / 4.2M separable.
* ``shallow=True``, "Shallow MobileNet" (Table 5): the five 14x14x512 separable rows
  of Table 1 (``SHALLOW_REMOVED``) are left out; the other rows keep their numbers in
  the layer names. At alpha 1 and 224: 307M / 2.9M, against 0.75 MobileNet's 325M /
  2.6M (thinner beats shallower at about equal cost: 68.4% vs 65.3% top-1).
"""

from __future__ import annotations

import functools

import keras

from tfresnet.models import _builder
from tfresnet.models.batchnorm import BatchNormalization
from tfresnet.models.modelinfo import Multipliers
from tfresnet.models.registry import register
from tfresnet.utils.flags import MOBILENET_RES_MULTIPLE

# One row per layer of the paper's Table 1: (kind, stride, output channels at alpha 1).
# A "dws" row is a depthwise-separable block: 3x3 depthwise at that stride, 1x1 pointwise.
MOBILENET_V1_SPEC = (
    ("conv", 2, 32),
    ("dws", 1, 64),
    ("dws", 2, 128),
    ("dws", 1, 128),
    ("dws", 2, 256),
    ("dws", 1, 256),
    ("dws", 2, 512),
    ("dws", 1, 512),
    ("dws", 1, 512),
    ("dws", 1, 512),
    ("dws", 1, 512),
    ("dws", 1, 512),
    ("dws", 2, 1024),
    ("dws", 1, 1024),
)
# Rows of MOBILENET_V1_SPEC that the paper's Shallow MobileNet (Table 5) removes: the
# five stride-1 separable layers at 14x14x512 (Table 1's "5x").
SHALLOW_REMOVED = (7, 8, 9, 10, 11)
RESOLUTIONS = (224, 192, 160, 128)  # the paper's resolution multipliers, 224 * rho
ALPHAS = (1.0, 0.75, 0.5, 0.25)  # the paper's width multipliers
RES_MULTIPLE = MOBILENET_RES_MULTIPLE  # the input side: five stride-2 layers halve it exactly


def alpha_text(alpha) -> str:
    """``0.75`` -> ``"0.75"``, ``1`` -> ``"1.0"``: the alpha in model and file names."""
    text = f"{float(alpha):g}"
    return text if "." in text or "e" in text else text + ".0"


MULTIPLIERS = Multipliers(alphas=ALPHAS, resolutions=RESOLUTIONS,
                          first_channels=MOBILENET_V1_SPEC[0][2], res_multiple=RES_MULTIPLE,
                          alpha_text=alpha_text)
# What every MobileNet v1 variant registers besides its name, paper and defaults.
FAMILY = {"family": "mobilenet_v1", "recipe": "mobilenet", "augment": "mobilenet",
          "input_shape": (224, 224, 3), "min_side": RES_MULTIPLE, "small_side": RES_MULTIPLE,
          "extra_args": ("alpha", "res"), "multipliers": MULTIPLIERS,
          "first_layer": MOBILENET_V1_SPEC[0][1:], "head_width": MOBILENET_V1_SPEC[-1][2],
          "last_conv": MOBILENET_V1_SPEC[-1][2],
          "family_label": "MobileNet v1 (alpha/res)", "plot_style": ("tab:blue", "o")}


def _bn_relu(x, name):
    x = BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def conv_block(x, filters, stride, name="conv1"):
    """Full 3x3 conv + BN + ReLU6."""
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                            name=name)(x)
    return _bn_relu(x, name)


def depthwise_separable_block(x, filters, stride, index):
    """3x3 depthwise + BN + ReLU6, then 1x1 pointwise + BN + ReLU6 (paper Fig. 3)."""
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                     name=f"conv_dw_{index}")(x)
    x = _bn_relu(x, f"conv_dw_{index}")
    x = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False,
                            name=f"conv_pw_{index}")(x)
    return _bn_relu(x, f"conv_pw_{index}")



@register("mobilenet_v1", paper="MobileNet v1, Howard et al. 2017 Table 1; channels "
          "int(c * alpha)", imagenet="MobileNet", **FAMILY)
def mobilenet_v1(*, alpha=1.0, res=None, separable=True, shallow=False, input_shape=None,
                 classes=1000, include_top=True, pooling=None, weights=None, name=None):
    """MobileNet v1 with width multiplier ``alpha`` and resolution ``res``.

    Args:
      alpha: width multiplier, any number > 0 that leaves the first conv at least one
        channel (alpha >= 1/32); 1.0, 0.75, 0.5 and 0.25 are the paper's.
      res: input side, a multiple of 32 and at least 32 (224 * rho; the paper's
        224/192/160/128). Give ``res`` or ``input_shape``, not both differently.
      separable: False builds the paper's "Conv MobileNet" (Table 4): full 3x3 convs
        instead of the depthwise-separable blocks.
      shallow: True builds the paper's "Shallow MobileNet" (Table 5): without the five
        14x14x512 separable layers (``SHALLOW_REMOVED``).
      input_shape, classes, include_top, pooling, weights, name: as every builder;
        ``weights`` loads keras.applications MobileNet files (any alpha/res) into the
        paper's network (separable, not shallow) only.

    Raises:
      ValueError: for a bad alpha, res, separable, shallow or common argument.
    """
    MULTIPLIERS.check_alpha(alpha)
    if res is not None:
        MULTIPLIERS.check_res(res)
        if input_shape is not None and (not isinstance(input_shape, (tuple, list))
                                        or tuple(input_shape[:2]) != (res, res)):
            raise ValueError(f"res and input_shape disagree; give one of them. "
                             f"Received: res={res!r}, input_shape={input_shape!r}")
        input_shape = (res, res, 3) if input_shape is None else input_shape
    for flag, value in (("separable", separable), ("shallow", shallow)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag} must be True or False. Received: {flag}={value!r}")
    shape = _builder.validate(input_shape=input_shape, default_shape=(224, 224, 3),
                             min_side=RES_MULTIPLE, multiple_of=RES_MULTIPLE, classes=classes,
                             include_top=include_top, pooling=pooling, weights=weights,
                             name=name)
    paper_network = separable and not shallow
    if weights is not None and not paper_network:
        raise ValueError(f"weights exist for the separable, full-depth MobileNet only. "
                         f"Received: weights={weights!r}, separable={separable!r}, "
                         f"shallow={shallow!r}")
    from tfresnet.models import weights as weights_lib
    if weights == "imagenet":  # fail before building
        weights_lib.imagenet_file("MobileNet", include_top=include_top, classes=classes,
                                  alpha=alpha, rows=shape[0], grid=MULTIPLIERS)
    inputs = keras.Input(shape)
    x = inputs
    for index, (kind, stride, channels) in enumerate(MOBILENET_V1_SPEC):
        if shallow and index in SHALLOW_REMOVED:
            continue
        filters = int(channels * alpha)
        if kind == "conv":
            x = conv_block(x, filters, stride)
        elif separable:
            x = depthwise_separable_block(x, filters, stride, index)
        else:
            x = conv_block(x, filters, stride, name=f"conv_{index}")
    x = _builder.head(x, classes=classes, include_top=include_top, pooling=pooling)
    loader = functools.partial(weights_lib.load_keras_applications, app="MobileNet",
                               alpha=alpha, grid=MULTIPLIERS)
    variant = ("" if separable else "_conv") + ("_shallow" if shallow else "")
    default = f"mobilenet_v1{variant}_{alpha_text(alpha)}_{shape[0]}"
    return _builder.finish(inputs, x, name=name or default, weights=weights,
                          load_weights=loader)


@register("mobilenet_v1_conv", paper="Conv MobileNet, Howard et al. 2017 Table 4: full 3x3 "
          "convs instead of depthwise-separable ones", small_kwargs={"alpha": 0.25}, **FAMILY)
def mobilenet_v1_conv(*, alpha=1.0, res=None, input_shape=None, classes=1000,
                      include_top=True, pooling=None, weights=None, name=None):
    """The paper's Conv MobileNet (Table 4): :func:`mobilenet_v1` with ``separable=False``."""
    return mobilenet_v1(alpha=alpha, res=res, separable=False, input_shape=input_shape,
                        classes=classes, include_top=include_top, pooling=pooling,
                        weights=weights, name=name)


@register("mobilenet_v1_shallow", paper="Shallow MobileNet, Howard et al. 2017 Table 5: "
          "without the five 14x14x512 separable layers", **FAMILY)
def mobilenet_v1_shallow(*, alpha=1.0, res=None, input_shape=None, classes=1000,
                         include_top=True, pooling=None, weights=None, name=None):
    """The paper's Shallow MobileNet (Table 5): :func:`mobilenet_v1` with ``shallow=True``."""
    return mobilenet_v1(alpha=alpha, res=res, shallow=True, input_shape=input_shape,
                        classes=classes, include_top=include_top, pooling=pooling,
                        weights=weights, name=name)
