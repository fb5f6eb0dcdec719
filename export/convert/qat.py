"""Quantization-aware training (QAT) of Keras 3 models that convert to full-INT8 TFLite.

:func:`quantize_model` takes a Keras 3 functional model (any model of the layers in
:data:`SCHEME`, registry model or not) and returns its QAT twin: the same layers and
weights, with fake-quantization where the TFLite converter will quantize. Train it a
little (``model.fit``), then convert it with :func:`export.convert.converter.to_int8`:
the converter sees ``FakeQuantWithMinMaxVars`` / ``...PerChannel`` ops and takes its
quantization-aware path (no representative data), giving a file in which every op is
INT8.

The scheme is tfmot's default 8-bit scheme, which the converter expects
(tensorflow/model-optimization, ``python/core/quantization/keras/default_8bit/``:
``default_8bit_quantize_registry.py`` for the layers, ``default_8bit_quantizers.py``
and ``quantizers.py`` for the quantizers, ``default_8bit_transforms.py`` for where the
fake-quants go; ``quant_ops.py: MovingAvgQuantize`` for the range updates):

* **weights**: Conv2D and DepthwiseConv2D kernels per output channel (axis 3 and 2),
  Dense kernels per tensor (a per-channel Dense kernel fails in the converter); symmetric,
  narrow range (-127..127), the range being ``max |w|`` of the current kernel
  (tfmot's ``LastValueQuantizer``). Biases are left to the converter (int32).
* **activations**: per tensor, asymmetric, 8 bits, the range an exponential moving
  average (decay 0.999) of the batch min and max, widened to hold 0 (tfmot's
  ``MovingAverageQuantizer``).
* **where**: one fake-quant after each group the converter fuses into one op: Conv2D /
  DepthwiseConv2D / Dense -> BatchNormalization -> ReLU / ReLU6 (never between them),
  Add -> ReLU, and after every other layer that computes new values (pooling by
  average, Add, ReLU, ...). Layers that only move or select values (padding, max
  pooling, dropout, reshape, :class:`tfresnet.models.layers.ChannelPad`) keep their
  input's range and get none. Softmax's input is quantized, its output is not (the
  converter fixes it at scale 1/256). BatchNormalization is not folded while training:
  with per-channel kernels the converter's folding is exact.
* **input**: the range pinned to the normalized pixel range ``[-1, 127/128]``, so the
  uint8 input has scale 1/128 and zero point 128 and takes raw RGB bytes.

Where this goes beyond tfmot (and why):

* A range starts from the first training batch's min and max instead of tfmot's fixed
  ``[-6, 6]``: with decay 0.999 a short fine-tune (tens of steps) otherwise ends with
  ranges still near ``[-6, 6]``, wasting half the codes of a ReLU6 output.
* Under a ``tf.distribute`` strategy the batch min and max are those of the global
  batch (``ReplicaContext.all_gather``), so several replicas learn the ranges one
  device would; tfmot averages the replicas' own min and max, which is narrower.
* Frozen layers (``trainable = False``) keep their weights frozen, while their
  activation ranges still follow the data: the quantizers are layers of their own,
  updated whenever the model trains (tfmot's wrapper trains a frozen kernel anyway).

Refused with one line naming the layer and its type: a layer not in :data:`SCHEME` (for
a registry model whose ``ModelInfo.int8`` is False, with the registry's note: AlexNet's
LocalResponseNormalization), a nested model, a layer called more than once, an
activation the converter cannot fuse.
Build the QAT model inside ``strategy.scope()`` when training under a strategy.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfresnet.data import pipelines
from tfresnet.models import layers, registry

EMA_DECAY = 0.999  # tfmot MovingAverageQuantizer's ema_decay
NUM_BITS = 8
INPUT_RANGE = (float(pipelines.normalize(0)), float(pipelines.normalize(255)))  # [-1, 127/128]
_INITIAL_RANGE = (-6.0, 6.0)  # tfmot's initial min and max, used only before any data


# ----------------------------------------------------------------------------- the scheme


@dataclasses.dataclass(frozen=True)
class Role:
    """How one Keras layer type is quantized.

    Attributes:
      kernel_axis: the per-channel axis of the kernel's fake-quant; None for per-tensor;
        ``False`` for a layer without a kernel.
      output: "compute" (new values: a fake-quant follows unless the next layer fuses
        with it), "keep" (the output keeps its input's range: no fake-quant) or "free"
        (the converter fixes the output range itself: softmax).
      fuses_into: layer types that the converter fuses with this one when they are its
        only consumer; no fake-quant goes between the two.
    """

    kernel_axis: int | None | bool = False
    output: str = "compute"
    fuses_into: tuple = ()


_RELUS = (keras.layers.ReLU, keras.layers.Activation)  # Activation: relu and relu6 only
_FUSED_CONV = (keras.layers.BatchNormalization, *_RELUS)

# Layer type -> its role (tfmot default_8bit_quantize_registry.py, _LAYER_QUANTIZE_INFO,
# and its Conv/Depthwise handling; the fusions are default_8bit_transforms.py's).
SCHEME: dict[type, Role] = {
    keras.layers.Conv2D: Role(kernel_axis=3, fuses_into=_FUSED_CONV),
    keras.layers.DepthwiseConv2D: Role(kernel_axis=2, fuses_into=_FUSED_CONV),
    keras.layers.Dense: Role(kernel_axis=None, fuses_into=_FUSED_CONV),
    keras.layers.BatchNormalization: Role(fuses_into=_RELUS),
    keras.layers.Add: Role(fuses_into=_RELUS),
    keras.layers.ReLU: Role(),
    keras.layers.Activation: Role(),
    keras.layers.AveragePooling2D: Role(),
    keras.layers.GlobalAveragePooling2D: Role(),
    keras.layers.Concatenate: Role(),
    keras.layers.MaxPooling2D: Role(output="keep"),
    keras.layers.GlobalMaxPooling2D: Role(output="keep"),
    keras.layers.ZeroPadding2D: Role(output="keep"),
    keras.layers.Dropout: Role(output="keep"),
    keras.layers.SpatialDropout2D: Role(output="keep"),
    keras.layers.Flatten: Role(output="keep"),
    keras.layers.Reshape: Role(output="keep"),
    keras.layers.Softmax: Role(output="free"),
    layers.ChannelPad: Role(output="keep"),  # zero channels: exact at any integer zero point
}

# Activations the converter fuses into the op before them (post-quantized, tfmot's
# QuantizeAwareActivation._POST_QUANT_ACTIVATIONS plus relu6), and softmax (its input
# quantized, its output fixed by the converter).
_FUSED_ACTIVATIONS = ("linear", "relu", "relu6")
_FREE_ACTIVATIONS = ("softmax",)


def register_keep_range(layer_class: type) -> type:
    """Declares a custom layer that only moves, pads or selects values: its output
    keeps its input's quantization (no fake-quant, no requantization), as zero padding
    does when the zero point is an integer. Returns the class (usable as a decorator)."""
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise ValueError(f"register_keep_range takes a Keras 3 layer class. Received: "
                         f"layer_class={layer_class!r}")
    SCHEME[layer_class] = Role(output="keep")
    return layer_class


def _role(layer) -> Role | None:
    for cls in type(layer).__mro__:
        if cls in SCHEME:
            return SCHEME[cls]
    return None


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", type(activation).__name__)


def _relu_kind(layer) -> str | None:
    """"relu" or "relu6" for a layer the converter can fuse as an activation, else None."""
    if isinstance(layer, keras.layers.ReLU):
        if float(layer.negative_slope) or float(layer.threshold):
            return None
        if layer.max_value is None:
            return "relu"
        return "relu6" if float(layer.max_value) == 6.0 else None
    if isinstance(layer, keras.layers.Activation):
        name = _activation_name(layer)
        return name if name in ("relu", "relu6") else None
    return None


# ----------------------------------------------------------------------------- quantizers


@keras.saving.register_keras_serializable(package="tfresnet")
class ActivationQuantizer(keras.layers.Layer):
    """Per-tensor asymmetric 8-bit fake-quantization with a moving-average range.

    While training, the range is updated from the batch's min and max (widened to hold
    0): set to them on the first batch, then ``range = decay * range + (1 - decay) *
    batch`` (tfmot ``quant_ops.MovingAvgQuantize``). Under a ``tf.distribute`` strategy
    the batch is the global batch: every replica's min and max are gathered first.
    Outside training the stored range is used as it is. ``fixed_range=(low, high)``
    pins the range (the model's input) and never updates it.

    Args:
      decay: the moving average's decay.
      fixed_range: None, or the (low, high) range to keep.
    """

    def __init__(self, decay: float = EMA_DECAY, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must be in [0, 1). Received: decay={decay!r}")
        self.decay = float(decay)
        self.fixed_range = None if fixed_range is None else tuple(float(v) for v in fixed_range)
        self.supports_masking = True

    def build(self, input_shape):
        low, high = self.fixed_range or _INITIAL_RANGE
        self.range_min = self.add_weight(
            name="range_min", shape=(), initializer=keras.initializers.Constant(low),
            trainable=False, dtype="float32", aggregation="mean")
        self.range_max = self.add_weight(
            name="range_max", shape=(), initializer=keras.initializers.Constant(high),
            trainable=False, dtype="float32", aggregation="mean")
        self.seen = self.add_weight(
            name="seen", shape=(), initializer="zeros", trainable=False,
            dtype="float32", aggregation="mean")
        self.built = True

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        if training and self.fixed_range is None:
            self._update_range(x)
        # TF's op directly (what keras.quantizers.fake_quant_with_min_max_vars calls on
        # this backend, less its reshapes): one op forward, one backward.
        return ops.cast(tf.quantization.fake_quant_with_min_max_vars(
            x, self.range_min, self.range_max, num_bits=NUM_BITS), inputs.dtype)

    def _update_range(self, x):
        batch_min = tf.minimum(tf.reduce_min(x), 0.0)
        batch_max = tf.maximum(tf.reduce_max(x), 0.0)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            batch_min = tf.reduce_min(context.all_gather(tf.reshape(batch_min, [1]), axis=0))
            batch_max = tf.reduce_max(context.all_gather(tf.reshape(batch_max, [1]), axis=0))
        # range -= (1 - decay') * (range - batch), decay' = decay once a batch was seen
        # and 0 before: the first batch sets the range (tfmot's assign_moving_average).
        rate = 1.0 - self.decay * self.seen
        self.range_min.assign_sub((self.range_min - batch_min) * rate)
        self.range_max.assign_sub((self.range_max - batch_max) * rate)
        self.seen.assign(1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "decay": self.decay, "fixed_range": self.fixed_range}


def _abs_max(k, axis):
    """``max |k|`` over ``axis`` as the larger of max and -min (two reads of the kernel,
    no copy of it), at least 1e-8 so that an all-zero channel still has a range."""
    return ops.maximum(ops.maximum(ops.max(k, axis=axis), -ops.min(k, axis=axis)), 1e-8)


def _kernel_fake_quant(kernel, axis):
    """Symmetric, narrow-range fake-quant of a kernel from its current values: per
    channel along ``axis``, or per tensor when ``axis`` is None.

    The range is not differentiated: tfmot's ``LastValueQuantizer`` assigns it to a
    variable before the fake-quant reads it, so the kernel's gradient is the
    straight-through estimator's alone (and the backward pass stays as short as
    tfmot's). TF's ops are called directly, the per-channel axis moved last (the only
    axis TF's op takes) by a reshape when every axis after it has size 1 (a depthwise
    kernel ``(h, w, c, 1)`` is ``(h, w, 1, c)`` in the same memory order), else by a
    transpose.
    """
    k = ops.cast(kernel, "float32")
    if axis is None:
        bound = ops.stop_gradient(_abs_max(k, None))
        out = tf.quantization.fake_quant_with_min_max_vars(
            k, -bound, bound, num_bits=NUM_BITS, narrow_range=True)
        return ops.cast(out, kernel.dtype)
    shape = tuple(k.shape)
    last = len(shape) - 1
    if axis == last:
        moved, restore = k, lambda t: t  # noqa: E731
    elif all(size == 1 for size in shape[axis + 1:]):
        moved = ops.reshape(k, (*shape[:axis], *shape[axis + 1:], shape[axis]))
        restore = lambda t: ops.reshape(t, shape)  # noqa: E731
    else:
        moved = ops.swapaxes(k, axis, last)
        restore = lambda t: ops.swapaxes(t, axis, last)  # noqa: E731
    bound = ops.stop_gradient(_abs_max(moved, tuple(range(last))))
    out = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        moved, -bound, bound, num_bits=NUM_BITS, narrow_range=True)
    return ops.cast(restore(out), kernel.dtype)


def _conv(layer, x, kernel):
    return layer.convolution_op(x, kernel)


def _depthwise(layer, x, kernel):
    return ops.depthwise_conv(x, kernel, strides=layer.strides, padding=layer.padding,
                              dilation_rate=layer.dilation_rate,
                              data_format=layer.data_format)


def _dense(layer, x, kernel):
    return ops.matmul(x, kernel)


_KERNEL_OPS = {keras.layers.Conv2D: _conv, keras.layers.DepthwiseConv2D: _depthwise,
               keras.layers.Dense: _dense}


@keras.saving.register_keras_serializable(package="tfresnet")
class QuantizeWeights(keras.layers.Wrapper):
    """Runs a Conv2D, DepthwiseConv2D or Dense layer with its kernel fake-quantized.

    The wrapped layer keeps its own variables (and its ``trainable``): the wrapper
    adds none but, for a softmax layer, the quantizer of the softmax's input (tfmot
    ``QuantizeWrapperV2`` with ``QuantizeAwareActivation``).
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self._op = next(op for cls, op in _KERNEL_OPS.items() if isinstance(layer, cls))
        self._axis = _role(layer).kernel_axis
        self.activation_name = _activation_name(layer)
        self.pre_activation = (ActivationQuantizer(name="pre_activation_quantizer")
                               if self.activation_name in _FREE_ACTIVATIONS else None)

    def build(self, input_shape=None):
        super().build(input_shape)
        if self.pre_activation is not None:
            self.pre_activation.build(None)
        self.built = True

    def call(self, inputs, training=None):
        layer = self.layer
        y = self._op(layer, inputs, _kernel_fake_quant(layer.kernel, self._axis))
        if layer.use_bias:
            y = ops.add(y, layer.bias)
        if self.pre_activation is not None:
            y = self.pre_activation(y, training=training)
        return layer.activation(y)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


