"""Where INT8 loses accuracy: per-layer quantization error (the library of ``python -m export.debug``).

:func:`layer_errors` runs ``tf.lite.experimental.QuantizationDebugger`` on a float
Keras model: it converts the model to post-training INT8 with the calibration images
(the conversion ``export.convert.to_int8`` does), runs the INT8 graph and, after every
quantized op, compares the op's dequantized output with the float output of the same
op. Per op (``LayerError``): the Keras layer it comes from, the op, the RMSE of that
difference, the RMSE in units of the output's quantization step (``rmse / scale``: a
perfectly rounded tensor has 1/sqrt(12) = 0.29; much more means the error is not
rounding of this op's output but comes from its weights or its inputs), and the
layer's share of the model's multiply-adds (``tfresnet.profile``). The worst layer is
the one with the largest scale-normalised error.

:func:`report_files` gives the CSV, the JSON and a PNG bar chart of one report;
``python -m export.debug RUN`` (a ``tfresnet.train`` run folder or ``.keras`` file;
:mod:`export.debug`) writes them and prints the five worst layers; ``python -m export.tflite
--debug-quantization`` writes them beside the exported files.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import re

from export.convert.formats import WEIGHT_OPS
from export.names import INPUT_NAME, OUTPUT_NAME, QUANT_DEBUG_SUFFIXES, SIGNATURE

WORST = 5               # the layers printed
DEBUG_IMAGES = 32       # images the debugger compares float and INT8 on
ROUNDING_ERROR = 1 / math.sqrt(12)  # rmse / scale of a uniformly rounded tensor


@dataclasses.dataclass(frozen=True)
class LayerError:
    """The quantization error of one quantized op of the INT8 graph.

    Attributes:
      layer: the Keras layer the op computes (its conv / dense layer when BatchNorm and
        the activation were folded into it).
      op: the TFLite op ("CONV_2D", "ADD", ...).
      tensor: the op's output tensor name in the ``.tflite``.
      rmse: root mean squared difference of the dequantized INT8 output and the float
        output.
      scale: the output's quantization step.
      normalised: ``rmse / scale``.
      max_abs_error: the largest absolute difference.
      macs: the layer's multiply-adds per image; mac_share: its fraction of the model's.
    """

    layer: str
    op: str
    tensor: str
    rmse: float
    scale: float
    normalised: float
    max_abs_error: float
    macs: int
    mac_share: float


def layer_errors(model, calibration_uint8, debug_uint8=None) -> list[LayerError]:
    """The per-op INT8 quantization error of a float Keras model, in graph order.

    Args:
      model: a float Keras 3 model taking normalized images.
      calibration_uint8: uint8 images [N, H, W, 3] that calibrate the INT8 conversion.
      debug_uint8: the images float and INT8 are compared on (default: the first
        :data:`DEBUG_IMAGES` calibration images).
    """
    import numpy as np

    import tfresnet

    if debug_uint8 is None:
        debug_uint8 = np.asarray(calibration_uint8)[:DEBUG_IMAGES]
    with _debugger(model, calibration_uint8, debug_uint8) as debugger:
        debugger.run()
        text = io.StringIO()
        debugger.layer_statistics_dump(text)
    prof = tfresnet.profile(model, print_table=False)
    macs = {row.name: row.macs for row in prof.rows}
    total = max(prof.macs, 1)
    rows = []
    for record in csv.DictReader(io.StringIO(text.getvalue())):
        layer = keras_layer(record["tensor_name"], macs)
        rmse = math.sqrt(max(float(record["mean_squared_error"]), 0.0))
        scale = float(record["scale"])
        rows.append(LayerError(
            layer=layer, op=record["op_name"], tensor=record["tensor_name"], rmse=rmse,
            scale=scale, normalised=rmse / scale if scale > 0 else float("inf"),
            max_abs_error=float(record["max_abs_error"]), macs=macs.get(layer, 0),
            mac_share=macs.get(layer, 0) / total))
    return rows


@contextlib.contextmanager
def _debugger(model, calibration_uint8, debug_uint8, options=None):
    """A QuantizationDebugger of the model's PTQ INT8 conversion, its lines hidden."""
    import warnings

    import tensorflow as tf

    from export.convert import converter
    from tfresnet.utils import quiet

    tflite_converter = converter.converter_for(model)
    tflite_converter.optimizations = [tf.lite.Optimize.DEFAULT]
    tflite_converter.representative_dataset = converter.calibration_data(calibration_uint8)
    tflite_converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with quiet.native_noise_hidden(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own tf.lite.Interpreter's deprecation
        yield tf.lite.experimental.QuantizationDebugger(
            converter=tflite_converter, debug_dataset=converter.calibration_data(debug_uint8),
            debug_options=options)


def mixed_int8(model, calibration_uint8, float_layers, io: str = "uint8") -> bytes:
    """The post-training INT8 file with ``float_layers`` (Keras layer names) left float:
    the debugger's denylist (``QuantizationDebugOptions(denylisted_nodes=...)``); a
    DEQUANTIZE before and a QUANTIZE after each. Not integer-only: an NPU or NNAPI runs
    those ops on the CPU. :func:`float_layers_of` names the float layers of a file.

    Args:
      io: "uint8" (raw pixel bytes, as the INT8 file) or "int8".

    Raises:
      ValueError: a name that is no quantized conv / dense layer of the model
        (:func:`check_float_layers`), a float layer at the input end.
    """
    if io not in ("uint8", "int8"):
        raise ValueError(f"the mixed file's input and output are uint8 or int8. "
                         f"Received: io={io!r}")
    import numpy as np
    from tensorflow.lite.python import convert as tf_convert
    from tensorflow.lite.python import util as tf_util

    from export.convert import converter
    from export.metadata.flatbuffer import set_signature

    check_float_layers(model, float_layers)
    rows = layer_errors(model, calibration_uint8)
    nodes = [r.tensor for r in rows if r.layer in float_layers and r.op in WEIGHT_OPS]
    calibration = np.asarray(calibration_uint8)
    with _debugger(model, calibration, calibration[:1]) as debugger:
        # float in and out (a QUANTIZE and a DEQUANTIZE at the ends), then the I/O type
        tflite = tf_convert.mlir_quantize(debugger.calibrated_model,
                                          denylisted_nodes=nodes)
        _check_integer_ends(tflite, float_layers, io)
        tflite = tf_util.modify_model_io_type(tflite, converter.IO_TYPES[io],
                                              converter.IO_TYPES[io])
    return set_signature(tflite, key=SIGNATURE, inputs=[INPUT_NAME],
                         outputs=[OUTPUT_NAME])


def check_float_layers(model, float_layers) -> None:
    """ValueError unless every name in ``float_layers`` is a conv / dense layer of
    ``model`` (the layers the INT8 conversion quantizes) and none of them reads the
    model's input (its input would stay float: no uint8 or int8 input). Reads the Keras
    model only, so it runs before anything is trained or converted; the mixed file's
    ends are checked again once converted (:func:`mixed_int8`)."""
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    known = [layer for layer in model.layers if isinstance(layer, kinds)]
    names = {layer.name for layer in known}
    for name in float_layers:
        if name not in names:
            raise ValueError(f"float_layers: {name!r} is not a quantized conv / dense layer "
                             f"of {model.name} (e.g. {', '.join(sorted(names)[:3])}). "
                             f"Received: float_layers={list(float_layers)}")
    inputs = {id(t) for t in model.inputs}
    first = [layer.name for layer in known if layer.name in float_layers
             and any(id(t) in inputs for t in keras.tree.flatten(layer.input))]
    if first:
        raise ValueError(f"float_layers: {first[0]!r} reads the model's input, which would "
                         f"stay float, so the file could not take uint8 or int8 input; keep "
                         f"the first conv quantized. Received: float_layers={list(float_layers)}")


def _check_integer_ends(tflite, float_layers, io):
    """ValueError unless the model's input goes into a QUANTIZE and its output comes
    out of a DEQUANTIZE: only then can the file take and give ``io`` (with a float
    layer at either end the converter would keep float32 there, with a log line)."""
    from export.convert import converter

    ends = converter.io_tensors(tflite)
    ops = converter.graph_ops(tflite)
    fed = any(op.name == "QUANTIZE" and op.inputs and op.inputs[0].name == ends["input"].name
              for op in ops)
    given = any(op.name == "DEQUANTIZE" and op.outputs
                and op.outputs[0].name == ends["output"].name for op in ops)
    if not (fed and given):
        end = "input" if not fed else "output"
        raise ValueError(f"float_layers={list(float_layers)} leaves the model's {end} "
                         f"float (a layer at the {end} end computes in float), so the mixed "
                         f"file cannot take the io={io!r} asked for; keep the first conv and "
                         f"the classifier quantized. Received: "
                         f"float_layers={list(float_layers)}")


def float_layers_of(tflite) -> list[str]:
    """The conv / dense ops of a file that compute in float, each named by the Keras
    layer its output tensor names (the last of a fused group: ``conv1_relu`` for
    ``conv1_conv`` -> BN -> ReLU)."""
    from export.convert import converter

    return [_scope_names(op.outputs[0].name.split(";")[0])[1]
            for op in converter.graph_ops(tflite)
            if op.name in WEIGHT_OPS and op.outputs[0].dtype == "float32"]


def _scope_names(path: str) -> list[str]:
    """The parts of one ``model/layer/op`` tensor path, each without the suffix
    (``conv1_conv_1``: ``_1``) that Keras 3 adds to a model's and its layers' name
    scopes when it traces them."""
    return [_KERAS_SCOPE_SUFFIX.sub("", name) for name in path.split("/")]


_KERAS_SCOPE_SUFFIX = re.compile(r"_\d+$")


def keras_layer(tensor_name: str, layers) -> str:
    """The Keras layer a TFLite tensor name comes from: of the layer names in the
    name's ``model/layer/op`` paths (``;``-joined when ops were fused), the one that
    carries multiply-adds (the conv a BatchNorm and ReLU were folded into), else the
    first. A path part is the layer's name or, as Keras 3 traces it, the name plus a
    ``_N`` suffix (:func:`_scope_names`)."""
    found = []
    for part in tensor_name.split(";"):
        for plain, name in zip(_scope_names(part), part.split("/")):
            for candidate in (plain, name):
                if candidate in layers and candidate not in found:
                    found.append(candidate)
                    break
    with_macs = [n for n in found if layers[n]]
    return (with_macs or found or [tensor_name.split(";")[0]])[0]


def worst(rows, k: int = WORST) -> list[LayerError]:
    """The ``k`` rows with the largest scale-normalised error, worst first."""
    return sorted(rows, key=lambda r: -r.normalised)[:k]


def worst_text(rows, k: int = WORST) -> str:
    """The terminal lines of the ``k`` worst layers."""
    from tfresnet.utils import tables

    body = [(r.layer, r.op, f"{r.normalised:.2f}", f"{r.rmse:.4g}", f"{100 * r.mac_share:.1f}%")
            for r in worst(rows, k)]
    return (f"The {len(body)} layers with the largest INT8 error (rmse / scale; "
            f"{ROUNDING_ERROR:.2f} is rounding alone):\n"
            + tables.table(("layer", "op", "rmse/scale", "rmse", "MACs"), body, left=2))


def report_files(rows, stem: str) -> dict:
    """``{name: bytes}``: ``STEM_quant_debug.csv``, ``.json`` and ``.png`` of a report."""
    fields = [f.name for f in dataclasses.fields(LayerError)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(dataclasses.asdict(r))
    from tfresnet.utils import fileio

    document = {"rounding_error": ROUNDING_ERROR, "worst": [r.layer for r in worst(rows)],
                "layers": [dataclasses.asdict(r) for r in rows]}
    csv_name, json_name, png_name = (stem + s for s in QUANT_DEBUG_SUFFIXES)
    return {csv_name: text.getvalue().encode(),
            json_name: fileio.to_json(document).encode(),
            png_name: bar_png(rows, stem)}


def bar_png(rows, title: str) -> bytes:
    """A bar per op, in graph order: the scale-normalised error (the rounding level
    dashed), and under it the layer's share of the MACs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = len(rows)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.28 * n + 2), 6.5),
                                      sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    worst_names = {id(r) for r in worst(rows)}
    colors = ["tab:red" if id(r) in worst_names else
              ("tab:blue" if r.op in WEIGHT_OPS else "tab:gray") for r in rows]
    top.bar(range(n), [r.normalised for r in rows], color=colors)
    top.axhline(ROUNDING_ERROR, color="black", linestyle="--", linewidth=0.8)
    top.text(n - 0.5, ROUNDING_ERROR, " rounding alone", va="bottom", ha="right", fontsize=8)
    top.set_ylabel("INT8 error, rmse / scale")
    top.set_title(f"{title}: INT8 error per op (red: the {WORST} worst; gray: ops without "
                  f"weights)", fontsize=10)
    bottom.bar(range(n), [100 * r.mac_share for r in rows], color="tab:green")
    bottom.set_ylabel("MACs (%)")
    bottom.set_xticks(range(n), [f"{r.layer} ({r.op})" for r in rows], rotation=90,
                      fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
