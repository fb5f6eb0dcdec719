"""TFLite conversion: float32 and full-INT8 conversion, graph checks, a runner.

Library (what tests and the other tools call):

* :func:`to_float32` and :func:`to_int8`: ``tf.lite.TFLiteConverter`` on the model's
  traced inference function (:func:`converter_for`); INT8 is full-integer
  (``TFLITE_BUILTINS_INT8``, per-channel weights), from a QAT model (its learned ranges)
  or a float model (post-training quantization, calibrated on the given images). The
  uint8 input has scale 1/128 and zero point 128, which is exactly the package's
  normalization ``(pixel - 128) / 128``: raw RGB bytes go straight in.
* :func:`non_integer_ops`: the ops of a converted graph that compute in float (only
  QUANTIZE/DEQUANTIZE at the model's float input/output are allowed).
* :class:`Runner`: the LiteRT interpreter (XNNPACK) behind ``.predict(images)``.

The export job that uses them is :mod:`export.job.pipeline` (``python -m export.tflite``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import schema_py_generated as schema

from export.convert import qat
from export.convert.defaults import IO_NAMES
from export.convert.latency import read_tflite
from export.metadata.flatbuffer import model_bytes, set_signature
from export.names import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from tfresnet.data import pipelines, sources
from tfresnet.utils import quiet

IO_TYPES = {name: tf.as_dtype(name) for name in IO_NAMES}  # uint8, int8, float32
# The input quantization that encodes (pixel - 128) / 128: 1/128 and 128 (uint8) or 0 (int8).
INPUT_SCALE = 1.0 / pipelines.STD
INPUT_ZERO_POINT = {"uint8": int(pipelines.MEAN), "int8": int(pipelines.MEAN) - 128}
# The signature of every converted model, serving_default(image) -> probabilities:
# SIGNATURE, INPUT_NAME, OUTPUT_NAME (export.names).

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items()
               if not k.startswith("_")}
_FLOAT_TYPES = {"float32", "float16", "float64", "bfloat16"}


class NotFullyIntegerError(ValueError):
    """The converter left ops that compute in float inside an INT8 model."""


# ----------------------------------------------------------------------------- conversion


def converter_for(model) -> tf.lite.TFLiteConverter:
    """A TFLiteConverter for the inference function of a one-input Keras model.

    Converts the model's ``call(image, training=False)`` traced once, with its variables
    frozen. The concrete function is also the converter's ``trackable_obj``: TF 2.21
    then keeps the direct conversion of the function (a ``tf.Module`` there makes it save
    and reload a SavedModel first, ~5x slower: 10 s instead of 2 s for ResNet-20 at
    16x16) and does not warn that a missing ``trackable_obj`` is deprecated. The direct
    path writes no SignatureDef; :func:`_convert` adds ``serving_default`` (input
    ``image``, output ``probabilities``).
    """
    if len(model.inputs) != 1:
        raise ValueError(f"expected a model with one image input. Received: "
                         f"{len(model.inputs)} inputs")
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=INPUT_NAME)
    function = tf.function(lambda image: model(image, training=False))
    concrete = function.get_concrete_function(spec)
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable_obj=concrete)


def to_float32(model) -> bytes:
    """The float32 TFLite model of a Keras model (no optimization).

    Args:
      model: a Keras 3 model (float or QAT).

    Returns:
      The ``.tflite`` bytes.
    """
    return _convert(converter_for(model))


def calibration_images(split, count, seed):
    """``count`` training images of ``split`` (uint8), a seeded random sample, the images a
    post-training INT8 conversion calibrates on (``python -m export.tflite``, ``export.debug``)."""
    shuffled = split.train.shuffle(min(max(count * 4, 1024), 10_000), seed=seed)
    images, _ = sources.as_numpy(shuffled, limit=count)
    return images


def calibration_data(images_uint8):
    """The representative dataset of a conversion: normalized images, one per sample.

    An extra sample, the first image with one pixel set to 0 and one to 255, anchors
    the input range at exactly ``[-1, 127/128]`` (the full pixel range), so the
    calibrated input quantization is scale 1/128, zero point 128 whatever the images.

    Args:
      images_uint8: uint8 array [N, H, W, 3] of raw pixels, N >= 1.

    Returns:
      A function yielding ``[float32 array [1, H, W, 3]]`` lists, as the converter wants.
    """
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"calibration images must be a non-empty uint8 array [N, H, W, C]. "
                         f"Received: dtype={images.dtype}, shape={images.shape}")
    anchor = images[:1].copy()
    anchor.reshape(-1)[0] = 0
    anchor.reshape(-1)[-1] = 255
    samples = np.concatenate([anchor, images])

    def generate():
        for sample in samples:
            yield [pipelines.normalize(sample[None])]

    return generate


def to_int8(model, calibration_uint8, io: str = "uint8") -> bytes:
    """The full-integer INT8 TFLite model of a QAT or float Keras model.

    A QAT model (from :func:`export.convert.qat.quantize_model`, trained) converts with its
    learned ranges (its input range is pinned to the full pixel range by its input
    quantizer); a QAT model whose ranges never saw data is refused. A float model is
    quantized after training (PTQ), its ranges calibrated on ``calibration_uint8``.
    Every op inside is INT8 (weights per channel, biases int32).

    Args:
      model: a Keras 3 model taking ``tfresnet.data.normalize``-d images.
      calibration_uint8: uint8 images [N, H, W, 3] (raw pixels) for calibration; a few
        hundred training images (QAT models use them only where no range was learned).
      io: the input and output type: "uint8" (default; what the TFLite Task Library
        and MediaPipe take: raw RGB bytes in, probability / 256 out), "int8", or
        "float32" (float in and out, QUANTIZE/DEQUANTIZE at the two ends).

    Returns:
      The ``.tflite`` bytes.

    Raises:
      ValueError: bad ``io`` or calibration images, or an untrained QAT model.
      NotFullyIntegerError: when the converter leaves float ops inside (names them).
    """
    if io not in IO_TYPES:
        raise ValueError(f"io must be one of {', '.join(IO_TYPES)}. Received: io={io!r}")
    untrained = qat.untrained_ranges(model) if qat.is_qat(model) else []
    if untrained:
        raise ValueError(f"{model.name!r} is a QAT model whose activation ranges never saw "
                         f"data ({len(untrained)} quantizers, e.g. {untrained[0]}): train it "
                         f"(fit) before converting it")
    converter = converter_for(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration_data(calibration_uint8)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = IO_TYPES[io]
    converter.inference_output_type = IO_TYPES[io]
    tflite = _convert(converter)
    bad = non_integer_ops(tflite)
    if bad:
        raise NotFullyIntegerError(
            f"{model.name!r} did not convert to a full-integer model: these ops compute "
            f"in float: {', '.join(bad)}")
    if io != "float32":
        check_input_quantization(tflite)
    return tflite


def _convert(converter) -> bytes:
    """``converter.convert()`` with the signature ``serving_default(image) ->
    probabilities`` and without the converter's lines on the terminal (its C++
    "fully_quantize: ..." line, the UserWarning about input statistics, which the fixed
    input quantization of :func:`calibration_data` makes moot); TFRESNET_TF_LOGS=1
    shows them."""
    with quiet.native_noise_hidden(), warnings.catch_warnings():
        if os.environ.get("TFRESNET_TF_LOGS") != "1":
            warnings.filterwarnings("ignore", "Statistics for quantized inputs",
                                    category=UserWarning)
        tflite = converter.convert()
    return set_signature(tflite, key=SIGNATURE, inputs=[INPUT_NAME],
                                  outputs=[OUTPUT_NAME])


def check_input_quantization(tflite) -> None:
    """Raises ValueError unless the integer input is scale 1/128, zero point 128 (uint8)
    or 0 (int8): the quantization that makes raw pixels the normalized input."""
    tensor = io_tensors(tflite)["input"]
    expected = (INPUT_SCALE, INPUT_ZERO_POINT.get(tensor.dtype))
    if tensor.dtype not in INPUT_ZERO_POINT or (tensor.scale, tensor.zero_point) != expected:
        raise ValueError(f"the INT8 model's input quantization is {tensor.dtype} scale "
                         f"{tensor.scale!r} zero point {tensor.zero_point!r}, not scale "
                         f"1/128 with zero point {expected[1]} ((pixel - 128) / 128)")


# ----------------------------------------------------------------------------- graph


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of a TFLite graph.

    Attributes:
      name: tensor name.
      dtype: "float32", "int8", "uint8", "int32", ...
      shape: the shape.
      scale, zero_point: per-tensor quantization (the first channel's for per-channel;
        None when not quantized).
      constant: True for weights/biases stored in the file.
    """

    name: str
    dtype: str
    shape: tuple
    scale: float | None
    zero_point: int | None
    constant: bool


