"""Keras 3 quantization-aware training (export.convert.qat) on models written here.

Not registry models: a user's own Keras 3 model of the supported layers goes through
``quantize_model``, trains, converts to a full-INT8 file (``to_int8`` checks every op)
and agrees with its QAT Keras model; the scheme puts its fake-quants where tfmot's
default 8-bit scheme does; unsupported layers are refused by name; frozen layers stay
frozen while their ranges follow the data; two replicas learn one device's ranges.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from export.convert import qat
from export.convert.converter import Runner, graph_ops, io_tensors, to_int8
from tfresnet.data import pipelines

L = keras.layers


@pytest.fixture(scope="module")
def digits():
    """sklearn's digits as 16x16 RGB uint8 pixels: (train x, train y, held-out x, y)."""
    d = load_digits()
    images = np.kron(d.images / 16.0 * 255.0, np.ones((2, 2)))
    images = np.repeat(images[..., None], 3, axis=-1).round().astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], d.target[order]
    return images[:1400], labels[:1400], images[1400:], labels[1400:]


def user_model(classes=10):
    """A model a user might write: every supported layer type, MobileNet and ResNet
    patterns (Conv -> BN -> ReLU6, depthwise, Add -> ReLU), padding, pooling, dropout."""
    inputs = keras.Input((16, 16, 3), name="pixels")
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(6.0, name="stem_relu")(x)
    shortcut = x
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.ReLU(6.0, name="dw_relu")(x)
    x = L.Conv2D(16, 1, use_bias=False, name="pw")(x)
    x = L.BatchNormalization(name="pw_bn")(x)
    x = L.Add(name="add")([x, shortcut])
    x = L.ReLU(name="add_relu")(x)
    x = L.ZeroPadding2D(1, name="pad")(x)
    x = L.Conv2D(32, 3, strides=2, activation="relu", name="conv_relu")(x)
    x = L.MaxPooling2D(name="max_pool")(x)
    x = L.AveragePooling2D(1, name="avg_pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dropout(0.1, name="dropout")(x)
    outputs = L.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="user_model")


def compile_(model, lr):
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])


@pytest.fixture(scope="module")
def trained(digits):
    """(float model, trained QAT model): 8 float epochs, then 2 QAT epochs."""
    x, y, _, _ = digits
    keras.utils.set_random_seed(0)
    model = user_model()
    compile_(model, 3e-3)
    model.fit(pipelines.normalize(x), y, epochs=8, batch_size=32, verbose=0)
    q = qat.quantize_model(model)
    compile_(q, 3e-4)
    q.fit(pipelines.normalize(x), y, epochs=2, batch_size=32, verbose=0)
    return model, q


def test_fake_quants_where_the_scheme_puts_them():
    """One fake-quant after each Conv -> BN -> ReLU group and after Add -> ReLU, none
    between them, none after padding / max pooling / dropout / flatten, the softmax's
    input quantized inside the Dense, the input pinned."""
    q = qat.quantize_model(user_model())
    names = [layer.name for layer in q.layers if isinstance(layer, qat.ActivationQuantizer)]
    assert names == ["pixels_quantizer", "stem_relu_quantizer", "dw_relu_quantizer",
                     "pw_bn_quantizer", "add_relu_quantizer", "conv_relu_quantizer",
                     "avg_pool_quantizer"]
    wrapped = {layer.layer.name: layer for layer in q.layers
               if isinstance(layer, qat.QuantizeWeights)}
    assert sorted(wrapped) == ["conv_relu", "dw", "predictions", "pw", "stem"]
    assert wrapped["predictions"].pre_activation is not None
    assert wrapped["stem"].pre_activation is None
    assert q.get_layer("pixels_quantizer").fixed_range == qat.INPUT_RANGE


