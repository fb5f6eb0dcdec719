"""tfresnet: paper-faithful ResNet, AlexNet and MobileNet v1 in Keras 3 (`keras`, TensorFlow backend).

Build any registered model by name or through its builder::

    import tfresnet
    model = tfresnet.get_model("resnet20")           # CIFAR ResNet-20, option A
    from tfresnet import mobilenet_v1
    model = mobilenet_v1(alpha=0.75, res=160)
    tfresnet.profile(model)                           # per-layer params and MACs

Users land here, at :mod:`tfresnet.data` (``load``, ``normalize``, ...) and at
:mod:`tfresnet.train` (``fit``, ``python -m tfresnet.train``). Every name here is
declared once, below, and imported when first asked for; every registered model's
builder is a name here too (``tfresnet.resnet20``), read from the registry, so a new
family module needs no edit of this file.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__version__ = "0.1.0"


def _builders() -> dict:
    """Every registered model's builder, by its registry name."""
    from tfresnet.models.registry import list_models, model_info

    return {name: model_info(name).builder for name in list_models()}


__getattr__, __dir__ = front_door(__name__, registered=_builders)

if TYPE_CHECKING:  # the public names besides the builders (each imported on first use)
    from tfresnet.models.families.resnet import check_cifar_depth, resnet_cifar  # noqa: F401
    from tfresnet.models.modelinfo import ModelInfo  # noqa: F401
    from tfresnet.models.profiling import Profile, profile  # noqa: F401
    from tfresnet.models.registry import get_model, list_models, model_info, register  # noqa: F401
    from tfresnet.models.variant import ModelVariant  # noqa: F401