@dataclasses.dataclass(frozen=True)
class GraphOp:
    """One operator of a TFLite graph: its name (e.g. "CONV_2D") and tensors."""

    name: str
    inputs: tuple
    outputs: tuple


def _graph(tflite):
    buf = model_bytes(read_tflite(tflite))  # ValueError unless it is a .tflite
    model = schema.Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"expected a model with one subgraph, found "
                         f"{model.SubgraphsLength()}")
    return model, model.Subgraphs(0)


def _tensor(model, subgraph, index) -> TensorInfo:
    t = subgraph.Tensors(index)
    q = t.Quantization()
    scale = zero_point = None
    if q is not None and q.ScaleLength():
        scale, zero_point = float(q.Scale(0)), int(q.ZeroPoint(0))
    buffer = model.Buffers(t.Buffer()) if t.Buffer() else None
    constant = buffer is not None and (buffer.DataLength() > 0 or buffer.Offset() > 1)
    return TensorInfo(name=t.Name().decode(), dtype=_TYPE_NAMES.get(t.Type(), str(t.Type())),
                      shape=tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else (),
                      scale=scale, zero_point=zero_point, constant=constant)


def graph_ops(tflite) -> list[GraphOp]:
    """The operators of a ``.tflite`` (bytes or path) in execution order, from its
    flatbuffer (TF's generated schema code): no interpreter, no delegate."""
    model, subgraph = _graph(tflite)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = _OP_NAMES.get(builtin, str(builtin))
        if name == "CUSTOM" and code.CustomCode():
            name = f"CUSTOM:{code.CustomCode().decode()}"
        names.append(name)
    ops = []
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        ins = tuple(_tensor(model, subgraph, j) for j in op.InputsAsNumpy() if j >= 0) \
            if op.InputsLength() else ()
        outs = tuple(_tensor(model, subgraph, j) for j in op.OutputsAsNumpy()) \
            if op.OutputsLength() else ()
        ops.append(GraphOp(names[op.OpcodeIndex()], ins, outs))
    return ops


