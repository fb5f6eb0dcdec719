"""What the registry knows of a model: :class:`ModelInfo` (every per-model fact) and
:class:`Multipliers` (a family's width and resolution rules). The registry itself, and
``@register``, are :mod:`tfresnet.models.registry`'s."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Multipliers:
    """A family's width and resolution multipliers (MobileNet's alpha and rho), given by
    the family module; the variant, the CLIs and the experiments read them from here.

    Attributes:
      alphas: the paper's width multipliers, widest first.
      resolutions: the paper's input sides, largest first.
      first_channels: the first layer's channels at alpha 1; every layer has
        ``int(c * alpha)`` channels, so alpha must leave this one at least one.
      res_multiple: the input side must be a multiple of this (and at least it).
      alpha_text: the alpha as written in model and file names (``1`` -> ``"1.0"``).
    """

    alphas: tuple[float, ...]
    resolutions: tuple[int, ...]
    first_channels: int
    res_multiple: int
    alpha_text: Callable[[float], str]

    def alpha_problem(self, alpha) -> str:
        """Why ``alpha`` cannot be built ("" when it can)."""
        if (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                or not math.isfinite(alpha) or int(self.first_channels * alpha) < 1):
            return (f"must be a number >= 1/{self.first_channels} (the first layer keeps a "
                    f"channel); the paper uses {', '.join(map(self.alpha_text, self.alphas))}")
        return ""

    def check_alpha(self, alpha):
        """ValueError when ``alpha`` cannot be built (``... Received: alpha=0``)."""
        if self.alpha_problem(alpha):
            raise ValueError(f"alpha {self.alpha_problem(alpha)}. Received: alpha={alpha!r}")

    def check_res(self, res, model: str = ""):
        """ValueError when ``res`` cannot be built (see :meth:`check_alpha`)."""
        if self.res_problem(res, model):
            raise ValueError(f"res {self.res_problem(res, model)}. Received: res={res!r}")

    def res_problem(self, res, model: str = "") -> str:
        """Why ``res`` cannot be built ("" when it can); ``model`` names whose rule it is."""
        if isinstance(res, bool) or not isinstance(res, int) or res < self.res_multiple \
                or res % self.res_multiple:
            return (f"must be a multiple of {self.res_multiple} and at least "
                    f"{self.res_multiple}{f' for {model}' if model else ''} (the paper uses "
                    f"{', '.join(map(str, self.resolutions))})")
        return ""


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
      augment: the training augmentation of the family (one of
        ``tfresnet.utils.flags.AUGMENTATIONS``).
      first_layer: (stride, output channels at alpha 1) of the first layer, and
      head_width: the classifier's input width at alpha 1, and
      last_conv: the channels of a last square 1x1 conv (c -> c) at alpha 1, or 0: the
        lower bound of memory :meth:`tfresnet.models.variant.ModelVariant.memory_estimate` uses.
      multipliers: the width and resolution multipliers (:class:`Multipliers`) when the
        builder takes ``alpha`` and ``res``, else None.
      family_label, plot_style: the family's legend text and (colour, marker) in plots.
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
    augment: str = "none"
    first_layer: tuple[int, int] = (1, 0)
    head_width: int = 0
    last_conv: int = 0
    multipliers: Multipliers | None = None
    family_label: str = ""
    plot_style: tuple[str, str] = ("tab:gray", "x")
