"""The TFLite formats (``export.formats``): each converts for MobileNet v1 and
ResNet-20, its graph is what it claims, and each check fails on the other formats' files.

Untrained models at 32x32 (a conversion takes 1-3 s): the graph's types, not accuracy,
are tested here; the export test below measures accuracy on trained ones.
"""

import argparse

import numpy as np
import pytest

from export import convert, formats
from tfresnet import registry

MODELS = {"mobilenet_v1": dict(alpha=0.25), "resnet20": {}}


@pytest.fixture(scope="module", params=list(MODELS))
def converted(request):
    """{format: bytes} and the float32 file of one untrained model at 32x32."""
    model = registry.get_model(request.param, input_shape=(32, 32, 3), classes=10,
                               **MODELS[request.param])
    calibration = np.random.RandomState(0).randint(0, 256, (8, 32, 32, 3), np.uint8)
    files = {name: formats.convert_format(model, name, calibration) for name in formats.FORMATS}
    return request.param, files, convert.to_float32(model)


def test_each_check_passes_on_its_format_and_fails_on_the_others(converted):
    _, files, float32 = converted
    for name, tflite in files.items():
        assert formats.format_problems(tflite, name) == []
        for other in formats.FORMATS:
            if other != name:
                with pytest.raises(formats.FormatMismatchError, match=f"not a {other} model"):
                    formats.check_format(tflite, other)
    for name in formats.FORMATS:  # nor is the plain float32 file any of them
        assert formats.format_problems(float32, name)


def test_float16_is_half_the_float32_size(converted):
    _, files, float32 = converted
    assert formats.weight_types(files["float16"]) == {
        "float16": formats.weight_types(float32)["float32"]}
    assert abs(len(files["float16"]) / (len(float32) / 2) - 1) < 0.05


def test_dynamic_has_int8_weights_and_float_activations(converted):
    name, files, float32 = converted
    tflite = files["dynamic"]
    ops = convert.graph_ops(tflite)
    activations = {t.dtype for op in ops for t in op.inputs + op.outputs
                   if not t.constant and t.dtype != "int32"}
    assert activations == {"float32"}
    big = [op.inputs[1] for op in ops if op.name in formats.WEIGHT_OPS
           and np.prod(op.inputs[1].shape) >= formats.DYNAMIC_MIN_ELEMENTS]
    assert big and {w.dtype for w in big} == {"int8"}
    # the small ones (the 3x3x3 first conv, ResNet-20's 64x10 classifier) stay float
    small = {op.inputs[1].dtype for op in ops if op.name in formats.WEIGHT_OPS} - {"int8"}
    assert small == {"float32"}
    assert len(tflite) < 0.4 * len(float32)


def test_int16x8_activations_are_int16(converted):
    _, files, _ = converted
    ops = convert.graph_ops(files["int16x8"])
    computing = [op for op in ops if op.name not in ("QUANTIZE", "DEQUANTIZE")]
    assert {t.dtype for op in computing for t in op.outputs} == {"int16"}
    assert {op.inputs[1].dtype for op in computing if op.name in formats.WEIGHT_OPS} == {"int8"}
    io = convert.io_tensors(files["int16x8"])
    assert (io["input"].dtype, io["output"].dtype) == ("float32", "float32")


def test_int8_is_todays_full_integer_file(converted):
    _, files, _ = converted
    assert convert.non_integer_ops(files["int8"]) == []
    assert convert.io_tensors(files["int8"])["input"].dtype == "uint8"


def test_format_names_flag_type():
    assert formats.format_names("int8,float16") == ["int8", "float16"]
    assert formats.format_names("all") == list(formats.FORMATS)
    with pytest.raises(argparse.ArgumentTypeError,
                       match=r"unknown format 'flot16': did you mean 'float16'\? .*"
                             r"Received: int8,flot16"):
        formats.format_names("int8,flot16")
    with pytest.raises(ValueError, match="Received: 'int4'"):
        formats.convert_format(None, "int4")
