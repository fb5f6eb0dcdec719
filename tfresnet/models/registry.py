"""One registry of every model the package builds.

The CLIs, the tests and the export read the list of models from here
(``list_models()``), so a model added to a family module with ``@register``
is trained, profiled, exported and tested without any other change.
Special cases (a model that cannot become full-INT8, its smallest input side)
live in the :class:`ModelInfo` metadata, never in an ``if`` elsewhere.
"""

from __future__ import annotations

import difflib

# The families, imported for their effect: each registers its builders.
from tfresnet.models import alexnet  # noqa: F401  (registers its models)
from tfresnet.models import mobilenet  # noqa: F401  (registers its models)
from tfresnet.models import resnet  # noqa: F401  (registers its models)
from tfresnet.models.modelinfo import _REGISTRY, ModelInfo

__all__ = ["find_model", "get_model", "list_models", "model_info"]


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
