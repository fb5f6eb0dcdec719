"""tfresnet: paper-faithful ResNet, AlexNet and MobileNet v1 in Keras 2 (tf_keras).

Build any registered model by name or through its builder::

    import tfresnet
    model = tfresnet.get_model("resnet20")           # CIFAR ResNet-20, option A
    from tfresnet import mobilenet_v1
    model = mobilenet_v1(alpha=0.75, res=160)
    tfresnet.profile(model)                           # per-layer params and MACs
"""

from tfresnet._quiet import import_tensorflow_quietly

import_tensorflow_quietly()

from tfresnet.registry import ModelInfo, get_model, list_models, model_info, register
from tfresnet.resnet import (plain20, plain32, plain44, plain56, plain110, resnet18,
                             resnet20, resnet20b, resnet20c, resnet32, resnet34, resnet44,
                             resnet50, resnet56, resnet101, resnet110, resnet152, resnet_cifar,
                             check_cifar_depth)
from tfresnet.mobilenet import mobilenet_v1, mobilenet_v1_conv, mobilenet_v1_shallow
from tfresnet.alexnet import alexnet, alexnet_bn, alexnet_owt

__version__ = "0.1.0"


def __getattr__(name):
    # `tfresnet.profile` is a module that is also callable (`tfresnet.profile(model)`),
    # imported on first use so that `python -m tfresnet.profile` runs it cleanly.
    if name in ("profile", "Profile"):
        import importlib
        module = importlib.import_module("tfresnet.profile")
        return module if name == "profile" else module.Profile
    raise AttributeError(f"module 'tfresnet' has no attribute {name!r}")
