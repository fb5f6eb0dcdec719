"""tfresnet: paper-faithful ResNet, AlexNet and MobileNet v1 in Keras 3 (`keras`, TensorFlow backend).

Build any registered model by name or through its builder::

    import tfresnet
    model = tfresnet.get_model("resnet20")           # CIFAR ResNet-20, option A
    from tfresnet import mobilenet_v1
    model = mobilenet_v1(alpha=0.75, res=160)
    tfresnet.profile(model)                           # per-layer params and MACs

The package's concerns are its sub-packages, each with its own front door:
:mod:`tfresnet.models`, :mod:`tfresnet.data`, :mod:`tfresnet.training` (and
``tfresnet.train.fit``, ``python -m tfresnet.train``); :mod:`tfresnet.utils` holds what
the jobs share (no public API). Every name here is imported when first asked for.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__version__ = "0.1.0"

_HOMES = {  # public name -> the module that defines it
    'alexnet': 'tfresnet.models.alexnet',
    'alexnet_bn': 'tfresnet.models.alexnet',
    'alexnet_owt': 'tfresnet.models.alexnet',
    'mobilenet_v1': 'tfresnet.models.mobilenet',
    'mobilenet_v1_conv': 'tfresnet.models.mobilenet',
    'mobilenet_v1_shallow': 'tfresnet.models.mobilenet',
    'ModelInfo': 'tfresnet.models.modelinfo',
    'register': 'tfresnet.models.modelinfo',
    'Profile': 'tfresnet.models.profiling',
    'profile': 'tfresnet.models.profiling',
    'get_model': 'tfresnet.models.registry',
    'list_models': 'tfresnet.models.registry',
    'model_info': 'tfresnet.models.registry',
    'check_cifar_depth': 'tfresnet.models.resnet',
    'plain20': 'tfresnet.models.resnet',
    'plain32': 'tfresnet.models.resnet',
    'plain44': 'tfresnet.models.resnet',
    'plain56': 'tfresnet.models.resnet',
    'plain110': 'tfresnet.models.resnet',
    'resnet18': 'tfresnet.models.resnet',
    'resnet20': 'tfresnet.models.resnet',
    'resnet20b': 'tfresnet.models.resnet',
    'resnet20c': 'tfresnet.models.resnet',
    'resnet32': 'tfresnet.models.resnet',
    'resnet34': 'tfresnet.models.resnet',
    'resnet44': 'tfresnet.models.resnet',
    'resnet50': 'tfresnet.models.resnet',
    'resnet56': 'tfresnet.models.resnet',
    'resnet101': 'tfresnet.models.resnet',
    'resnet110': 'tfresnet.models.resnet',
    'resnet152': 'tfresnet.models.resnet',
    'resnet_cifar': 'tfresnet.models.resnet',
    'ModelVariant': 'tfresnet.models.variant',
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = front_door(__name__, _HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from tfresnet.models.alexnet import alexnet, alexnet_bn, alexnet_owt  # noqa: F401
    from tfresnet.models.mobilenet import (  # noqa: F401
        mobilenet_v1, mobilenet_v1_conv, mobilenet_v1_shallow)
    from tfresnet.models.modelinfo import ModelInfo, register  # noqa: F401
    from tfresnet.models.profiling import Profile, profile  # noqa: F401
    from tfresnet.models.registry import get_model, list_models, model_info  # noqa: F401
    from tfresnet.models.resnet import (  # noqa: F401
        check_cifar_depth, plain20, plain32, plain44, plain56, plain110, resnet18, resnet20,
        resnet20b, resnet20c, resnet32, resnet34, resnet44, resnet50, resnet56, resnet101,
        resnet110, resnet152, resnet_cifar)
    from tfresnet.models.variant import ModelVariant  # noqa: F401
