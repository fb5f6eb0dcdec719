"""ResNet v1 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

ImageNet networks (paper Table 1): a 7x7/2 conv and a 3x3/2 max-pool, four stages of
basic (18, 34) or bottleneck (50, 101, 152; 1x1, 3x3, 1x1 with 4x expansion) blocks of
64/128/256/512 base filters, global average pooling and a 1000-way FC. Shortcuts are
option B: identity, and a 1x1 projection + BN only where the shape changes.
This is the paper's *v1*: in a bottleneck block the stride-2 sits on the first 1x1
conv (v1.5, as in torchvision, moves it to the 3x3); this is also what
keras.applications ResNet50/101/152 build. Convs carry no bias (BN follows each);
BN comes after each conv and before the ReLU; a stride-2 KxK conv pads symmetrically,
as the paper's Torch code does.

CIFAR-10 networks (paper Sec. 4.2): depth 6n+2; a 3x3 conv of 16 filters, three stages
of n basic blocks with 16/32/64 filters on 32x32/16x16/8x8 maps, global average pooling
and a 10-way FC. Shortcut options (paper Sec. 3.3 and Table 3), in ``SHORTCUTS``:
"A" (the paper's CIFAR choice) subsamples and appends zero channels where the shape
changes, parameter-free; "B" projects with a 1x1 conv + BN where the shape changes;
"C" projects every shortcut, identity ones too. The ``plain`` twins drop every
shortcut (paper Fig. 3 middle, Fig. 6 left).
"""

from __future__ import annotations

import functools

import keras

from tfresnet.models import _builder
from tfresnet.models.batchnorm import BatchNormalization
from tfresnet.models.layers import ChannelPad
from tfresnet.models.registry import register

BN_EPSILON = 1.001e-5  # keras.applications' value, so its weights give equal outputs
BN_MOMENTUM = 0.9

# depth: (block, blocks per stage); stages have 64, 128, 256, 512 base filters.
IMAGENET_SPECS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
IMAGENET_FILTERS = (64, 128, 256, 512)
CIFAR_FILTERS = (16, 32, 64)
EXPANSION = 4
# shortcut option: what a block's shortcut is (paper Sec. 3.3, Table 3).
SHORTCUTS = {
    "A": "identity; zero-padding (parameter-free) where the shape changes",
    "B": "identity; 1x1 projection + BN where the shape changes",
    "C": "1x1 projection + BN on every shortcut",
}
KERAS_APPLICATIONS_DEPTHS = (50, 101, 152)  # depths with keras.applications weights


def conv_bn(x, filters, kernel, stride, name, relu=True):
    """Conv (no bias) + BN [+ ReLU]; a strided KxK conv pads K//2 on every side."""
    padding = "same"
    if stride > 1 and kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding,
                            use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_conv")(x)
    x = BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                        name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def shortcut(x, filters, stride, kind, name):
    """The shortcut of option ``kind`` (see ``SHORTCUTS``): identity, pad or project."""
    if stride == 1 and x.shape[-1] == filters and kind != "C":
        return x
    if kind in ("B", "C"):
        return conv_bn(x, filters, 1, stride, f"{name}_0", relu=False)
    if stride > 1:
        x = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_subsample")(x)
    return ChannelPad(filters - x.shape[-1], name=f"{name}_0_pad")(x)


