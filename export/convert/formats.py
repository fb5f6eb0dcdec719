"""The TFLite formats an export can write, their conversions and their graph checks.

One table, :data:`FORMATS`, says what each format is (weight and activation types, the
converter settings that make it); :func:`convert_format` converts a Keras model to it
and :func:`check_format` checks that a file's graph is what the format claims (op and
tensor types), so a float16 file cannot be shipped under the dynamic-range name:

========  =======  ===========  ==================================================
format    weights  activations  converter
========  =======  ===========  ==================================================
int8      int8     int8         full integer (``export.convert.to_int8``): QAT or PTQ
float16   float16  float32      ``supported_types = [tf.float16]``, no calibration
dynamic   int8     float32      ``Optimize.DEFAULT`` alone: dynamic range, no
                                calibration
int16x8   int8     int16        ``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_
                                WEIGHTS_INT8``, calibrated; float32 input and output
========  =======  ===========  ==================================================

float16, dynamic and int16x8 are post-training formats: they are converted from the
float model (the QAT model's learned 8-bit ranges do not apply to them) and take
float32 input, normalized ``(pixel - 128) / 128`` as the metadata says.

The format names (no TensorFlow needed) are read by the CLI's ``--formats`` flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib

# The ops that carry weights: their filter (input 1) is what "weights" means below.
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# TFLite's dynamic-range quantizer leaves weight tensors below this many elements float
# (its ``min_elements_for_weights``): a 3x3x3x8 first conv stays float32.
DYNAMIC_MIN_ELEMENTS = 1024
_INT_ACTIVATIONS = {"int8", "uint8", "int16"}


@dataclasses.dataclass(frozen=True)
class Format:
    """One TFLite format: what is stored and what is computed.

    Attributes:
      name: the ``--formats`` name and the file-name suffix (``STEM_<name>.tflite``).
      weights: the type the conv / dense weights are stored in.
      activations: the type the ops compute in.
      label: the table's label of the file.
      description: one sentence for the metadata and the model card.
      calibrated: whether the conversion needs calibration images.
    """

    name: str
    weights: str
    activations: str
    label: str
    description: str
    calibrated: bool

    def quantization(self) -> dict:
        """The models.json / results JSON description of the file's quantization."""
        return {"format": self.name, "weights": self.weights,
                "activations": self.activations, "description": self.description,
                "integer_only": self.weights in _INT_ACTIVATIONS
                and self.activations in _INT_ACTIVATIONS}


FORMATS = {f.name: f for f in (
    Format("int8", "int8", "int8", "INT8 TFLite",
           "full integer: INT8 weights (per channel) and INT8 activations", True),
    Format("float16", "float16", "float32", "float16 TFLite",
           "float16 weights (half the float32 size), dequantized to float32 when the "
           "model loads; float32 compute on the CPU, float16 on the GPU delegate", False),
    Format("dynamic", "int8", "float32", "dynamic-range TFLite",
           "dynamic-range quantization: INT8 weights, float32 activations (quantized on "
           "the fly inside the kernels), no calibration", False),
    Format("int16x8", "int8", "int16", "int16x8 TFLite",
           "16-bit activations with 8-bit weights (calibrated; float32 input and output)",
           True),
)}
DEFAULT_FORMATS = ("int8",)


class FormatMismatchError(ValueError):
    """A file's graph is not what its format claims."""


