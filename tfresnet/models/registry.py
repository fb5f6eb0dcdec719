"""One registry of every model the package builds.

The CLIs, the tests and the export read the list of models from here
(``list_models()``). The family modules (:mod:`tfresnet.models.families`) add their
builders with ``@register``, and this module imports every one of them, so a model
added to a family, or a new family module, is built, trained, profiled, exported,
tested and reached as ``tfresnet.NAME`` without any other change.
Special cases (a model that cannot become full-INT8, its smallest input side)
live in the :class:`ModelInfo` metadata, never in an ``if`` elsewhere.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from tfresnet.models.modelinfo import ModelInfo

__all__ = ["find_model", "get_model", "list_models", "model_info", "register"]

FAMILIES = "tfresnet.models.families"  # the package whose every module is a family

_REGISTRY: dict[str, ModelInfo] = {}


def register(name: str, *, family: str, paper: str, input_shape, min_side: int,
             small_side: int, recipe: str, int8: bool = True, int8_note: str = "",
             extra_args: tuple[str, ...] = (), small_kwargs: dict | None = None,
             imagenet: str = "", **facts):
    """Decorator that adds a builder to the registry under ``name``.

    ``facts`` are the other :class:`ModelInfo` fields (``augment``, ``first_layer``,
    ``head_width``, ``last_conv``, ``multipliers``, ``family_label``, ``plot_style``).

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
            small_kwargs=dict(small_kwargs or {}), imagenet=imagenet, **facts)
        return builder

    return decorate


def _import_families():
    """Imports every module of :data:`FAMILIES` (each registers its models) by name: the
    families sit above this module (they import ``register``), so no import line names
    them (import-linter's layers in pyproject.toml)."""
    package = importlib.import_module(FAMILIES)
    for module in pkgutil.iter_modules(package.__path__, FAMILIES + "."):
        importlib.import_module(module.name)


def list_models(family: str | None = None) -> list[str]:
    """Names of all registered models, sorted; optionally of one family."""
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``.

    Raises:
      ValueError: for an unknown name, with the closest names and all choices.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(
            f"Unknown model {name!r}: {hint}choose one of {', '.join(sorted(_REGISTRY))}. "
            f"Received: name={name!r}")
    return _REGISTRY[name]


def find_model(model_name: str) -> "ModelInfo | None":
    """The registry model a built model's name comes from (``"mobilenet_v1_0.25_64"`` ->
    mobilenet_v1, ``"resnet20"`` -> resnet20), or None. The longest matching name wins."""
    if not isinstance(model_name, str):
        return None
    matches = [n for n in _REGISTRY if model_name == n or model_name.startswith(f"{n}_")]
    return _REGISTRY[max(matches, key=len)] if matches else None


def get_model(name: str, **kwargs):
    """Builds the registered model ``name`` with the builder's keyword arguments."""
    return model_info(name).builder(**kwargs)


_import_families()  # last: a family module imports register from here