def basic_block(x, filters, stride, name, kind="B"):
    """Two 3x3 convs; ``kind=None`` makes the plain block without a shortcut."""
    y = conv_bn(x, filters, 3, stride, f"{name}_1")
    y = conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
    if kind is not None:
        y = keras.layers.Add(name=f"{name}_add")([shortcut(x, filters, stride, kind, name), y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def bottleneck_block(x, filters, stride, name, kind="B"):
    """1x1 (stride here, v1), 3x3, 1x1 with 4x expansion."""
    y = conv_bn(x, filters, 1, stride, f"{name}_1")
    y = conv_bn(y, filters, 3, 1, f"{name}_2")
    y = conv_bn(y, filters * EXPANSION, 1, 1, f"{name}_3", relu=False)
    y = keras.layers.Add(name=f"{name}_add")(
        [shortcut(x, filters * EXPANSION, stride, kind, name), y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def stage(x, block, filters, blocks, stride, index, kind):
    """``blocks`` blocks named ``conv{index}_block{i}``; the first one strides."""
    for i in range(1, blocks + 1):
        x = block(x, filters, stride if i == 1 else 1, f"conv{index}_block{i}", kind=kind)
    return x


def _resnet(depth, *, input_shape, classes, include_top, pooling, weights, name):
    if depth not in IMAGENET_SPECS:
        raise ValueError(f"depth must be one of {sorted(IMAGENET_SPECS)}. "
                         f"Received: depth={depth!r}")
    shape = _builder.validate(input_shape=input_shape, default_shape=(224, 224, 3),
                             min_side=32, classes=classes, include_top=include_top,
                             pooling=pooling, weights=weights, name=name)
    from tfresnet.models import weights as weights_lib
    if weights == "imagenet" and depth in KERAS_APPLICATIONS_DEPTHS:  # fail before building
        weights_lib.imagenet_file(f"ResNet{depth}", include_top=include_top, classes=classes)
    block, counts = IMAGENET_SPECS[depth]
    inputs = keras.Input(shape)
    x = conv_bn(inputs, 64, 7, 2, "conv1")
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for i, (filters, blocks) in enumerate(zip(IMAGENET_FILTERS, counts)):
        x = stage(x, BLOCKS[block], filters, blocks, 1 if i == 0 else 2, i + 2, "B")
    x = _builder.head(x, classes=classes, include_top=include_top, pooling=pooling)
    loader = functools.partial(weights_lib.load_keras_applications, app=f"ResNet{depth}")
    return _builder.finish(inputs, x, name=name or f"resnet{depth}", weights=weights,
                          load_weights=loader if depth in KERAS_APPLICATIONS_DEPTHS else None)


def check_cifar_depth(depth) -> int:
    """``depth`` when it is a CIFAR ResNet depth, 6n+2 with n >= 1; else ValueError."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...). "
                         f"Received: depth={depth!r}")
    return depth


def resnet_cifar(depth=20, *, shortcut="A", plain=False, input_shape=None, classes=10,
                 include_top=True, pooling=None, weights=None, name=None):
    """The paper's CIFAR-10 ResNet (Sec. 4.2) of any depth 6n+2.

    Args:
      depth: 6n+2 weighted layers, n >= 1 (20, 32, 44, 56, 110, 1202 in the paper).
      shortcut: "A" (zero-padding where the shape changes, parameter-free), "B"
        (1x1 projection + BN where the shape changes) or "C" (a 1x1 projection + BN on
        every shortcut); the paper's Table 3 options.
      plain: True for the plain twin without any shortcut.
      input_shape, classes, include_top, pooling, weights, name: as every builder.
    """
    check_cifar_depth(depth)
    if shortcut not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of 'A' (zero-padding), 'B' (projection "
                         f"where the shape changes), 'C' (projection everywhere). "
                         f"Received: shortcut={shortcut!r}")
    shape = _builder.validate(input_shape=input_shape, default_shape=(32, 32, 3), min_side=8,
                             classes=classes, include_top=include_top, pooling=pooling,
                             weights=weights, name=name)
    n = (depth - 2) // 6
    inputs = keras.Input(shape)
    x = conv_bn(inputs, CIFAR_FILTERS[0], 3, 1, "conv1")
    for i, filters in enumerate(CIFAR_FILTERS):
        x = stage(x, basic_block, filters, n, 1 if i == 0 else 2, i + 2,
                  None if plain else shortcut)
    x = _builder.head(x, classes=classes, include_top=include_top, pooling=pooling)
    default = f"plain{depth}" if plain else f"resnet{depth}" + _SUFFIX[shortcut]
    return _builder.finish(inputs, x, name=name or default, weights=weights)


def _register_imagenet(depth):
    block = IMAGENET_SPECS[depth][0]

    @register(f"resnet{depth}", family="resnet", recipe="resnet_imagenet",
              paper=f"ResNet-{depth} v1 ({block} blocks, option B), He et al. 2016 Table 1",
              input_shape=(224, 224, 3), min_side=32, small_side=64,
              imagenet=f"ResNet{depth}" if depth in KERAS_APPLICATIONS_DEPTHS else "",
              augment="imagenet", first_layer=(2, IMAGENET_FILTERS[0]),
              head_width=IMAGENET_FILTERS[-1] * (EXPANSION if block == "bottleneck" else 1),
              family_label="ResNet (ImageNet)", plot_style=("tab:red", "s"))
    def builder(*, input_shape=None, classes=1000, include_top=True, pooling=None,
                weights=None, name=None):
        return _resnet(depth, input_shape=input_shape, classes=classes,
                       include_top=include_top, pooling=pooling, weights=weights, name=name)

    builder.__name__ = builder.__qualname__ = f"resnet{depth}"
    builder.__doc__ = (f"ResNet-{depth} for ImageNet (He et al. 2016, Table 1), v1 stride "
                       f"placement, option B shortcuts; see the module docstring.")
    return builder


_SUFFIX = {"A": "", "B": "b", "C": "c"}  # registry and model names: resnet20, resnet20b, ...


def _register_cifar(depth, plain=False, shortcut_kind="A"):
    name = f"plain{depth}" if plain else f"resnet{depth}" + _SUFFIX[shortcut_kind]
    what = "plain (no shortcuts)" if plain else f"option {shortcut_kind} shortcuts"

    @register(name, family="resnet_cifar", recipe="resnet_cifar",
              paper=f"CIFAR-10 {'plain' if plain else 'ResNet'}-{depth}, {what}, "
                    f"He et al. 2016 Sec. 4.2", input_shape=(32, 32, 3), min_side=8,
              small_side=16, augment="cifar", first_layer=(1, CIFAR_FILTERS[0]),
              head_width=CIFAR_FILTERS[-1], family_label="ResNet (CIFAR)",
              plot_style=("tab:orange", "D"))
    def builder(*, input_shape=None, classes=10, include_top=True, pooling=None,
                weights=None, name=None):
        return resnet_cifar(depth, shortcut=shortcut_kind, plain=plain,
                            input_shape=input_shape, classes=classes,
                            include_top=include_top, pooling=pooling, weights=weights,
                            name=name)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"CIFAR-10 {what} network of depth {depth} (He et al. 2016, Sec. 4.2)."
    return builder


resnet18, resnet34, resnet50, resnet101, resnet152 = (
    _register_imagenet(d) for d in IMAGENET_SPECS)
resnet20, resnet32, resnet44, resnet56, resnet110 = (
    _register_cifar(d) for d in (20, 32, 44, 56, 110))
resnet20b = _register_cifar(20, shortcut_kind="B")
resnet20c = _register_cifar(20, shortcut_kind="C")
plain20, plain32, plain44, plain56, plain110 = (
    _register_cifar(d, plain=True) for d in (20, 32, 44, 56, 110))