def io_tensors(tflite) -> dict:
    """``{"input": TensorInfo, "output": TensorInfo}`` of a one-input, one-output model."""
    model, subgraph = _graph(tflite)
    if subgraph.InputsLength() != 1 or subgraph.OutputsLength() != 1:
        raise ValueError("expected a model with one input and one output")
    return {"input": _tensor(model, subgraph, subgraph.Inputs(0)),
            "output": _tensor(model, subgraph, subgraph.Outputs(0))}


def non_integer_ops(tflite) -> list[str]:
    """The ops of a ``.tflite`` that compute in float, as ``"OP (tensor)"`` strings.

    An op computes in float when any of its tensors (inputs, weights, outputs) is a
    float type. Allowed, at the model's boundary only: a QUANTIZE whose float input is
    the model's input, a DEQUANTIZE whose float output is the model's output (``io``
    "float32"). Empty for a full-integer model.
    """
    io = io_tensors(tflite)
    bad = []
    for op in graph_ops(tflite):
        floats = [t for t in op.inputs + op.outputs if t.dtype in _FLOAT_TYPES]
        if not floats:
            continue
        if op.name == "QUANTIZE" and floats == [op.inputs[0]] and \
                op.inputs[0].name == io["input"].name:
            continue
        if op.name == "DEQUANTIZE" and floats == [op.outputs[0]] and \
                op.outputs[0].name == io["output"].name:
            continue
        bad.append(f"{op.name} ({floats[0].name})")
    return bad


# ----------------------------------------------------------------------------- runner


class Runner:
    """A TFLite image classifier in the LiteRT interpreter (XNNPACK, LiteRT's default).

    ``predict`` takes raw uint8 pixels (or already normalized float32 images) and
    returns float probabilities, whatever the model's input/output types: uint8 and
    int8 models get their input quantized and their output dequantized with the
    file's own scale and zero point (a uint8 model with scale 1/128, zero point 128
    receives the pixel bytes unchanged).

    Args:
      tflite: ``.tflite`` bytes or a file path.
      threads: interpreter threads.
    """

    def __init__(self, tflite, threads: int = 1):
        with quiet.native_noise_hidden():  # "INFO: Created ... XNNPACK delegate"
            self.interpreter = Interpreter(model_content=read_tflite(tflite),
                                           num_threads=int(threads))
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.image_shape = tuple(int(d) for d in self.input["shape"][1:])
        self._batch = int(self.input["shape"][0])

    def _resize(self, batch):
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"],
                                                 [batch, *self.image_shape])
            self.interpreter.allocate_tensors()
            self._batch = batch

    def quantize_input(self, images) -> np.ndarray:
        """Images (uint8 pixels or normalized float32) as the model's input type."""
        images = np.asarray(images)
        dtype = np.dtype(self.input["dtype"])
        scale, zero_point = self.input["quantization"]
        if images.dtype == np.uint8 and dtype == np.uint8 and \
                (scale, zero_point) == (INPUT_SCALE, INPUT_ZERO_POINT["uint8"]):
            return images
        normalized = pipelines.normalize(images) if images.dtype == np.uint8 else \
            images.astype(np.float32)
        if dtype == np.float32:
            return normalized
        info = np.iinfo(dtype)
        q = np.round(normalized / scale) + zero_point
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize_output(self, values) -> np.ndarray:
        """The model's output as float32."""
        scale, zero_point = self.output["quantization"]
        if np.dtype(self.output["dtype"]) == np.float32 or scale == 0:
            return np.asarray(values, np.float32)
        return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def predict(self, images, batch_size: int = 64) -> np.ndarray:
        """Class probabilities [N, classes] of images [N, H, W, 3].

        Args:
          images: uint8 raw RGB pixels, or float32 normalized with
            ``tfresnet.data.normalize``.
          batch_size: images per ``invoke()``.
        """
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"images must be [N, {', '.join(map(str, self.image_shape))}]. "
                             f"Received: shape={images.shape}")
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = self.quantize_input(images[start:start + batch_size])
            self._resize(len(chunk))
            self.interpreter.set_tensor(self.input["index"], chunk)
            self.interpreter.invoke()
            outputs.append(self.dequantize_output(
                self.interpreter.get_tensor(self.output["index"])))
        if not outputs:
            return np.zeros((0, int(self.output["shape"][-1])), np.float32)
        return np.concatenate(outputs)
