"""QAT wrapping + full-INT8 TFLite conversion of every registry model (small inputs).

One test per ``tfresnet.list_models()`` entry (the deeper twins of ``tests/helpers/twins.py``
under ``pytest -m slow``): the model becomes its QAT twin (``export.convert.qat``), takes
a training step, converts with only integer ops inside, takes raw uint8 pixels (input
scale 1/128, zero point 128) and computes what the QAT Keras model computes. A model
whose registry entry says ``int8=False`` must fail with the registry's note instead.
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfresnet
from export import convert
from export.convert import qat
from helpers.twins import DEEPER_TWIN_OF, fast_unless_in
from tfresnet import data

BATCH = 8
CLASSES = 10
# The INT8 model's probabilities differ from the QAT Keras model's by rounding: the
# converter folds BatchNorm into the conv weights before quantizing them, the QAT model
# quantizes them unfolded, and the difference adds up over depth. Measured on these
# untrained models after their one clipped step (seed 0): on average at most 0.005, but
# for resnet152 (-m slow) 0.0146 on average and 0.094 for one class probability since the
# kernels' ranges are not differentiated (tfmot's gradient; 0.0104 and 0.067 before, the
# one step landing elsewhere in 152 layers of rounding).
MAX_PROB_DIFF = 0.1
MEAN_PROB_DIFF = 0.02
SEED = 0


def small_model(name):
    info = tfresnet.model_info(name)
    side = info.small_side
    keras.utils.set_random_seed(SEED)  # the same weights every run
    shape = {"res": side} if "res" in info.extra_args else {"input_shape": (side, side, 3)}
    return tfresnet.get_model(name, classes=CLASSES, **shape, **info.small_kwargs), side


def one_training_step(qat_model, images, labels):
    """One SGD step on the QAT model (eager: tracing a deep QAT train step costs ~1 min),
    its gradient clipped to norm 1: an untrained plain-110 (no shortcuts) on random
    labels has exploding gradients (unclipped, this step sets its BatchNorm gammas to
    +-88 and folded conv weights to ~1e8, which XNNPACK refuses to prepare).

    Returns the names of the trainable tensors that received no gradient.
    """
    with tf.GradientTape() as tape:
        probs = qat_model(data.normalize(images), training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probs))
    grads = tape.gradient(loss, qat_model.trainable_weights)
    keras.optimizers.SGD(0.01, global_clipnorm=1.0).apply_gradients(zip(grads, qat_model.trainable_weights))
    return [w.path for w, g in zip(qat_model.trainable_weights, grads)
            if g is None or not np.any(g.numpy())]


# Every registry model; the deeper twins (ResNet-101/152: about 1 min of CPU each here,
# QAT wrapping and tracing of 300-500 layers) only under `pytest -m slow`.
@pytest.mark.parametrize("name", fast_unless_in(DEEPER_TWIN_OF))
def test_qat_int8_export(name):
    info = tfresnet.model_info(name)
    model, side = small_model(name)
    if not info.int8:
        with pytest.raises(ValueError, match=re.escape(info.int8_note)):
            qat.quantize_model(model)
        return

    qat_model = qat.quantize_model(model)
    assert qat.is_qat(qat_model) and not qat.is_qat(model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (BATCH, side, side, 3), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, BATCH)
    with pytest.raises(ValueError, match="never saw data"):  # untrained: [-6, 6] ranges
        convert.to_int8(qat_model, images)
    assert one_training_step(qat_model, images, labels) == []
    assert qat.untrained_ranges(qat_model) == []
    input_quantizer = qat.quantizers(qat_model)[0]
    assert qat.ranges(qat_model)[input_quantizer.name] == (-1.0, 127 / 128)

    model_bytes = convert.to_int8(qat_model, images)
    assert convert.non_integer_ops(model_bytes) == []
    io = convert.io_tensors(model_bytes)
    assert (io["input"].dtype, io["input"].scale, io["input"].zero_point) == \
        ("uint8", 1 / 128, 128)
    assert io["output"].dtype == "uint8" and io["output"].shape == (1, CLASSES)
    ops = convert.graph_ops(model_bytes)
    # Every size is known when the model is built, so no op computes one at run time
    # (Keras 3's Flatten would add SHAPE, STRIDED_SLICE and PACK; AlexNet's StaticFlatten
    # converts to the RESHAPE alone, the graph of tfmot's file).
    assert not {op.name for op in ops} & {"SHAPE", "STRIDED_SLICE", "PACK"}
    # No requantization inside: the only QUANTIZE ops are the uint8 <-> int8 ends.
    inner = [op for op in ops if op.name == "QUANTIZE"
             and op.inputs[0].name != io["input"].name
             and op.outputs[0].name != io["output"].name]
    assert inner == []
    # Raw pixel bytes in, the QAT model's probabilities (on normalized pixels) out.
    probs = convert.Runner(model_bytes).predict(images)
    expected = qat_model(data.normalize(images), training=False).numpy()
    diff = np.abs(probs - expected)
    assert diff.max() <= MAX_PROB_DIFF and diff.mean() <= MEAN_PROB_DIFF, \
        (diff.max(), diff.mean())
    assert np.all(np.abs(probs.sum(axis=1) - 1) < 0.05)  # dequantized softmax


def test_channel_pad_is_one_int8_pad_sharing_its_input_quantization():
    """The option A shortcut (resnet20's ChannelPad) becomes INT8 PAD ops whose output
    keeps the input's scale and zero point (no fake-quant of its own, no requantize)."""
    model, side = small_model("resnet20")
    pads = [layer for layer in model.layers if isinstance(layer, tfresnet.models.layers.ChannelPad)]
    qat_model = qat.quantize_model(model)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, side, side, 3), dtype=np.uint8)
    assert one_training_step(qat_model, images, rng.integers(0, CLASSES, 4)) == []
    ops = convert.graph_ops(convert.to_int8(qat_model, images))
    channel_pads = [op for op in ops if op.name == "PAD"
                    and op.outputs[0].shape[-1] > op.inputs[0].shape[-1]]
    assert len(channel_pads) == len(pads) == 2
    for op in channel_pads:
        source, padded = op.inputs[0], op.outputs[0]
        assert source.dtype == padded.dtype == "int8"
        assert (source.scale, source.zero_point) == (padded.scale, padded.zero_point)
