"""A trained float model with the settings its run saved: the one reader of them.

The export (:func:`export.job.plan.plan_export`), the per-layer error command
(:mod:`export.convert.int8_errors`) and the comparison (:mod:`export.compare`) take a model
from a ``tfresnet.train`` run folder, a ``.keras`` file, a ``FitResult`` or a Keras
model in memory; :func:`load_source` reads its ``config.json`` once into a
:class:`Source`: the registry model it is, its builder arguments, the data it was
trained on, its seed and validation share, its labels and its run's result.
"""

from __future__ import annotations

import dataclasses
import os

# A run that recorded none of them was trained on / validated with these (fit's defaults).
from tfresnet.utils.flags import DEFAULT_DATASET, DEFAULT_VAL_FRACTION  # noqa: F401


@dataclasses.dataclass(frozen=True)
class Source:
    """A trained float model and what its run recorded.

    Attributes:
      model: the Keras model.
      path: the run folder or file it was read from; None for a model in memory.
      name: the registry model it is (from config.json, else from the Keras model's
        name: ``resnet20``, ``mobilenet_v1_0.25_64``); None when neither says.
      model_kwargs: its builder arguments besides the input (``alpha``, ``res``).
      dataset: the data it was trained on (a ``tfresnet.data.load`` spec), or None.
      data: the loaded data itself when known (a ``FitResult``'s), else None.
      seed, val_fraction: its run's (the split it was validated on).
      labels: its class names (labels.txt), or () when not recorded.
      result: its config.json ``result`` (kept epoch, warnings), or None.
      record: its config.json as read ({} when there is none).
    """

    model: object
    path: str | None = None
    name: str | None = None
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    dataset: str | None = None
    data: object = None
    seed: int | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    labels: tuple = ()
    result: dict | None = None
    record: dict = dataclasses.field(default_factory=dict)

    @property
    def side(self) -> int:
        """The square input side of the model."""
        return int(self.model.input_shape[1])

    @property
    def warnings(self) -> list:
        """The run's warnings (``result.warnings`` of its config.json)."""
        return list((self.result or {}).get("warnings") or [])

    def describe(self) -> str:
        """The model in a sentence: ``checkpoint 'runs/a'`` or ``the Keras model 'resnet20'``."""
        return f"checkpoint {self.path!r}" if self.path else f"the Keras model {self.model.name!r}"


def load_source(model_or_run) -> Source:
    """A :class:`Source` from a run folder or model file (read without running stored
    code: :func:`tfresnet.training.checkpoint.load_run`), a ``FitResult`` (its config
    and data) or a ``keras.Model``.

    Raises:
      ValueError: a path that is no run or readable model, or another kind of object.
    """
    import keras

    from tfresnet.training import checkpoint

    if isinstance(model_or_run, (str, os.PathLike)):
        path = os.fspath(model_or_run)
        model, config, labels = checkpoint.load_run(path)
        return _with_settings(model, config, path=path, labels=labels)
    if isinstance(model_or_run, keras.Model):
        return _with_settings(model_or_run, {})
    model, config = getattr(model_or_run, "model", None), getattr(model_or_run, "config", None)
    if isinstance(model, keras.Model) and isinstance(config, dict):  # a FitResult
        return _with_settings(model, config, labels=getattr(model_or_run, "labels", ()),
                              data=getattr(model_or_run, "data", None),
                              path=getattr(model_or_run, "run_dir", None))
    raise ValueError(f"the model to export must be a keras.Model, a tfresnet.train "
                     f"FitResult, a run folder or a .keras file. "
                     f"Received: {type(model_or_run).__name__}")


def _with_settings(model, config, *, path=None, labels=(), data=None) -> Source:
    """The one reading of a run's config.json (``config``; {} when none)."""
    registry_name = config.get("model") if config.get("registry") else None
    name, kwargs = ((registry_name, dict(config.get("model_kwargs") or {}))
                    if registry_name else _variant_of(model.name, int(model.input_shape[1])))
    seed = config.get("seed")
    return Source(model=model, path=path, name=name, model_kwargs=kwargs,
                  dataset=config.get("dataset") if data is None else None, data=data,
                  seed=None if seed is None else int(seed),
                  val_fraction=float(config.get("val_fraction", DEFAULT_VAL_FRACTION)),
                  labels=tuple(str(label) for label in labels), result=config.get("result"),
                  record=config)


def _variant_of(keras_name: str, side: int) -> tuple[str | None, dict]:
    """(registry name, builder arguments) a builder's default model name says:
    ``resnet20``; ``mobilenet_v1_0.25_64`` (the variant's stem); else (None, {})."""
    from tfresnet.models import registry

    info = registry.find_model(keras_name)
    if info is None or (keras_name != info.name and info.multipliers is None):
        return None, {}
    if keras_name == info.name:
        return info.name, {}
    alpha, _, res = keras_name[len(info.name) + 1:].rpartition("_")
    try:
        value = float(alpha)
    except ValueError:
        return None, {}
    if res != str(side) or info.multipliers.alpha_text(value) != alpha:
        return None, {}
    return info.name, {"alpha": value, "res": side}