def test_weights_copied_and_the_float_model_left_alone(digits):
    model = user_model()
    q = qat.quantize_model(model)
    before = [w.copy() for w in model.get_weights()]
    assert q.count_params() - model.count_params() == 3 * 7 + 3  # min, max, seen per quantizer
    np.testing.assert_array_equal(q.get_layer("quant_stem").layer.get_weights()[0],
                                  model.get_layer("stem").get_weights()[0])
    compile_(q, 1e-2)
    q.fit(pipelines.normalize(digits[0][:64]), digits[1][:64], epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_user_model_converts_to_full_int8_and_agrees(trained, digits):
    """The acceptance figure: all ops INT8 (to_int8 raises otherwise), uint8 input at
    scale 1/128 zero point 128, top-1 agreement with the QAT Keras model >= 99%, and an
    accuracy that had to be learned."""
    model, q = trained
    _, _, x_test, y_test = digits
    tflite = to_int8(q, x_test[:8])
    ops = {op.name for op in graph_ops(tflite)}
    # BatchNorm folded into the convolutions (no MUL), every op INT8 (to_int8 checked);
    # Keras 3's Flatten reads the batch size at run time (int32 SHAPE, STRIDED_SLICE, PACK).
    assert ops - {"SHAPE", "STRIDED_SLICE", "PACK"} == {
        "QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D",
        "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}
    image = io_tensors(tflite)["input"]
    assert (image.dtype, image.scale, image.zero_point) == ("uint8", 1 / 128, 128)
    int8_top1 = Runner(tflite).predict(x_test).argmax(1)
    keras_top1 = q.predict(pipelines.normalize(x_test), verbose=0).argmax(1)
    assert (int8_top1 == keras_top1).mean() >= 0.99
    assert (int8_top1 == y_test).mean() >= 0.85


def test_ranges_follow_the_data(trained):
    """Trained ranges are the data's, not tfmot's [-6, 6] placeholders: ReLU outputs
    start at 0, the input keeps the pixel range."""
    _, q = trained
    ranges = qat.ranges(q)
    assert ranges["pixels_quantizer"] == qat.INPUT_RANGE
    for name in ("stem_relu_quantizer", "dw_relu_quantizer", "add_relu_quantizer"):
        low, high = ranges[name]
        assert low == 0.0 and 0.1 < high != 6.0
    assert qat.untrained_ranges(q) == []
    assert qat.untrained_ranges(qat.quantize_model(user_model())) != []


@pytest.mark.parametrize("layer, words", [
    (L.LayerNormalization(name="ln"), "layer 'ln' (LayerNormalization) cannot be quantized"),
    (L.Conv2D(8, 3, activation="tanh", name="c"), "built-in activation 'tanh'"),
    (L.ReLU(negative_slope=0.1, name="leaky"), "layer 'leaky' (ReLU)"),
    (L.DepthwiseConv2D(3, depth_multiplier=2, name="dw2"), "depth_multiplier 2"),
])
def test_unsupported_layer_refused_by_name(layer, words):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, L.GlobalAveragePooling2D()(layer(inputs)))
    with pytest.raises(ValueError, match=r"^[^\n]+$") as err:
        qat.quantize_model(model)
    assert words in str(err.value)


@pytest.mark.parametrize("bad", [(1.0, -1.0), (0.0, 0.0), (-1.0, float("inf")), (1.0,), "ab",
                                 (0.5, 1.5)])
def test_input_range_checked(bad):
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3)])
    with pytest.raises(ValueError, match=r"^input_range must be .* Received: input_range="):
        qat.quantize_model(model, input_range=bad)


def test_softmax_activation_layer_converts_like_a_softmax_dense(digits):
    """Dense -> Activation("softmax") (keras.applications' head) is Dense(activation=
    "softmax") to the converter: the softmax's input quantized, its output left to the
    converter (1/256), the same ops; a fake-quant after the softmax would leave a float
    DEQUANTIZE / QUANTIZE pair, refused by to_int8."""
    x, y = digits[0][:256], digits[1][:256]

    def build(separate):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((16, 16, 3))
        h = L.GlobalAveragePooling2D()(L.ReLU()(L.Conv2D(8, 3)(inputs)))
        if separate:
            return keras.Model(inputs, L.Activation("softmax", name="probs")(L.Dense(10)(h)))
        return keras.Model(inputs, L.Dense(10, activation="softmax")(h))

    found = []
    for separate in (False, True):
        q = qat.quantize_model(build(separate))
        compile_(q, 1e-3)
        q.fit(pipelines.normalize(x), y, epochs=1, verbose=0)
        tflite = to_int8(q, x[:8])
        found.append(sorted(op.name for op in graph_ops(tflite)))
        assert io_tensors(tflite)["output"].scale == 1 / 256
    assert found[0] == found[1]
    assert not qat.output_quantized(build(True))["probs"]


def test_nested_model_and_subclassed_model_refused():
    inner = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3)], name="inner")
    inputs = keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match="layer 'inner' .* a nested model"):
        qat.quantize_model(keras.Model(inputs, inner(inputs)))
    with pytest.raises(ValueError, match="needs a Keras 3 model"):
        qat.quantize_model(object())


def test_sequential_model_accepted():
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, use_bias=False),
                              L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(3)])
    q = qat.quantize_model(model)
    assert qat.is_qat(q) and not qat.is_qat(model)
    x = np.zeros((2, 8, 8, 3), np.float32)
    assert q.predict(x, verbose=0).shape == (2, 3)


