"""One registry of every model the package builds.

The CLIs, the tests and the export read the list of models from here
(``list_models()``), so a model added to a family module with ``@register``
is trained, profiled, exported and tested without any other change.
Special cases (a model that cannot become full-INT8, its smallest input side)
live in the :class:`ModelInfo` metadata, never in an ``if`` elsewhere.
"""

from __future__ import annotations

import dataclasses
import difflib
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
      recipe: name of the training recipe in ``tfresnet.recipes``.
      int8: True when the model converts to a full-integer TFLite model.
      int8_note: why not, when ``int8`` is False.
      extra_args: extra builder keywords (e.g. ``alpha``) the CLIs may pass.
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


def register(name: str, *, family: str, paper: str, input_shape, min_side: int,
             small_side: int, recipe: str, int8: bool = True, int8_note: str = "",
             extra_args: tuple[str, ...] = ()):
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
            recipe=recipe, int8=int8, int8_note=int8_note, extra_args=tuple(extra_args))
        return builder

    return decorate


def _load_families():
    # Importing the family modules fills the registry.
    from tfresnet import alexnet, mobilenet, resnet  # noqa: F401


def list_models(family: str | None = None) -> list[str]:
    """Names of all registered models, sorted; optionally of one family."""
    _load_families()
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``.

    Raises:
      ValueError: for an unknown name, with the closest names and all choices.
    """
    _load_families()
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(
            f"Unknown model {name!r}: {hint}choose one of {', '.join(sorted(_REGISTRY))}. "
            f"Received: name={name!r}")
    return _REGISTRY[name]


def get_model(name: str, **kwargs):
    """Builds the registered model ``name`` with the builder's keyword arguments."""
    return model_info(name).builder(**kwargs)