# ----------------------------------------------------------------------------- the model


def _refuse(layer, why):
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be quantized "
                     f"to INT8: {why}. Supported: {', '.join(sorted(c.__name__ for c in SCHEME))}")


def _registry_note(model) -> str:
    """For a registry model whose ``ModelInfo.int8`` is False, the registry's reason
    (``int8_note``: what to export instead); else ""."""
    if model.name not in registry.list_models():
        return ""
    info = registry.model_info(model.name)
    return "" if info.int8 else f"{info.name} has no full-INT8 export: {info.int8_note}"


def _single_inputs(layer) -> list:
    x = layer.input
    return list(x) if isinstance(x, (list, tuple)) else [x]


def check_model(model) -> None:
    """Raises ValueError (one line naming the layer and its type) unless every layer of
    ``model`` can be quantized by this scheme."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"quantize_model needs a Keras 3 model (keras.Model). "
                         f"Received: model={type(model).__module__}.{type(model).__name__}")
    if not hasattr(model, "_run_through_graph") or not model.inputs:
        raise ValueError(f"quantize_model needs a functional or Sequential Keras model, not "
                         f"a subclassed one. Received: model={model.name!r}")
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            _refuse(layer, "a nested model; build one flat functional model")
        role = _role(layer)
        if role is None:
            note = _registry_note(model)
            _refuse(layer, note or "no rule for this layer type in export.convert.qat.SCHEME "
                                   "(register_keep_range declares a custom layer that "
                                   "only moves values)")
        if len(layer._inbound_nodes) != 1:
            _refuse(layer, f"called {len(layer._inbound_nodes)} times; the scheme needs "
                           f"each layer called once")
        activation = _activation_name(layer)
        if isinstance(layer, keras.layers.Activation):
            if activation not in _FUSED_ACTIVATIONS + _FREE_ACTIVATIONS:
                _refuse(layer, f"activation {activation!r}; use relu, relu6 or softmax")
        elif role.kernel_axis is not False:
            if activation not in _FUSED_ACTIVATIONS + _FREE_ACTIVATIONS:
                _refuse(layer, f"built-in activation {activation!r}; use relu, relu6, "
                               f"softmax or a separate ReLU layer")
            if isinstance(layer, keras.layers.DepthwiseConv2D) and layer.depth_multiplier != 1:
                _refuse(layer, f"depth_multiplier {layer.depth_multiplier}; per-channel "
                               f"kernels need depth_multiplier 1")
        elif isinstance(layer, keras.layers.ReLU) and _relu_kind(layer) is None:
            _refuse(layer, "a ReLU with a slope, threshold or max_value other than 6")


def _consumers(model) -> dict:
    """Layer name -> the layers that take its output."""
    producer = {}
    for layer in model.layers:
        producer[id(layer.output)] = layer.name
    found = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in _single_inputs(layer):
            name = producer.get(id(tensor))
            if name is not None:
                found[name].append(layer)
    return found


def output_quantized(model) -> dict[str, bool]:
    """Layer name -> whether a fake-quant follows its output in the QAT model."""
    consumers = _consumers(model)
    outputs = {id(t) for t in model.outputs}
    decided = {}
    for layer in model.layers:
        role = _role(layer)
        if role is None or role.output != "compute":
            decided[layer.name] = False
            continue
        if _activation_name(layer) in _FREE_ACTIVATIONS:
            # softmax: its output fixed by the converter; its input quantized inside the
            # wrapper (Dense(activation="softmax")) or after the layer before it
            decided[layer.name] = False
            continue
        after = consumers[layer.name]
        fused = (len(after) == 1 and id(layer.output) not in outputs
                 and isinstance(after[0], role.fuses_into)
                 and _activation_name(layer) == "linear"
                 and (not isinstance(after[0], _RELUS) or _relu_kind(after[0]) is not None))
        decided[layer.name] = not fused
    return decided


def quantize_model(model, *, input_range=INPUT_RANGE, decay: float = EMA_DECAY):
    """The QAT twin of ``model``: the same layers and weights, fake-quantized.

    Kernels of Conv2D, DepthwiseConv2D and Dense run fake-quantized
    (:class:`QuantizeWeights`), an :class:`ActivationQuantizer` follows each output the
    converter quantizes (see the module docstring) and one pins the input range. The
    weights are copied from ``model`` (which is left as it was), and each layer keeps
    its ``trainable``. Train the result a little before converting it.

    Args:
      model: a Keras 3 functional (or Sequential) model of the layers in
        :data:`SCHEME`, taking ``tfresnet.data.normalize``-d images.
      input_range: the (low, high) input range; the default makes the uint8 input the
        raw pixels.
      decay: the activation ranges' moving-average decay.

    Returns:
      A new, uncompiled ``keras.Model`` with the same name.

    Raises:
      ValueError: one line naming the first layer that cannot be quantized, or the bad
        ``input_range``.
    """
    if isinstance(model, keras.Sequential):
        model = _as_functional(model)
    check_model(model)
    input_range = _checked_range(input_range)
    quantized = output_quantized(model)
    originals = {layer.name: layer for layer in model.layers}
    names = [t._keras_history[0].name for t in model.inputs]  # the InputLayers' names
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=name)
              for t, name in zip(model.inputs, names)]
    quantized_input = {id(t): ActivationQuantizer(fixed_range=input_range,
                                                  name=f"{name}_quantizer")(t)
                       for t, name in zip(inputs, names)}

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        if _role(layer).kernel_axis is not False:
            return QuantizeWeights(copy, name=f"quant_{layer.name}", trainable=layer.trainable)
        return copy

    def call(layer, *args, **kwargs):
        args = keras.tree.map_structure(
            lambda t: quantized_input.get(id(t), t), args)
        out = layer(*args, **kwargs)
        name = getattr(layer, "layer", layer).name
        if quantized.get(name):
            out = ActivationQuantizer(decay=decay, name=f"{name}_quantizer")(out)
        return out

    given = inputs if isinstance(model.input, (list, tuple)) else inputs[0]
    qat = keras.models.clone_model(model, input_tensors=given, clone_function=clone,
                                   call_function=call)
    outputs = qat.outputs if isinstance(model.output, (list, tuple)) else qat.outputs[0]
    qat = keras.Model(given, outputs, name=model.name)  # the float model's structure
    for layer in qat.layers:
        target = layer.layer if isinstance(layer, QuantizeWeights) else layer
        source = originals.get(target.name)
        if source is not None and source.weights:
            target.set_weights(source.get_weights())
            target.trainable = source.trainable
    return qat


def _checked_range(input_range) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in input_range)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not (np.isfinite(low) and np.isfinite(high) and low <= 0.0 <= high and low < high):
        raise ValueError(f"input_range must be two finite numbers (low, high) with low <= 0 "
                         f"<= high, low < high (TF's fake-quant moves a range to hold 0). "
                         f"Received: input_range={input_range!r}")
    return low, high


def _as_functional(model):
    if not model.built or not model.inputs:
        raise ValueError(f"quantize_model needs a built Sequential model (give it an "
                         f"Input). Received: model={model.name!r}")
    return keras.Model(model.inputs, model.outputs, name=model.name)


# ----------------------------------------------------------------------------- inspection


def quantizers(model) -> list[ActivationQuantizer]:
    """Every activation quantizer of a QAT model, the input's first."""
    found = [layer for layer in model.layers if isinstance(layer, ActivationQuantizer)]
    for layer in model.layers:
        if isinstance(layer, QuantizeWeights) and layer.pre_activation is not None:
            found.append(layer.pre_activation)
    return found


def is_qat(model) -> bool:
    """True for a model made by :func:`quantize_model`."""
    return isinstance(model, keras.Model) and any(
        isinstance(layer, (ActivationQuantizer, QuantizeWeights)) for layer in model.layers)


def ranges(model) -> dict[str, tuple[float, float]]:
    """Quantizer name -> its (min, max): what the converter will use."""
    return {q.name: (float(q.range_min.numpy()), float(q.range_max.numpy()))
            for q in quantizers(model)}


def untrained_ranges(model) -> list[str]:
    """The quantizers whose range never saw data (the model was not trained after
    :func:`quantize_model`): converting then would use tfmot's placeholder [-6, 6]."""
    return [q.name for q in quantizers(model)
            if q.fixed_range is None and float(np.asarray(q.seen.numpy())) == 0.0]
