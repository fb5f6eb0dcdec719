"""ModelInfo and the ``@register`` decorator that the family modules use.

Kept apart from :mod:`tfresnet.models.registry` (which imports the family modules to fill
the registry) so that the registry imports the families and the families import
this module: no import cycle.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

_REGISTRY: dict[str, "ModelInfo"] = {}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the rest of the package needs to know about a registered model.

    Attributes:
      name: registry name, e.g. ``"resnet20"``.
      builder: the public builder; called with keyword arguments only.
      family: ``"resnet"``, ``"resnet_cifar"``, ``"alexnet"`` or ``"mobilenet_v1"``.
      paper: the paper and variant the builder follows.
      input_shape: the paper's input shape (H, W, C).
      min_side: the smallest square input side the network accepts.
      small_side: a small side used by fast tests and quick exports.
      recipe: name of the training recipe in ``tfresnet.training.recipes``.
      int8: True when the model converts to a full-integer TFLite model.
      int8_note: why not, when ``int8`` is False.
      extra_args: extra builder keywords (e.g. ``alpha``) the CLIs may pass.
      small_kwargs: builder keywords of the small model that fast tests build (e.g.
        ``{"alpha": 0.25}`` where the default width has tens of millions of weights).
      imagenet: the keras.applications class whose ImageNet ``.h5`` files load into
        the model (``"ResNet50"``, ``"MobileNet"``), or ``""`` when none is published.
    """

    name: str
    builder: Callable[..., Any]
    family: str
    paper: str
    input_shape: tuple[int, int, int]
    min_side: int
    small_side: int
    recipe: str
    int8: bool = True
    int8_note: str = ""
    extra_args: tuple[str, ...] = ()
    small_kwargs: dict = dataclasses.field(default_factory=dict, hash=False, compare=False)
    imagenet: str = ""


def register(name: str, *, family: str, paper: str, input_shape, min_side: int,
             small_side: int, recipe: str, int8: bool = True, int8_note: str = "",
             extra_args: tuple[str, ...] = (), small_kwargs: dict | None = None,
             imagenet: str = ""):
    """Decorator that adds a builder to the registry under ``name``.

    Raises:
      ValueError: if ``name`` is registered already.
    """

    def decorate(builder):
        if name in _REGISTRY:
            raise ValueError(
                f"Model name {name!r} is registered twice "
                f"({_REGISTRY[name].builder.__module__} and {builder.__module__}). "
                f"Received: name={name!r}")
        _REGISTRY[name] = ModelInfo(
            name=name, builder=builder, family=family, paper=paper,
            input_shape=tuple(input_shape), min_side=min_side, small_side=small_side,
            recipe=recipe, int8=int8, int8_note=int8_note, extra_args=tuple(extra_args),
            small_kwargs=dict(small_kwargs or {}), imagenet=imagenet)
        return builder

    return decorate
