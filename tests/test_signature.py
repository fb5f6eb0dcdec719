"""Converted files carry the named signature serving_default(image) -> probabilities.

Read and run through LiteRT 2's CompiledModel API (what ``benchmark_litert_model`` and
the Android CompiledModel use) and the Interpreter's signature runner, before and after
the metadata is embedded.
"""

import numpy as np
import pytest
from ai_edge_litert.compiled_model import CompiledModel
from ai_edge_litert.interpreter import Interpreter

from export import convert, metadata
from tfresnet import data, get_model

SIGNATURES = {"serving_default": {"inputs": ["image"], "outputs": ["probabilities"]}}
SIDE, CLASSES = 16, 5


@pytest.fixture(scope="module")
def files():
    model = get_model("resnet20", input_shape=(SIDE, SIDE, 3), classes=CLASSES)
    images = np.random.default_rng(0).integers(0, 256, (8, SIDE, SIDE, 3), dtype=np.uint8)
    int8 = convert.to_int8(model, images)
    with_metadata = metadata.add_metadata(
        int8, name="resnet20", description="test", version="1", author="tests",
        labels=[f"class {i}" for i in range(CLASSES)], mean=data.MEAN, std=data.STD)
    return {"float32": convert.to_float32(model), "int8": int8,
            "int8 + metadata": with_metadata}, model, images


def _run_compiled(model_bytes, image):
    """One image through CompiledModel.run_by_name, by signature and tensor names."""
    compiled = CompiledModel.from_buffer(model_bytes)
    assert compiled.get_signature_list() == SIGNATURES
    inputs = {"image": compiled.create_input_buffer_by_name("serving_default", "image")}
    outputs = {"probabilities":
               compiled.create_output_buffer_by_name("serving_default", "probabilities")}
    inputs["image"].write(image.reshape(-1))
    compiled.run_by_name("serving_default", inputs, outputs)
    dtype = image.dtype
    return outputs["probabilities"].read(CLASSES, dtype)


@pytest.mark.parametrize("kind", ["float32", "int8", "int8 + metadata"])
def test_signature_through_compiled_model_and_interpreter(files, kind):
    files, model, images = files
    model_bytes = files[kind]
    assert Interpreter(model_content=model_bytes).get_signature_list() == SIGNATURES
    runner = convert.Runner(model_bytes)
    expected = runner.predict(images[:1])[0]
    image = runner.quantize_input(images[:1])
    got = runner.dequantize_output(np.asarray(_run_compiled(model_bytes, image))[None])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The signature runner of the Interpreter names the same tensors.
    signature = Interpreter(model_content=model_bytes).get_signature_runner("serving_default")
    out = signature(image=image)["probabilities"]
    np.testing.assert_allclose(runner.dequantize_output(out)[0], expected, atol=1e-5)
    if kind == "float32":  # and it computes what the Keras model computes
        keras_probs = model.predict(data.normalize(images[:1]), verbose=0)[0]
        np.testing.assert_allclose(got, keras_probs, atol=1e-4)
