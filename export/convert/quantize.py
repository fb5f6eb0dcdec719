"""Quantization-aware training (QAT) wrapping of any registry model with tfmot.

:func:`quantize_model` is ``tfmot.quantization.keras.quantize_model`` plus what this
package's models need:

* the project's custom layers, each with its :class:`~tfmot.quantization.keras.QuantizeConfig`
  (``CUSTOM_QUANTIZE_CONFIGS``): :class:`tfresnet.models.layers.ChannelPad` (the option A
  shortcut) appends zero channels, which are exact in any quantization whose zero point
  is an integer, so its output keeps its input's range: no fake-quant, no requantize,
  and the converter emits one INT8 ``PAD`` whose input and output share scale and zero
  point;
* the input range pinned to exactly the normalized pixel range ``[-1, 127/128]``
  (``(0 - 128) / 128`` and ``(255 - 128) / 128``), so the converted uint8 input has
  scale 1/128 and zero point 128 and takes raw RGB bytes (:func:`pin_input_range`);
* a clear ``ValueError`` for a model that cannot become full-INT8 (a registry model
  whose ``ModelInfo.int8`` is False, or any layer without an integer kernel).

Call it inside ``strategy.scope()`` when training under a tf.distribute strategy, and
load or clone a QAT model inside :func:`quantize_scope`.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot
import keras
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import (
    QuantizeLayer)

from tfresnet.data import pipelines
from tfresnet.models import layers
from tfresnet.models import registry

INPUT_MIN = float(pipelines.normalize(0))      # -1.0
INPUT_MAX = float(pipelines.normalize(255))    # 0.9921875 = 127/128


class SameRangeQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """For a layer whose output keeps its input's quantization (no weights, no fake-quant).

    Right for layers that only move or zero-pad values, such as ChannelPad: zeros are
    exactly representable (the zero point is an integer), so the output needs no range
    of its own and the converted op (PAD) takes and gives the same scale and zero point.
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


# Custom layer class -> the QuantizeConfig class its instances get.
CUSTOM_QUANTIZE_CONFIGS = {
    layers.ChannelPad: SameRangeQuantizeConfig,
}


def quantize_scope():
    """``tfmot.quantization.keras.quantize_scope`` holding the custom layers and configs.

    Use it to load (``keras.models.load_model``) or clone a QAT model.
    """
    objects = {cls.__name__: cls for cls in CUSTOM_QUANTIZE_CONFIGS}
    objects.update({cfg.__name__: cfg for cfg in CUSTOM_QUANTIZE_CONFIGS.values()})
    objects["LocalResponseNormalization"] = layers.LocalResponseNormalization
    objects["FrozenQuantizeWrapper"] = FrozenQuantizeWrapper
    return tfmot.quantization.keras.quantize_scope(objects)


class FrozenQuantizeWrapper(tfmot.quantization.keras.QuantizeWrapperV2):
    """A QuantizeWrapperV2 that honours ``trainable = False``.

    tfmot's wrapper lists the wrapped kernel among its trainable weights whatever
    ``trainable`` says (``QuantizeWrapperV2.build`` appends it to ``_trainable_weights``),
    so a frozen backbone would be fine-tuned by QAT. This one, when not trainable, has
    no trainable weights: every weight (kernel, quantizer ranges) stays as it is.
    """

    @property
    def trainable_weights(self):
        return super().trainable_weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        if self.trainable:
            return super().non_trainable_weights
        return self._dedup_weights(self._trainable_weights + self._non_trainable_weights
                                   + self.layer.weights)


def check_int8(model: keras.Model) -> None:
    """Raises ValueError when ``model`` cannot become a full-integer TFLite model.

    A registry model (found by its ``name``) whose ``ModelInfo.int8`` is False fails with
    the registry's note; a model that is not one functional model fails too. Layers
    tfmot does not know are reported by :func:`quantize_model`.
    """
    if model.name in registry.list_models():
        info = registry.model_info(model.name)
        if not info.int8:
            raise ValueError(f"{info.name} cannot be exported to full INT8: {info.int8_note}. "
                             f"Received: model={model.name!r}")
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise ValueError(f"quantize_model needs a functional tf_keras model (tfmot "
                         f"quantizes only Keras 2 functional/Sequential models). "
                         f"Received: model={type(model).__name__}")
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise ValueError(f"layer {layer.name!r} is a nested model, which tfmot cannot "
                             f"quantize; flatten it into one functional model. "
                             f"Received: model={model.name!r}")


