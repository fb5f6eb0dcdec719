"""AlexNet (Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012).

``alexnet``: the 2012 network of the paper's Fig. 2. Five convs of 96-256-384-384-256
filters (11x11/4, 5x5, 3x3, 3x3, 3x3), ReLU, local response normalization (k=2, n=5,
alpha=1e-4, beta=0.75) after conv1 and conv2, overlapping 3x3/2 max-pooling after
conv1, conv2 and conv5, then FC 4096-4096-classes with dropout 0.5 after the first two.
The paper's two-GPU split is ``groups=2`` on conv2, conv4 and conv5 (conv3 sees both
columns). The input is 227x227 (the paper says 224, but only 227 gives its 55x55 maps).

``alexnet_owt``: the single-column network of "One weird trick for parallelizing
convolutional neural networks" (Krizhevsky 2014), as in torchvision: 64-192-384-256-256
filters, conv1 padded by 2 on a 224x224 input, no LRN, no groups.

``alexnet_bn``: the 2012 layout (same filters, kernels, groups and pooling) with batch
normalization after every conv instead of LRN, convs without bias. LRN has no integer
TFLite kernel; this variant is the AlexNet that exports to full INT8.
"""

from __future__ import annotations

import keras

from tfresnet.models import _builder
from tfresnet.models.batchnorm import BatchNormalization
from tfresnet.models.layers import LocalResponseNormalization, StaticFlatten
from tfresnet.models.registry import register

# One row per conv: (filters, kernel, stride, groups, max-pool after).
ALEXNET_2012 = (
    (96, 11, 4, 1, True),
    (256, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (384, 3, 1, 2, False),
    (256, 3, 1, 2, True),
)
ALEXNET_OWT = (
    (64, 11, 4, 1, True),
    (192, 5, 1, 1, True),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)
FC_UNITS = (4096, 4096)


def _family(spec) -> dict:
    """What every AlexNet registers besides its name, paper and input: the family, its
    augmentation, the first conv's (stride, filters), the classifier's input width."""
    return {"family": "alexnet", "augment": "imagenet", "first_layer": (spec[0][2], spec[0][0]),
            "head_width": FC_UNITS[-1], "family_label": "AlexNet",
            "plot_style": ("tab:green", "^")}


def conv_block(x, filters, kernel, stride, groups, index, norm, lrn_here, pad=0):
    """Conv + [BN] + ReLU [+ LRN]; conv1 pads ``pad`` explicitly, the rest 'same'."""
    name = f"conv{index}"
    if pad:
        x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(filters, kernel, strides=stride, groups=groups,
                            padding="valid" if index == 1 else "same",
                            use_bias=norm != "bn", name=f"{name}_conv")(x)
    if norm == "bn":
        x = BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    if norm == "lrn" and lrn_here:
        x = LocalResponseNormalization(name=f"{name}_lrn")(x)
    return x


def _alexnet(spec, *, norm, conv1_pad, default_side, default_name, input_shape, classes,
             include_top, pooling, weights, name):
    shape = _builder.validate(input_shape=input_shape,
                             default_shape=(default_side, default_side, 3),
                             min_side=67 - 2 * conv1_pad, classes=classes,
                             include_top=include_top, pooling=pooling, weights=weights,
                             name=name)
    inputs = keras.Input(shape)
    x = inputs
    for index, (filters, kernel, stride, groups, pool) in enumerate(spec, start=1):
        x = conv_block(x, filters, kernel, stride, groups, index, norm, lrn_here=index <= 2,
                       pad=conv1_pad if index == 1 else 0)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{index}")(x)
    if include_top:
        x = StaticFlatten(name="flatten")(x)
        for i, units in enumerate(FC_UNITS, start=6):
            x = keras.layers.Dense(units, activation="relu", name=f"fc{i}")(x)
            x = keras.layers.Dropout(0.5, name=f"fc{i}_dropout")(x)
        x = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    else:
        x = _builder.head(x, classes=classes, include_top=False, pooling=pooling)
    return _builder.finish(inputs, x, name=name or default_name, weights=weights)


@register("alexnet", recipe="alexnet", input_shape=(227, 227, 3),
          paper="AlexNet 2012 (two columns as groups=2, LRN), Krizhevsky et al. 2012",
          min_side=67, small_side=67, int8=False,
          int8_note="LRN has no integer TFLite kernel; export alexnet_bn (or lrn=False)",
          **_family(ALEXNET_2012))
def alexnet(*, lrn=True, input_shape=None, classes=1000, include_top=True, pooling=None,
            weights=None, name=None):
    """The 2012 AlexNet (paper Fig. 2); ``lrn=False`` drops the two LRN layers."""
    if not isinstance(lrn, bool):
        raise ValueError(f"lrn must be True or False. Received: lrn={lrn!r}")
    return _alexnet(ALEXNET_2012, norm="lrn" if lrn else None, conv1_pad=0,
                    default_side=227, default_name="alexnet", input_shape=input_shape,
                    classes=classes, include_top=include_top, pooling=pooling,
                    weights=weights, name=name)


@register("alexnet_owt", recipe="alexnet", input_shape=(224, 224, 3),
          paper="AlexNet single column, 'One weird trick' (Krizhevsky 2014), as torchvision",
          min_side=63, small_side=63, **_family(ALEXNET_OWT))
def alexnet_owt(*, input_shape=None, classes=1000, include_top=True, pooling=None,
                weights=None, name=None):
    """The single-column AlexNet of torchvision (64-192-384-256-256, no LRN)."""
    return _alexnet(ALEXNET_OWT, norm=None, conv1_pad=2, default_side=224,
                    default_name="alexnet_owt", input_shape=input_shape, classes=classes,
                    include_top=include_top, pooling=pooling, weights=weights, name=name)


@register("alexnet_bn", recipe="alexnet_bn", input_shape=(227, 227, 3),
          paper="AlexNet 2012 layout with BatchNorm instead of LRN (Ioffe & Szegedy 2015)",
          min_side=67, small_side=67, **_family(ALEXNET_2012))
def alexnet_bn(*, input_shape=None, classes=1000, include_top=True, pooling=None,
               weights=None, name=None):
    """The 2012 AlexNet with BN after every conv instead of LRN: the INT8 AlexNet."""
    return _alexnet(ALEXNET_2012, norm="bn", conv1_pad=0, default_side=227,
                    default_name="alexnet_bn", input_shape=input_shape, classes=classes,
                    include_top=include_top, pooling=pooling, weights=weights, name=name)
