"""The models: each family a spec table and one builder, one registry over them.

* :mod:`~tfresnet.models.resnet`, :mod:`~tfresnet.models.mobilenet`,
  :mod:`~tfresnet.models.alexnet`: the families (register their builders with
  :func:`~tfresnet.models.modelinfo.register`); :mod:`~tfresnet.models.layers`: the two
  layers Keras lacks; :mod:`~tfresnet.models._builder`: the signature every builder
  shares.
* :mod:`~tfresnet.models.registry`: ``list_models``, ``model_info``, ``get_model``;
  everything outside this package asks it (or a :class:`ModelVariant`), never a family.
* :mod:`~tfresnet.models.variant`: a model variant (name, alpha, input side) as one value.
* :mod:`~tfresnet.models.weights`: keras.applications weights into these models.
* :mod:`~tfresnet.models.published`: the papers' figures, each with its source.
* :mod:`~tfresnet.models.profiling`: per-layer parameters and multiply-adds.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

_HOMES = {  # public name -> the module that defines it, imported on first use
    "ModelInfo": "tfresnet.models.modelinfo",
    "register": "tfresnet.models.modelinfo",
    "Profile": "tfresnet.models.profiling",
    "profile": "tfresnet.models.profiling",
    "get_model": "tfresnet.models.registry",
    "list_models": "tfresnet.models.registry",
    "model_info": "tfresnet.models.registry",
    "ModelVariant": "tfresnet.models.variant",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = front_door(__name__, _HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from tfresnet.models.modelinfo import ModelInfo, register  # noqa: F401
    from tfresnet.models.profiling import Profile, profile  # noqa: F401
    from tfresnet.models.registry import get_model, list_models, model_info  # noqa: F401
    from tfresnet.models.variant import ModelVariant  # noqa: F401