def keep_frozen(float_model: keras.Model, qat: keras.Model) -> list[str]:
    """Makes the layers frozen in ``float_model`` frozen in its QAT model ``qat`` too.

    ``quantize_apply`` rebuilds every layer trainable and tfmot's wrapper trains its
    kernel whatever ``trainable`` says, so a backbone frozen for transfer learning would
    otherwise be fine-tuned by QAT. A frozen quantized layer becomes a
    :class:`FrozenQuantizeWrapper` (the same wrapper, honouring ``trainable``).

    Returns:
      The names of the layers frozen.
    """
    frozen = {layer.name for layer in float_model.layers
              if layer.weights and not layer.trainable}
    names = []
    for layer in qat.layers:
        inner = getattr(layer, "layer", layer)
        if inner.name in frozen:
            if type(layer) is tfmot.quantization.keras.QuantizeWrapperV2:
                layer.__class__ = FrozenQuantizeWrapper  # same state, honours trainable
            layer.trainable = False
            names.append(inner.name)
    return names


def quantize_model(model: keras.Model) -> keras.Model:
    """The QAT version of ``model``: fake-quantized weights and activations, pinned input.

    The weights are those of ``model``; train it further (a few epochs at a small
    learning rate) before converting it with ``export.convert.to_int8``.

    Args:
      model: a functional tf_keras model (any registry model with ``int8`` True).

    Returns:
      A new, uncompiled keras.Model.

    Raises:
      ValueError: for a model that cannot become full-INT8 (see :func:`check_int8`).
    """
    check_int8(model)

    def annotate(layer):
        config = CUSTOM_QUANTIZE_CONFIGS.get(type(layer))
        if config is None:
            return layer
        return tfmot.quantization.keras.quantize_annotate_layer(layer, config())

    with quantize_scope():
        annotated = keras.models.clone_model(model, clone_function=annotate)
        annotated = tfmot.quantization.keras.quantize_annotate_model(annotated)
        try:
            qat = tfmot.quantization.keras.quantize_apply(annotated)
        except RuntimeError as err:  # tfmot's "Layer x:<class> is not supported ..."
            text = " ".join(str(err).split()).split(" You can quantize")[0]
            raise ValueError(f"{model.name!r} cannot be exported to full INT8: {text} "
                             f"(no QuantizeConfig in export.convert.quantize.CUSTOM_QUANTIZE_CONFIGS)"
                             ) from None
    pin_input_range(qat)
    return qat


def input_quantize_layers(qat_model: keras.Model) -> list:
    """The QuantizeLayers that quantize the model's inputs (one per input)."""
    inputs = {t.name for t in qat_model.inputs}
    found = [layer for layer in qat_model.layers
             if isinstance(layer, QuantizeLayer) and layer.input.name in inputs]
    if not found:
        raise ValueError(f"{qat_model.name!r} is not a QAT model (no input QuantizeLayer); "
                         f"make it with export.convert.quantize.quantize_model")
    return found


def pin_input_range(qat_model: keras.Model) -> None:
    """Sets the input quantization range to exactly ``[INPUT_MIN, INPUT_MAX]``.

    tfmot's input QuantizeLayer learns the min/max of the data it sees
    (``AllValuesQuantizer``); pinned to the full normalized pixel range it stays there
    while training (normalized pixels never leave it) and converts to uint8 scale
    1/128, zero point 128: raw pixel bytes are the quantized input.
    """
    for layer in input_quantize_layers(qat_model):
        for var in layer.weights:
            if var.name.endswith("_min:0"):
                var.assign(np.float32(INPUT_MIN))
            elif var.name.endswith("_max:0"):
                var.assign(np.float32(INPUT_MAX))


def input_range(qat_model: keras.Model) -> tuple[float, float]:
    """The (min, max) of the first input QuantizeLayer."""
    layer = input_quantize_layers(qat_model)[0]
    values = {v.name.rsplit("_", 1)[-1]: float(v.numpy()) for v in layer.weights
              if v.name.endswith(("_min:0", "_max:0"))}
    return values["min:0"], values["max:0"]


def is_qat(model: keras.Model) -> bool:
    """True for a model made by :func:`quantize_model` (it holds QuantizeWrappers)."""
    return any(isinstance(layer, (tfmot.quantization.keras.QuantizeWrapper, QuantizeLayer))
               for layer in model.layers)
