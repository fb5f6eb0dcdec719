"""Converted files carry the named signature serving_default(image) -> probabilities.

Read and run through LiteRT 2's CompiledModel API (what ``benchmark_litert_model`` and
the Android CompiledModel use) and the Interpreter's signature runner, before and after
the metadata is embedded.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
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


# One image through CompiledModel.run_by_name, by signature and tensor names, in a child
# process: LiteRT's accelerator registry prints "INFO: ... DestroyAccelerator" lines when
# its process exits, which pytest would show after its summary.
RUN_COMPILED = """
import json, sys
import numpy as np
from ai_edge_litert.compiled_model import CompiledModel

model_path, image_path, out_path, classes = sys.argv[1:5]
image = np.load(image_path)
compiled = CompiledModel.from_buffer(open(model_path, "rb").read())
inputs = {"image": compiled.create_input_buffer_by_name("serving_default", "image")}
outputs = {"probabilities":
           compiled.create_output_buffer_by_name("serving_default", "probabilities")}
inputs["image"].write(image.reshape(-1))
compiled.run_by_name("serving_default", inputs, outputs)
np.save(out_path, np.asarray(outputs["probabilities"].read(int(classes), image.dtype)))
print(json.dumps(compiled.get_signature_list()))
"""


def _run_compiled(model_bytes, image, folder):
    """(signature list, output) of CompiledModel on ``image``, run in a child process."""
    model, image_file, out = folder / "model.tflite", folder / "image.npy", folder / "out.npy"
    model.write_bytes(model_bytes)
    np.save(image_file, image)
    done = subprocess.run([sys.executable, "-c", RUN_COMPILED, str(model), str(image_file),
                           str(out), str(CLASSES)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1]), np.load(out)


@pytest.mark.parametrize("kind", ["float32", "int8", "int8 + metadata"])
def test_signature_through_compiled_model_and_interpreter(files, kind, tmp_path):
    files, model, images = files
    model_bytes = files[kind]
    assert Interpreter(model_content=model_bytes).get_signature_list() == SIGNATURES
    runner = convert.Runner(model_bytes)
    expected = runner.predict(images[:1])[0]
    image = runner.quantize_input(images[:1])
    signatures, compiled_out = _run_compiled(model_bytes, image, tmp_path)
    assert signatures == SIGNATURES
    got = runner.dequantize_output(compiled_out[None])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The signature runner of the Interpreter names the same tensors.
    signature = Interpreter(model_content=model_bytes).get_signature_runner("serving_default")
    out = signature(image=image)["probabilities"]
    np.testing.assert_allclose(runner.dequantize_output(out)[0], expected, atol=1e-5)
    if kind == "float32":  # and it computes what the Keras model computes
        keras_probs = model.predict(data.normalize(images[:1]), verbose=0)[0]
        np.testing.assert_allclose(got, keras_probs, atol=1e-4)
