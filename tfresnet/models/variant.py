"""A model variant: registry name, width multiplier and input side, in one place.

Train, export, compare, the experiments and the benchmarks take a
:class:`ModelVariant`; it checks its values once (:meth:`ModelVariant.check`), names
itself (:attr:`ModelVariant.stem`, e.g. ``mobilenet_v1_0.75_160``) and builds the model
(:meth:`ModelVariant.build`). Nobody else re-checks alpha or the input side.

:meth:`ModelVariant.check` also refuses what cannot fit in this machine's memory
before anything is allocated: a lower bound of the memory the model needs (its
classifier and, for MobileNet, its last pointwise convolution from Table 1, plus
the input batch and the first layer's output), in float32, against the machine's
physical memory (or its cgroup limit).
"""

from __future__ import annotations

import dataclasses
import os

from tfresnet.models import registry

GIB = 2.0 ** 30


def machine_memory() -> int:
    """Bytes of memory this process may use: physical memory or the cgroup limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


@dataclasses.dataclass(frozen=True)
class ModelVariant:
    """A registry model with its builder's arguments and input side.

    Attributes:
      name: registry name (``resnet20``, ``mobilenet_v1``).
      alpha: MobileNet width multiplier (None: the builder's default 1.0).
      res: input side (None: the paper's input, ``ModelInfo.input_shape``). For
        MobileNet it is the builder's ``res``; for the others the square input side.
    """

    name: str
    alpha: float | None = None
    res: int | None = None

    @property
    def info(self):
        return registry.model_info(self.name)

    @property
    def side(self) -> int:
        """The square input side the model is built at."""
        return self.res if self.res is not None else self.info.input_shape[0]

    @property
    def stem(self) -> str:
        """File-name stem: ``mobilenet_v1_0.75_160``, ``resnet20_32``."""
        rule = self.info.multipliers
        if rule is not None:
            return f"{self.name}_{rule.alpha_text(1.0 if self.alpha is None else self.alpha)}_{self.side}"
        return f"{self.name}_{self.side}"

    def builder_kwargs(self) -> dict:
        """The builder's keyword arguments for this variant's architecture and side."""
        if "res" in self.info.extra_args:
            return {"alpha": 1.0 if self.alpha is None else float(self.alpha),
                    "res": int(self.side)}
        return {"input_shape": (self.side, self.side, 3)}

    def model_kwargs(self) -> dict:
        """:meth:`builder_kwargs` without the input shape (``alpha``, ``res`` for
        MobileNet; nothing for the others): ``tfresnet.train.fit``'s ``model_kwargs``."""
        kwargs = self.builder_kwargs()
        kwargs.pop("input_shape", None)
        return kwargs

    def build(self, *, classes: int, **kwargs):
        """The Keras model (call :meth:`check` first)."""
        return registry.get_model(self.name, classes=classes, **self.builder_kwargs(),
                                  **kwargs)

    def check(self, *, classes: int = 1000, batch: int = 1) -> "ModelVariant":
        """Returns self when the variant can be built here; else ValueError in the API's
        words (``model``, ``alpha``, ``res``, ``classes``, ``batch_size``: ``Received:
        alpha=0``), which a command line says in its flags (:func:`tfresnet.utils.cli.flag_words`).

        Args:
          classes, batch: the classifier's classes and the images per step, for the
            memory estimate.
        """
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"model must name a model: "
                             f"{', '.join(registry.list_models())}. Received: model={self.name!r}")
        try:
            info = self.info
        except ValueError as err:
            raise ValueError(f"model: {err}") from None
        rule = info.multipliers
        if self.alpha is not None:
            if rule is None:
                takes = ", ".join(dict.fromkeys(  # the families with a width multiplier
                    registry.model_info(n).family for n in registry.list_models()
                    if registry.model_info(n).multipliers is not None))
                raise ValueError(f"alpha applies to {takes} only. Received: "
                                 f"model={self.name}, alpha={self.alpha}")
            rule.check_alpha(self.alpha)
        side = self.side
        if isinstance(side, bool) or not isinstance(side, int):
            raise ValueError(f"res must be an integer. Received: res={side!r}")
        if rule is not None:
            rule.check_res(side, model=self.name)
        if side < info.min_side:
            raise ValueError(f"res must be at least {info.min_side} for "
                             f"{self.name}. Received: res={side}")
        for key, value in (("classes", classes), ("batch_size", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer. Received: "
                                 f"{key}={value!r}")
        self.check_memory(classes=classes, batch=batch)
        return self

    def memory_estimate(self, *, classes: int = 1000, batch: int = 1) -> tuple[int, int]:
        """(weights, activations): a lower bound of the float32 bytes each needs.

        Weights: the classifier (``ModelInfo.head_width`` x classes) and a last square
        1x1 convolution (``ModelInfo.last_conv``: MobileNet's Table 1 1x1x1024x1024), at
        ``int(c * alpha)`` channels. Activations: the input batch and the first layer's
        output (``ModelInfo.first_layer``).
        """
        info = self.info
        # Every layer of a width-multiplied family has int(c * alpha) channels.
        scale = 1.0 if info.multipliers is None or self.alpha is None else float(self.alpha)
        weights = int(info.head_width * scale) * classes + classes
        weights += int(info.last_conv * scale) ** 2  # a last c -> c 1x1 conv (MobileNet's)
        stride, channels = info.first_layer
        first = (self.side // stride) ** 2 * int(channels * scale)
        activations = batch * (self.side ** 2 * 3 + first)
        return 4 * weights, 4 * activations

    def check_memory(self, *, classes: int = 1000, batch: int = 1) -> None:
        """ValueError when :meth:`memory_estimate` exceeds this machine's memory (in the
        API's words, see :meth:`check`)."""
        weights, activations = self.memory_estimate(classes=classes, batch=batch)
        have = machine_memory()
        if weights + activations <= have:
            return
        if weights >= activations:
            given = [("alpha", self.alpha), ("classes", classes)]
            what = "its weights"
        else:
            given = [("res", self.side), ("batch_size", batch)]
            what = f"{batch} input image(s) of {self.side}x{self.side}x3 and the first layer"
        given = [f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                 for name, value in given if value is not None]
        raise ValueError(
            f"{self.stem} cannot fit in this machine's memory: {what} alone need at least "
            f"{(weights + activations) / GIB:,.1f} GiB (float32) and the machine has "
            f"{have / GIB:,.1f} GiB. Received: {', '.join(given)}")


def check_input_memory(side: int, batch: int) -> None:
    """ValueError when one batch of ``side`` x ``side`` RGB float32 images alone cannot
    fit in this machine's memory (for jobs whose model is chosen later), in the API's
    words (``image_size``)."""
    need, have = 4 * batch * side * side * 3, machine_memory()
    if need > have:
        raise ValueError(f"`image_size` {side} cannot fit in this machine's memory: {batch} "
                         f"image(s) of {side}x{side}x3 alone need {need / GIB:,.1f} GiB "
                         f"(float32) and the machine has {have / GIB:,.1f} GiB. "
                         f"Received: image_size={side}")
