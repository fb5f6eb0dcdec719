"""``export.debug``: per-layer INT8 error from TensorFlow's QuantizationDebugger.

A small untrained ResNet-20 at 16x16 (the debugger converts and runs it in ~3 s): one
row per quantized conv / dense layer with finite errors, and a layer given
outlier-heavy weights is ranked worst.
"""

import json
import math

import keras
import numpy as np
import pytest
from PIL import Image

from export import convert
from export import debug as debug_command
from export.convert import int8_errors
from helpers.cli_refusal import refused
from tfresnet.models import registry

PLANTED = "conv3_block2_1_conv"


def _model(plant=False):
    keras.utils.set_random_seed(0)
    model = registry.get_model("resnet20", input_shape=(16, 16, 3), classes=10)
    if plant:
        # one weight of every output channel 100x the others: the per-channel INT8 scale
        # follows it and the other 143 weights of the channel round to 0 or +-1
        layer = model.get_layer(PLANTED)
        kernel = layer.kernel.numpy()
        kernel[1, 1, 0, :] = 100 * np.abs(kernel).max()
        layer.kernel.assign(kernel)
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.RandomState(0).randint(0, 256, (16, 16, 16, 3), np.uint8)


@pytest.fixture(scope="module")
def planted(images):
    model = _model(plant=True)
    return model, int8_errors.layer_errors(model, images)


def test_one_row_per_quantized_conv_and_dense_layer(planted):
    model, rows = planted
    weighted = [r for r in rows if r.op in int8_errors.WEIGHT_OPS]
    expected = [layer.name for layer in model.layers
                if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")]
    assert [r.layer for r in weighted] == expected
    for r in rows:
        assert math.isfinite(r.rmse) and math.isfinite(r.normalised) and r.scale > 0, r
    assert sum(r.mac_share for r in weighted) == pytest.approx(1.0)
    assert all(r.macs == 0 for r in rows if r.op not in int8_errors.WEIGHT_OPS)


def test_planted_outlier_layer_is_ranked_worst(planted, images):
    _, rows = planted
    ranked = int8_errors.worst(rows)
    assert ranked[0].layer == PLANTED and ranked[0].op == "CONV_2D"
    # far from rounding noise, while the same layer of the unplanted model is not
    assert ranked[0].normalised > 3 * int8_errors.ROUNDING_ERROR
    clean = {r.layer: r for r in int8_errors.layer_errors(_model(), images) if r.op == "CONV_2D"}
    assert clean[PLANTED].normalised < ranked[0].normalised / 3
    text = int8_errors.worst_text(rows)
    assert text.splitlines()[2].split()[0] == PLANTED


def test_report_files(planted):
    _, rows = planted
    files = int8_errors.report_files(rows, "m")
    assert set(files) == {"m_quant_debug.csv", "m_quant_debug.json", "m_quant_debug.png"}
    csv_lines = files["m_quant_debug.csv"].decode().splitlines()
    assert len(csv_lines) == len(rows) + 1 and csv_lines[0].startswith("layer,op,tensor")
    document = json.loads(files["m_quant_debug.json"])
    assert document["worst"][0] == PLANTED and len(document["layers"]) == len(rows)
    import io
    assert Image.open(io.BytesIO(files["m_quant_debug.png"])).format == "PNG"


def test_cli_bad_input(tmp_path, capsys):
    err = refused(debug_command.main, [str(tmp_path / "missing")], prog=debug_command.PROG,
                  capsys=capsys)
    assert "missing" in err
    err = refused(debug_command.main, ["x", "--images", "0"], prog=debug_command.PROG,
                  capsys=capsys)
    assert "--images" in err and "Received: 0" in err


def test_float_layers_are_float_in_the_mixed_file_and_nothing_else(images):
    from export import convert
    model = _model(plant=True)
    tflite = int8_errors.mixed_int8(model, images, [PLANTED])
    assert int8_errors.float_layers_of(tflite) == [
        PLANTED.replace("_conv", "_relu")]  # the conv + ReLU, fused, named by its ReLU
    bad = convert.non_integer_ops(tflite)
    assert [b.split()[0] for b in bad] == ["DEQUANTIZE", "CONV_2D", "QUANTIZE"]
    io = convert.io_tensors(tflite)
    assert (io["input"].dtype, io["input"].scale, io["input"].zero_point) == (
        "uint8", 1 / 128, 128)
    # it runs (the untrained planted model answers one class: what the fallback buys
    # in accuracy is not measured here)
    assert convert.Runner(tflite).predict(images).shape == (len(images), 10)
    with pytest.raises(ValueError, match="'conv9' is not a quantized conv"):
        int8_errors.mixed_int8(model, images, ["conv9"])


def test_a_float_first_layer_is_refused_not_written_with_float_io(images, caplog):
    model = _model()
    with pytest.raises(ValueError) as err:
        int8_errors.mixed_int8(model, images, ["conv1_conv", "predictions"])
    # refused from the Keras model, before anything is converted (or, in an export,
    # trained): export.convert.int8_errors.check_float_layers
    assert str(err.value).startswith("float_layers: 'conv1_conv' reads the model's input")
    assert "uint8 or int8 input" in str(err.value) and "\n" not in str(err.value)
    assert "default to the original type" not in caplog.text  # the converter's log line
    # a float classifier keeps the I/O asked for (the softmax after it is quantized)
    io = convert.io_tensors(int8_errors.mixed_int8(model, images, ["predictions"], io="int8"))
    assert (io["input"].dtype, io["output"].dtype) == ("int8", "int8")
