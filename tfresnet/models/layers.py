"""The layers no standard Keras layer provides, and a Flatten with a static graph.

All are serializable (``tfresnet>ChannelPad``, ``tfresnet>LocalResponseNormalization``,
``tfresnet>StaticFlatten``), so saved models load in safe mode. Their quantization rules
live with the export code (``export/convert/qat.py``: ChannelPad and StaticFlatten keep
their input's range; LRN has no integer kernel). BatchNormalization on TF's fused kernel
is in :mod:`tfresnet.models.batchnorm`.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfresnet")
class ChannelPad(keras.layers.Layer):
    """Appends ``pad`` all-zero channels: the parameter-free option A shortcut.

    ResNet paper, Sec. 3.3 (A): "the shortcut still performs identity mapping, with
    extra zero entries padded for increasing dimensions". The new channels are
    appended after the existing ones. Converts to a single TFLite PAD op.
    """

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(pad, int) or pad < 0:
            raise ValueError(f"pad must be a non-negative integer. Received: pad={pad!r}")
        self.pad = pad

    def call(self, inputs):
        return tf.pad(inputs, [[0, 0], [0, 0], [0, 0], [0, self.pad]])

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[-1] = None if shape[-1] is None else shape[-1] + self.pad
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="tfresnet")
class StaticFlatten(keras.layers.Flatten):
    """``keras.layers.Flatten`` that reshapes to ``(-1, n)`` when the sizes after the
    batch are known, as tf_keras' Flatten did.

    Keras 3's Flatten reshapes to ``(batch, -1)`` with the batch size read at run time,
    which puts three int32 ops (SHAPE, STRIDED_SLICE, PACK) before the RESHAPE of every
    TFLite file of the model; this one converts to the RESHAPE alone, the graph the
    tf_keras release (and tfmot's INT8 file) had. Same outputs, same config.
    """

    def call(self, inputs):
        sizes = tuple(inputs.shape[1:])
        if self.data_format == "channels_first" or not all(isinstance(d, int) for d in sizes):
            return super().call(inputs)
        return tf.reshape(inputs, (-1, math.prod(sizes)))


@keras.saving.register_keras_serializable(package="tfresnet")
class LocalResponseNormalization(keras.layers.Layer):
    """AlexNet's local response normalization across channels (paper Sec. 3.3).

    b = a / (k + alpha * sum_{j in n neighbours} a_j^2) ** beta with the paper's
    k=2, n=5, alpha=1e-4, beta=0.75; ``tf.nn.local_response_normalization`` with
    ``depth_radius=(n-1)/2`` computes exactly this (alpha is not divided by n).
    """

    def __init__(self, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4,
                 beta: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
            beta=self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius,
                "bias": self.bias, "alpha": self.alpha, "beta": self.beta}