def format_names(text: str) -> list[str]:
    """``type=`` of ``--formats``: a comma-separated list of format names, or ``all``.

    Unknown names are one line that suggests the nearest name and lists the choices.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(FORMATS)
    if not names:
        raise argparse.ArgumentTypeError(f"expected format names. Received: {text!r}")
    for name in names:
        if name not in FORMATS:
            near = difflib.get_close_matches(name, FORMATS, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise argparse.ArgumentTypeError(
                f"unknown format {name!r}: {hint}choose from {', '.join(FORMATS)} or all. "
                f"Received: {text}")
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- conversion


def convert_format(model, name: str, calibration_uint8=None, io: str = "uint8") -> bytes:
    """A Keras model converted to one of :data:`FORMATS`, its graph checked.

    Args:
      model: a Keras 3 model taking normalized images (float for float16, dynamic,
        int16x8; float or QAT for int8).
      name: a key of :data:`FORMATS`.
      calibration_uint8: uint8 images [N, H, W, 3] for the calibrated formats.
      io: int8 only: its input/output type (``export.convert.to_int8``).

    Returns:
      The ``.tflite`` bytes (signature ``serving_default(image) -> probabilities``).

    Raises:
      ValueError: an unknown format, or a calibrated one without images.
      FormatMismatchError: the converted graph is not what the format claims.
    """
    import tensorflow as tf

    from export.convert import converter

    fmt = _format(name)
    if fmt.calibrated and calibration_uint8 is None:
        raise ValueError(f"the {name} conversion needs calibration images. Received: "
                         f"calibration_uint8=None")
    if name == "int8":
        tflite = converter.to_int8(model, calibration_uint8, io=io)
    else:
        tflite_converter = converter.converter_for(model)
        tflite_converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if name == "float16":
            tflite_converter.target_spec.supported_types = [tf.float16]
        elif name == "int16x8":
            tflite_converter.representative_dataset = converter.calibration_data(calibration_uint8)
            tflite_converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        tflite = converter._convert(tflite_converter)
    check_format(tflite, name)
    return tflite


def _format(name: str) -> Format:
    if name not in FORMATS:
        raise ValueError(f"unknown TFLite format: choose from {', '.join(FORMATS)}. "
                         f"Received: {name!r}")
    return FORMATS[name]


# ----------------------------------------------------------------------------- graph checks


def check_format(tflite, name: str) -> None:
    """Raises FormatMismatchError (naming the first problems) unless the graph of
    ``tflite`` (bytes or path) is what format ``name`` claims."""
    problems = format_problems(tflite, name)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise FormatMismatchError(f"the file is not a {name} model: "
                                  f"{'; '.join(problems[:3])}{more}")


def format_problems(tflite, name: str) -> list[str]:
    """What in the graph of ``tflite`` contradicts format ``name`` (empty: none).

    * int8: every op integer (``export.convert.non_integer_ops``) and no int16 tensor.
    * float16: every conv / dense weight is a float16 constant (dequantized to float32
      by a DEQUANTIZE op), every activation float32, no integer tensor but int32 shapes.
    * dynamic: every conv / dense weight of at least :data:`DYNAMIC_MIN_ELEMENTS`
      elements is INT8 (at least one is), no float16 constant, every activation float32.
    * int16x8: every activation int16 (float32 only at a QUANTIZE of the input and the
      DEQUANTIZE of the output), every conv / dense weight INT8.
    """
    from export.convert import converter

    fmt = _format(name)
    ops = converter.graph_ops(tflite)
    io = converter.io_tensors(tflite)
    boundary = {io["input"].name, io["output"].name}
    float16_dequantized = {op.outputs[0].name for op in ops if op.name == "DEQUANTIZE"
                           and op.inputs and op.inputs[0].dtype == "float16"}
    activations = [(op, t) for op in ops for t in op.inputs + op.outputs
                   if not t.constant and t.dtype != "int32"]
    weights = [(op, op.inputs[1]) for op in ops if op.name in WEIGHT_OPS and len(op.inputs) > 1]
    problems = []

    def bad_activations(allowed, where_float=()):
        for op, t in activations:
            if t.dtype not in allowed and not (t.dtype == "float32" and t.name in where_float):
                problems.append(f"{op.name} has a {t.dtype} activation ({t.name})")

    if fmt.name == "int8":
        problems += [f"{op} computes in float" for op in converter.non_integer_ops(tflite)]
        bad_activations({"int8", "uint8"}, where_float=boundary)
    elif fmt.name == "float16":
        for op, w in weights:
            if w.dtype != "float16" and w.name not in float16_dequantized:
                problems.append(f"{op.name} weight {w.name} is {w.dtype}, not float16")
        if not float16_dequantized and not any(w.dtype == "float16" for _, w in weights):
            problems.append("no float16 weight in the file")
        bad_activations({"float32"})
    elif fmt.name == "dynamic":
        for op, w in weights:
            size = _elements(w.shape)
            if w.dtype != "int8" and size >= DYNAMIC_MIN_ELEMENTS:
                problems.append(f"{op.name} weight {w.name} ({size} elements) is {w.dtype}, "
                                f"not int8")
        if not any(w.dtype == "int8" for _, w in weights):
            problems.append("no int8 weight in the file")
        if float16_dequantized:
            problems.append(f"{len(float16_dequantized)} float16 weights (a float16 file)")
        bad_activations({"float32"})
    else:  # int16x8
        for op, w in weights:
            if w.dtype != "int8":
                problems.append(f"{op.name} weight {w.name} is {w.dtype}, not int8")
        quantize_in = {op.inputs[0].name for op in ops if op.name == "QUANTIZE"}
        dequantize_out = {op.outputs[0].name for op in ops if op.name == "DEQUANTIZE"}
        bad_activations({"int16"}, where_float=(quantize_in | dequantize_out) & boundary)
    return problems


def _elements(shape) -> int:
    count = 1
    for d in shape:
        count *= max(int(d), 1)
    return count


def weight_types(tflite) -> dict:
    """``{dtype: count}`` of the conv / dense weights of a file (float16 weights that a
    DEQUANTIZE turns into float32 count as float16)."""
    from export.convert import converter

    ops = converter.graph_ops(tflite)
    f16 = {op.outputs[0].name for op in ops if op.name == "DEQUANTIZE"
           and op.inputs and op.inputs[0].dtype == "float16"}
    counts: dict = {}
    for op in ops:
        if op.name in WEIGHT_OPS and len(op.inputs) > 1:
            w = op.inputs[1]
            dtype = "float16" if w.name in f16 else w.dtype
            counts[dtype] = counts.get(dtype, 0) + 1
    return counts