def test_frozen_layers_stay_frozen_while_their_ranges_learn(digits):
    """A frozen stem (transfer learning's frozen backbone): its kernel and BatchNorm do
    not move in QAT, its activation range does; the head trains."""
    x, y, _, _ = digits
    model = user_model()
    for name in ("stem", "stem_bn"):
        model.get_layer(name).trainable = False
    q = qat.quantize_model(model)
    stem = q.get_layer("quant_stem")
    assert not stem.trainable and not stem.layer.trainable
    assert all("stem" not in w.path for w in q.trainable_weights)
    kernel = stem.layer.kernel.numpy().copy()
    bn = [w.copy() for w in q.get_layer("stem_bn").get_weights()]
    head = q.get_layer("quant_predictions").layer.kernel.numpy().copy()
    compile_(q, 1e-2)
    q.fit(pipelines.normalize(x[:256]), y[:256], epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(stem.layer.kernel.numpy(), kernel)
    for a, b in zip(bn, q.get_layer("stem_bn").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(q.get_layer("quant_predictions").layer.kernel.numpy(), head)
    low, high = qat.ranges(q)["stem_relu_quantizer"]
    assert (low, high) != (-6.0, 6.0) and low == 0.0


def test_saved_and_loaded_in_safe_mode(trained, tmp_path, digits):
    _, q = trained
    path = tmp_path / "qat.keras"
    q.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    x = pipelines.normalize(digits[2][:32])
    np.testing.assert_allclose(loaded.predict(x, verbose=0), q.predict(x, verbose=0),
                               atol=1e-6)
    assert qat.ranges(loaded) == qat.ranges(q)


def _ranges_after_one_step(strategy, images, labels):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        inputs = keras.Input((16, 16, 3), name="image")
        x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
        x = L.ReLU(name="relu")(x)
        x = L.GlobalAveragePooling2D(name="pool")(x)
        outputs = L.Dense(10, activation="softmax", name="out")(x)
        q = qat.quantize_model(keras.Model(inputs, outputs))
        q.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    q.fit(images, labels, batch_size=len(images), epochs=1, shuffle=False, verbose=0)
    return qat.ranges(q)


def test_two_replicas_learn_one_devices_ranges(digits):
    """MirroredStrategy on the two logical CPUs (tests/conftest.py) and one device see
    the same global batch: the ranges agree (the global min/max, not the mean of the
    replicas' own)."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2
    # Make the two halves of the batch differ in range, so averaging would show.
    images = pipelines.normalize(digits[0][:64]).copy()
    images[32:] *= 0.25
    labels = digits[1][:64]
    one = _ranges_after_one_step(tf.distribute.OneDeviceStrategy(devices[0]), images, labels)
    two = _ranges_after_one_step(tf.distribute.MirroredStrategy(devices), images, labels)
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_int8_file_holds_tfmots_weight_scales(digits):
    """The converted file, read back by LiteRT: a Conv2D kernel per output channel
    (quantized dimension 0 of TFLite's OHWI filter), a depthwise kernel per channel
    (dimension 3 of its 1HWC filter), each scale max|w| / 127 with zero point 0 (symmetric,
    narrow range), and the Dense kernel per-tensor (tfmot's default 8-bit scheme). One
    channel of each kernel is made 10x larger, so one shared scale would show."""
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(x)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(10, activation="softmax", name="dense")(x)
    model = keras.Model(inputs, outputs)
    conv, conv_bias = model.get_layer("conv").get_weights()       # (h, w, in, out)
    conv[..., 2] *= 10.0
    model.get_layer("conv").set_weights([conv, conv_bias])
    dw, dw_bias = model.get_layer("dw").get_weights()              # (h, w, channels, 1)
    dw[:, :, 5] *= 10.0
    model.get_layer("dw").set_weights([dw, dw_bias])
    q = qat.quantize_model(model)
    q.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")  # ranges only
    q.fit(pipelines.normalize(digits[0][:64]), digits[1][:64], epochs=1, verbose=0)
    interpreter = Interpreter(model_content=to_int8(q, digits[0][:8]))
    constants = {}
    for t in interpreter.get_tensor_details():
        if t["dtype"] == np.int8 and len(t["shape"]) in (2, 4):
            try:
                constants[tuple(t["shape"])] = (t["quantization_parameters"],
                                                interpreter.get_tensor(t["index"]))
            except ValueError:  # an activation: no data before invoke
                pass

    def check(kernel, axis):
        """``kernel`` in TFLite's layout; its scales along ``axis``, values to half a step."""
        params, values = constants[kernel.shape]
        channels = kernel.shape[axis]
        moved = np.moveaxis(kernel, axis, 0).reshape(channels, -1)
        assert params["quantized_dimension"] == axis
        np.testing.assert_allclose(params["scales"], np.abs(moved).max(1) / 127, rtol=1e-5)
        assert not params["zero_points"].any()
        assert values.min() >= -127 and np.abs(values).max() == 127   # narrow range
        shape = [1] * kernel.ndim
        shape[axis] = channels
        steps = params["scales"].reshape(shape)
        assert (np.abs(values * steps - kernel) <= steps / 2 + 1e-7).all()
        return params["scales"]

    scales = check(np.transpose(conv, (3, 0, 1, 2)), 0)           # OHWI
    assert scales[2] > 5 * np.delete(scales, 2).max()
    scales = check(np.transpose(dw, (3, 0, 1, 2)), 3)             # 1HWC
    assert scales[5] > 5 * np.delete(scales, 5).max()
    dense = model.get_layer("dense").get_weights()[0]             # (in, out); TFLite (out, in)
    params, values = constants[(10, 8)]
    assert len(params["scales"]) == 1                             # per-tensor
    step = params["scales"][0]
    np.testing.assert_allclose(step, np.abs(dense).max() / 127, rtol=1e-5)
    assert (np.abs(values.T * step - dense) <= step / 2 + 1e-7).all()
