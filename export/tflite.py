"""TFLite export: float32 and full-INT8 conversion, graph checks, a runner, and the CLI.

Library (what tests and the other tools call):

* :func:`to_float32` and :func:`to_int8`: ``tf.lite.TFLiteConverter.from_keras_model``;
  INT8 is full-integer (``TFLITE_BUILTINS_INT8``, per-channel weights), from a QAT model
  (its learned ranges) or a float model (post-training quantization, calibrated on the
  given images). The uint8 input has scale 1/128 and zero point 128, which is exactly
  the package's normalization ``(pixel - 128) / 128``: raw RGB bytes go straight in.
* :func:`non_integer_ops`: the ops of a converted graph that compute in float (only
  QUANTIZE/DEQUANTIZE at the model's float input/output are allowed).
* :class:`Runner`: the LiteRT interpreter (XNNPACK) behind ``.predict(images)``.

Conversion traces the Keras model once and freezes it (:func:`converter_for`).

CLI, ``python -m export.tflite`` (the product's main job; ``--help`` for the flags):
model (trained here on the bundled digits unless ``--checkpoint``) -> quantization-aware
fine-tuning -> verified full-INT8 ``.tflite`` with metadata, beside a float32 and a
post-training INT8 baseline, ``labels.txt``, a ``models.json`` manifest and a results
JSON in ``android_demo_assets/`` (or ``--out``), and a comparison table.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import schema_py_generated as schema

from export import quantize
from tfresnet import data

IO_TYPES = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}
# The input quantization that encodes (pixel - 128) / 128: 1/128 and 128 (uint8) or 0 (int8).
INPUT_SCALE = 1.0 / data.STD
INPUT_ZERO_POINT = {"uint8": int(data.MEAN), "int8": int(data.MEAN) - 128}
CALIBRATION_IMAGES = 200

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items()
               if not k.startswith("_")}
_FLOAT_TYPES = {"float32", "float16", "float64", "bfloat16"}


class NotFullyIntegerError(ValueError):
    """The converter left ops that compute in float inside an INT8 model."""


# ----------------------------------------------------------------------------- conversion


def converter_for(model) -> tf.lite.TFLiteConverter:
    """A TFLiteConverter for the inference function of a one-input Keras model.

    Converts the model's ``call(images, training=False)`` traced once, with its
    variables frozen. This is what ``TFLiteConverter.from_keras_model`` converts too,
    but without the detour through a SavedModel, which retraces every layer of a tf_keras
    model (hundreds of functions for a QAT model): 1.8 s instead of 30 s of CPU for
    MobileNet v1, with the same graph.
    """
    if len(model.inputs) != 1:
        raise ValueError(f"expected a model with one image input. Received: "
                         f"{len(model.inputs)} inputs")
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="image")
    function = tf.function(lambda image: model(image, training=False))
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function(spec)])


def to_float32(model) -> bytes:
    """The float32 TFLite model of a Keras model (no optimization).

    Args:
      model: a tf_keras model (float or QAT).

    Returns:
      The ``.tflite`` bytes.
    """
    return converter_for(model).convert()


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
            yield [data.normalize(sample[None])]

    return generate


def to_int8(model, calibration_uint8, io: str = "uint8") -> bytes:
    """The full-integer INT8 TFLite model of a QAT or float Keras model.

    A QAT model (from :func:`export.quantize.quantize_model`, trained) converts with its
    learned ranges; its input range is pinned to the full pixel range first. A float
    model is quantized after training (PTQ), its ranges calibrated on
    ``calibration_uint8``. Every op inside is INT8 (weights per channel, biases int32).

    Args:
      model: a tf_keras model taking ``tfresnet.data.normalize``-d images.
      calibration_uint8: uint8 images [N, H, W, 3] (raw pixels) for calibration; a few
        hundred training images (QAT models use them only where no range was learned).
      io: the input and output type: "uint8" (default; what the TFLite Task Library
        and MediaPipe take: raw RGB bytes in, probability / 256 out), "int8", or
        "float32" (float in and out, QUANTIZE/DEQUANTIZE at the two ends).

    Returns:
      The ``.tflite`` bytes.

    Raises:
      ValueError: bad ``io`` or calibration images.
      NotFullyIntegerError: when the converter leaves float ops inside (names them).
    """
    if io not in IO_TYPES:
        raise ValueError(f"io must be one of {', '.join(IO_TYPES)}. Received: io={io!r}")
    if quantize.is_qat(model):
        quantize.pin_input_range(model)
    converter = converter_for(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration_data(calibration_uint8)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = IO_TYPES[io]
    converter.inference_output_type = IO_TYPES[io]
    tflite = converter.convert()
    bad = non_integer_ops(tflite)
    if bad:
        raise NotFullyIntegerError(
            f"{model.name!r} did not convert to a full-integer model: these ops compute "
            f"in float: {', '.join(bad)}")
    if io != "float32":
        check_input_quantization(tflite)
    return tflite


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


def _model_bytes(tflite) -> bytes:
    if isinstance(tflite, (str, os.PathLike)):
        with open(tflite, "rb") as f:
            return f.read()
    return bytes(tflite)


def _graph(tflite):
    buf = _model_bytes(tflite)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ValueError("not a TFLite model: the file identifier is not 'TFL3'")
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
        self.interpreter = Interpreter(model_content=_model_bytes(tflite),
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
        normalized = data.normalize(images) if images.dtype == np.uint8 else \
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


# ----------------------------------------------------------------------------- the export

PROG = "python -m export.tflite"
DEFAULT_MODEL = "mobilenet_v1"
DEFAULT_EPOCHS = 4          # float training on the bundled digits when no --checkpoint
DEFAULT_QAT_EPOCHS = 1
DEFAULT_BATCH_SIZE = 8      # per replica: ~180 steps an epoch on the 1,438 digits
DEFAULT_AUGMENT = "none"
SHORT_RUN_RECIPE = {"schedule": "steps", "boundaries": (0.5, 0.75), "decay_factor": 0.1}
QAT_LR_FACTOR = 0.1         # QAT fine-tunes at this fraction of the float learning rate
MIN_AGREEMENT = 0.99        # INT8 TFLite vs QAT Keras top-1 agreement required
MANIFEST = "models.json"
LABELS_FILE = "labels.txt"
MANIFEST_FORMAT = 1
AUTHOR = "tfresnet"


@dataclasses.dataclass
class ExportPlan:
    """Everything :func:`export` needs, checked before anything is trained or written.

    Attributes:
      name: registry name; info: its ModelInfo.
      model_kwargs: builder arguments (``alpha``, ``res`` for MobileNet).
      res: input side; stem: file-name stem (``mobilenet_v1_0.75_160``, ``resnet20_32``).
      split: the data (train / held-out validation); labels: class names.
      checkpoint: the loaded float model, or None to train one here.
      checkpoint_path: where it came from.
      out: output folder; io: INT8 model input/output type.
      epochs, qat_epochs, lr, qat_lr, batch_size, augment, seed, strategy: training
        settings (see :func:`_training_settings`).
      calibration: calibration images for the INT8 conversions.
      threads: interpreter threads for the latency figures.
      min_agreement: the INT8-vs-QAT-Keras top-1 agreement required.
    """

    name: str
    info: object
    model_kwargs: dict
    res: int
    stem: str
    split: object
    labels: list
    checkpoint: object
    checkpoint_path: str | None
    out: str
    io: str
    epochs: int
    qat_epochs: int
    lr: float | None
    qat_lr: float | None
    batch_size: int
    augment: str
    seed: int
    strategy: str
    calibration: int
    threads: int
    min_agreement: float
    verbose: int = 2

    def file(self, kind: str) -> str:
        """File name of one output: kind "int8" (QAT), "ptq_int8" or "float32"."""
        suffix = "" if kind == "float32" or self.io == "uint8" else f"_io_{self.io}"
        return f"{self.stem}_{kind}{suffix}.tflite"

    @property
    def results_file(self) -> str:
        suffix = "" if self.io == "uint8" else f"_io_{self.io}"
        return f"{self.stem}{suffix}_results.json"


def build_parser():
    """The ``python -m export.tflite`` flags."""
    from tfresnet import cli, registry

    p = cli.ArgumentParser(
        prog=PROG, description=(
            "Quantization-aware INT8 TFLite export for Android. Takes a trained model "
            "(--checkpoint) or trains one on the data first, fine-tunes it "
            "quantization-aware, converts it to a full-integer .tflite (verified: every "
            "op INT8, uint8 input = raw RGB bytes), writes float32 and post-training INT8 "
            "baselines, labels.txt, a models.json manifest and a results JSON into --out, "
            "and prints accuracy, agreement, size, latency, params and MACs."))
    p.add_argument("--model", help=f"registry name (default {DEFAULT_MODEL}, or the "
                   f"checkpoint's): {', '.join(registry.list_models())}")
    p.add_argument("--alpha", type=float, help="MobileNet width multiplier > 0 (default "
                   "1.0 or the checkpoint's; e.g. 0.75)")
    p.add_argument("--res", type=int, help="input side: MobileNet a multiple of 32, at "
                   "least 32 (default 224); other models at least their minimum side "
                   "(default: the paper's input, or the checkpoint's)")
    p.add_argument("--checkpoint", help="a tfresnet.train run directory or .keras file; "
                   "without it the float model is trained here first")
    p.add_argument("--dataset", help="'digits' (bundled; the default without a "
                   "checkpoint), 'tfds:<name>[/config][:version]' or an image folder; with "
                   "a checkpoint the default is the data it was trained on")
    p.add_argument("--data-dir", help="tensorflow-datasets folder with prepared data")
    p.add_argument("--manual-dir", help="folder with a tfds data set's original archives")
    p.add_argument("--epochs", type=int, help=f"float training epochs without --checkpoint "
                   f"(default {DEFAULT_EPOCHS}: enough for the bundled digits; give more "
                   f"for real data, or train with tfresnet.train)")
    p.add_argument("--qat-epochs", type=int, default=DEFAULT_QAT_EPOCHS,
                   help=f"quantization-aware fine-tuning epochs (default {DEFAULT_QAT_EPOCHS})")
    p.add_argument("--lr", type=float, help="float training learning rate at the global "
                   "batch, divided by 10 at 1/2 and 3/4 of the epochs (default: the model "
                   "recipe's rate, e.g. 0.045 for MobileNet's RMSprop)")
    p.add_argument("--qat-lr", type=float, help=f"QAT learning rate (default "
                   f"{QAT_LR_FACTOR:g} x the float one)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"images per replica per step, float training and QAT (default "
                   f"{DEFAULT_BATCH_SIZE}: many steps in a few epochs, so BatchNorm's moving "
                   f"statistics settle)")
    p.add_argument("--augment", choices=tuple(data.AUGMENTATIONS), default=DEFAULT_AUGMENT,
                   help=f"training augmentation (default {DEFAULT_AUGMENT}: a run of a few "
                   f"epochs learns faster without; 'mobilenet', 'imagenet', 'cifar' are the "
                   f"papers')")
    p.add_argument("--io", choices=tuple(IO_TYPES), default="uint8",
                   help="INT8 model input/output type: uint8 (default; TFLite Task Library "
                   "and MediaPipe; raw RGB bytes in), int8, or float32 (quantize/dequantize "
                   "inside the model)")
    p.add_argument("--out", default="android_demo_assets",
                   help="output folder (default android_demo_assets)")
    p.add_argument("--calibration", type=int, default=CALIBRATION_IMAGES,
                   help=f"training images used to calibrate the INT8 conversions (default "
                   f"{CALIBRATION_IMAGES})")
    p.add_argument("--threads", type=int, default=1,
                   help="interpreter threads for the latency figures (default 1)")
    p.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT,
                   help=f"required top-1 agreement of the INT8 model with the QAT Keras "
                   f"model on the held-out data (default {MIN_AGREEMENT:g}); below it "
                   f"nothing is written and the exit status is 1")
    p.add_argument("--strategy", default="mirrored", help="tf.distribute strategy for "
                   "training: mirrored (default), multiworker, one, default")
    p.add_argument("--seed", type=int, help="seed of the data split, training "
                   "and calibration sample (default 0; with a checkpoint: its seed)")
    return p


def _check_number(flag, value, *, low, integer=False, inclusive=True):
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value >= low if inclusive else value > low)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        rule = f"{'an integer' if integer else 'a number'} {'>=' if inclusive else '>'} {low:g}"
        raise ValueError(f"{flag} must be {rule}. Received: {flag}={value!r}")


def _check_flags(args):
    """The checks that need nothing loaded: numbers and choices."""
    from tfresnet import train

    for flag, value in (("--epochs", args.epochs), ("--qat-epochs", args.qat_epochs),
                        ("--batch-size", args.batch_size), ("--calibration", args.calibration),
                        ("--threads", args.threads)):
        _check_number(flag, value, low=1, integer=True)
    for flag, value in (("--lr", args.lr), ("--qat-lr", args.qat_lr), ("--alpha", args.alpha)):
        _check_number(flag, value, low=0, inclusive=False)
    _check_number("--min-agreement", args.min_agreement, low=0)
    if args.min_agreement > 1:
        raise ValueError(f"--min-agreement is a fraction between 0 and 1. "
                         f"Received: --min-agreement={args.min_agreement!r}")
    if args.strategy not in train.STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(train.STRATEGIES)}. "
                         f"Received: --strategy={args.strategy!r}")
    if args.checkpoint is not None and args.epochs is not None:
        raise ValueError("--epochs trains a float model; with --checkpoint the model is "
                         "trained already (use --qat-epochs for the fine-tuning)")


def _resolve_model(args, config, checkpoint):
    """(name, ModelInfo, builder kwargs, res) from the flags and the checkpoint's config."""
    from tfresnet import registry

    registry_model = config.get("model") if config.get("registry") else None
    name = args.model or registry_model or DEFAULT_MODEL
    info = registry.model_info(name)
    if not info.int8:
        raise ValueError(f"{name} cannot be exported to full INT8: {info.int8_note}. "
                         f"Received: --model={name}")
    saved = dict(config.get("model_kwargs") or {}) if registry_model == name else {}
    if args.alpha is not None and "alpha" not in info.extra_args:
        raise ValueError(f"--alpha applies to mobilenet_v1 only. Received: --model={name}, "
                         f"--alpha={args.alpha:g}")
    res = args.res if args.res is not None else saved.get("res")
    if res is None:
        res = checkpoint.input_shape[1] if checkpoint is not None else info.input_shape[0]
    if "res" in info.extra_args:
        if res < 32 or res % 32:
            raise ValueError(f"--res must be a multiple of 32 and at least 32 for {name} "
                             f"(the paper uses 224, 192, 160, 128). Received: --res={res}")
        alpha = args.alpha if args.alpha is not None else saved.get("alpha", 1.0)
        kwargs = {"alpha": float(alpha), "res": int(res)}
    else:
        if res < info.min_side:
            raise ValueError(f"--res must be at least {info.min_side} for {name}. "
                             f"Received: --res={res}")
        kwargs = {}
    return name, info, kwargs, int(res)


def _stem(name, kwargs, res):
    from tfresnet import mobilenet

    if "alpha" in kwargs:
        return f"{name}_{mobilenet.alpha_text(kwargs['alpha'])}_{res}"
    return f"{name}_{res}"


def _check_checkpoint(path, model, name, kwargs, res, classes):
    """ValueError unless the checkpoint is the architecture the flags describe."""
    from tfresnet import registry

    described = f"{_stem(name, kwargs, res)} ({classes} classes)"
    if tuple(model.input_shape[1:]) != (res, res, 3):
        raise ValueError(f"checkpoint {path!r} takes {tuple(model.input_shape[1:])} images, "
                         f"not ({res}, {res}, 3) as {described}")
    if model.output_shape[-1] != classes:
        raise ValueError(f"checkpoint {path!r} has {model.output_shape[-1]} outputs; the data "
                         f"has {classes} classes")
    shape_kwargs = {} if "res" in kwargs else {"input_shape": (res, res, 3)}
    reference = registry.get_model(name, classes=classes, **shape_kwargs, **kwargs)
    if [tuple(w.shape) for w in model.weights] != [tuple(w.shape) for w in reference.weights]:
        raise ValueError(f"checkpoint {path!r} is not a {described} model: its "
                         f"{model.count_params():,} parameters in {len(model.weights)} "
                         f"tensors differ from the {reference.count_params():,} in "
                         f"{len(reference.weights)} expected (check --model/--alpha/--res)")


def read_manifest(path) -> dict:
    """The ``models.json`` at ``path`` (an empty manifest when there is none).

    Raises:
      ValueError: for a file that is not a manifest written by this tool.
    """
    import json

    if not os.path.exists(path):
        return {"format": MANIFEST_FORMAT, "models": []}
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path!r} is not a readable JSON manifest ({err}); move it away "
                         f"or fix it") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
        raise ValueError(f"{path!r} is not a models.json manifest (no 'models' list); move "
                         f"it away or fix it")
    return manifest


def plan_export(args) -> ExportPlan:
    """Checks every flag, loads the checkpoint and the data: all before anything is
    trained or written. Raises ValueError (one line) for any bad input."""
    from tfresnet import cli, train

    _check_flags(args)
    checkpoint, config, saved_labels = None, {}, []
    if args.checkpoint is not None:
        checkpoint, config, saved_labels = train.load_run(args.checkpoint)
    name, info, kwargs, res = _resolve_model(args, config, checkpoint)
    seed = args.seed if args.seed is not None else int(config.get("seed", 0))
    dataset = args.dataset or config.get("dataset") or "digits"
    split = data.load(dataset, image_size=(res, res), data_dir=args.data_dir,
                      manual_dir=args.manual_dir, seed=seed,
                      val_fraction=float(config.get("val_fraction", 0.2)))
    labels = [str(label) for label in split.labels]
    if checkpoint is not None:
        _check_checkpoint(args.checkpoint, checkpoint, name, kwargs, res, len(labels))
        if saved_labels and saved_labels != labels:
            raise ValueError(f"checkpoint {args.checkpoint!r} was trained on other labels "
                             f"({', '.join(saved_labels[:5])}, ...) than {split.name!r} "
                             f"({', '.join(labels[:5])}, ...); pass --dataset")
    else:
        shape_kwargs = {} if "res" in kwargs else {"input_shape": (res, res, 3)}
        from tfresnet import registry
        registry.get_model(name, classes=len(labels), **shape_kwargs, **kwargs)  # validates
    if os.path.isdir(args.out):
        read_manifest(os.path.join(args.out, MANIFEST))
    out = cli.check_writable_dir(args.out)
    return ExportPlan(
        name=name, info=info, model_kwargs=kwargs, res=res, stem=_stem(name, kwargs, res),
        split=split, labels=labels, checkpoint=checkpoint, checkpoint_path=args.checkpoint,
        out=out, io=args.io, epochs=args.epochs or DEFAULT_EPOCHS,
        qat_epochs=args.qat_epochs, lr=args.lr, qat_lr=args.qat_lr,
        batch_size=args.batch_size, augment=args.augment, seed=seed, strategy=args.strategy, calibration=args.calibration,
        threads=args.threads, min_agreement=args.min_agreement)


def _say(text):
    print(f"[export] {text}", flush=True)


def _val_batches(split, batch_size=256):
    """The held-out images in uint8 batches with their labels."""
    for images, labels in split.val.batch(batch_size).as_numpy_iterator():
        yield images, labels


def calibration_images(split, count, seed):
    """``count`` training images (uint8), a seeded random sample for calibration."""
    shuffled = split.train.shuffle(min(max(count * 4, 1024), 10_000), seed=seed)
    images, _ = data.as_numpy(shuffled, limit=count)
    return images


def _training_settings(plan, qat: bool) -> dict:
    """fit() arguments shared by the float training and the QAT fine-tuning.

    A short run (a few epochs) uses the model's recipe (optimizer, momentum, weight
    decay) with ``SHORT_RUN_RECIPE``: the learning rate at the recipe's own rate (not
    scaled down to the small batch) and divided by 10 at 1/2 and 3/4 of the run, small
    batches (many steps, so BatchNorm's moving statistics settle), no augmentation.
    QAT runs at ``QAT_LR_FACTOR`` times the float rate.
    """
    from tfresnet import recipes

    base = plan.lr or recipes.get_recipe(plan.info.recipe).lr
    lr = (plan.qat_lr or base * QAT_LR_FACTOR) if qat else base
    return dict(dataset=plan.split, epochs=plan.qat_epochs if qat else plan.epochs,
                batch_size=plan.batch_size, lr=lr, recipe=plan.info.recipe,
                augment=plan.augment, seed=plan.seed, verbose=plan.verbose,
                recipe_overrides=dict(SHORT_RUN_RECIPE))


def train_float(plan, strategy):
    """Trains the float model on the plan's data (when there is no checkpoint)."""
    from tfresnet import train

    _say(f"No --checkpoint: training the float {plan.stem} on {plan.split.name} "
         f"({plan.split.num_train} images) for {plan.epochs} epoch(s) first "
         f"(pass --checkpoint to export a model trained with tfresnet.train)")
    result = train.fit(plan.name, strategy=strategy, image_size=(plan.res, plan.res),
                       model_kwargs=plan.model_kwargs or None,
                       **_training_settings(plan, qat=False))
    return train.portable_model(result.model), result


def train_qat(plan, float_model, strategy):
    """Quantization-aware fine-tuning of ``float_model`` (wrapped inside the strategy's
    scope, as tfmot requires); returns the trained QAT model and its FitResult."""
    from tfresnet import train

    _say(f"Quantization-aware fine-tuning for {plan.qat_epochs} epoch(s)")
    with strategy.scope():
        qat = quantize.quantize_model(float_model)
    with quantize.quantize_scope():
        result = train.fit(qat, strategy=strategy, **_training_settings(plan, qat=True))
    return result.model, result


@dataclasses.dataclass
class Variant:
    """One model compared at the end: a Keras model or an exported ``.tflite``."""

    label: str
    kind: str                     # "keras" or a file kind: "float32", "ptq_int8", "int8"
    tflite: bytes | None = None
    file: str | None = None
    correct: int = 0
    top1: list = dataclasses.field(default_factory=list)
    latency: object = None

    @property
    def size(self) -> int | None:
        return None if self.tflite is None else len(self.tflite)


def evaluate(split, float_model, qat_model, variants, threads=1):
    """Top-1 of the Keras models and the TFLite files on the held-out data.

    Fills each Variant's ``correct`` and ``top1``; returns (number of images, labels).
    """
    keras_models = {"float32 Keras": float_model, "QAT Keras": qat_model}
    runners = {v.label: Runner(v.tflite, threads=threads) for v in variants if v.tflite}
    count, truth = 0, []
    for images, labels in _val_batches(split):
        for v in variants:
            if v.tflite is None:
                probs = keras_models[v.label].predict(data.normalize(images), verbose=0)
            else:
                probs = runners[v.label].predict(images)
            top1 = np.argmax(probs, axis=-1)
            v.top1.extend(top1.tolist())
            v.correct += int(np.sum(top1 == labels))
        truth.extend(labels.tolist())
        count += len(labels)
    return count, truth


def _agreement(a: Variant, b: Variant) -> float:
    return float(np.mean(np.asarray(a.top1) == np.asarray(b.top1))) if a.top1 else float("nan")


def _with_metadata(plan, tflite, kind):
    from export import metadata

    from tfresnet import __version__

    what = {"int8": "quantization-aware trained, full INT8",
            "ptq_int8": "post-training quantized, full INT8",
            "float32": "float32"}[kind]
    io = "float32" if kind == "float32" else plan.io
    pixels = ("raw RGB bytes (the input quantization, scale 1/128 zero point 128, is the "
              "normalization)" if io == "uint8" else
              f"{io} (normalize (pixel - {data.MEAN:g}) / {data.STD:g})")
    description = (f"{plan.info.paper}. Image classifier trained on {plan.split.name} "
                   f"({len(plan.labels)} classes), {what}; {plan.res}x{plan.res} {io} input: "
                   f"{pixels}.")
    return metadata.add_metadata(
        tflite, name=plan.file(kind)[:-len(".tflite")], description=description,
        version=__version__, author=AUTHOR, labels=plan.labels, mean=data.MEAN,
        std=data.STD, image_size=(plan.res, plan.res))


def _tensor_dict(t: TensorInfo) -> dict:
    return {"shape": list(t.shape), "dtype": t.dtype, "scale": t.scale,
            "zero_point": t.zero_point}


def manifest_entry(plan, v: Variant, accuracy, profile) -> dict:
    """The models.json entry of one exported file."""
    import hashlib

    tensors = io_tensors(v.tflite)
    return {
        "file": v.file, "name": v.file[:-len(".tflite")], "model": plan.name,
        "variant": {"int8": "qat_int8", "ptq_int8": "ptq_int8", "float32": "float32"}[v.kind],
        **{k: plan.model_kwargs[k] for k in ("alpha",) if k in plan.model_kwargs},
        "input_size": [plan.res, plan.res], "input": _tensor_dict(tensors["input"]),
        "output": _tensor_dict(tensors["output"]),
        "normalization": {"mean": data.MEAN, "std": data.STD,
                          "rule": "(pixel - mean) / std"},
        "labels_file": LABELS_FILE, "labels": plan.labels, "dataset": plan.split.name,
        "accuracy": accuracy, "latency_ms": v.latency.median_ms,
        "latency": v.latency.to_dict(), "params": profile.params, "macs": profile.macs,
        "size_bytes": v.size, "sha256": hashlib.sha256(v.tflite).hexdigest(),
    }


def merged_manifest(old: dict, entries: list) -> dict:
    """``old`` with ``entries`` added, replacing entries for the same file."""
    files = {e["file"] for e in entries}
    kept = [e for e in old.get("models", []) if e.get("file") not in files]
    models = sorted(kept + entries, key=lambda e: str(e.get("file")))
    return {**old, "format": MANIFEST_FORMAT, "generator": PROG,
            "normalization": {"mean": data.MEAN, "std": data.STD,
                              "rule": "(pixel - mean) / std"},
            "models": models}


def write_files(folder, files: dict) -> None:
    """Writes every ``{name: bytes}`` to a temporary file first and renames them all
    only when all are written: an interrupted export changes no file."""
    import contextlib

    from tfresnet import cli

    with contextlib.ExitStack() as stack:
        for name, content in files.items():
            tmp = stack.enter_context(cli.atomic_path(os.path.join(folder, name)))
            with open(tmp, "wb") as f:
                f.write(content)


def results_table(rows, agreement, count) -> str:
    """The comparison table printed at the end."""
    header = ("model", "file", "size", "params", "MACs", "latency", "accuracy")
    body = []
    for r in rows:
        size = "" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f} MB"
        latency = "" if r["latency_ms"] is None else f"{r['latency_ms']:.2f} ms"
        body.append((r["model"], r["file"] or "-", size, f"{r['params']:,}",
                     f"{r['macs'] / 1e6:.1f}M", latency, f"{100 * r['accuracy']:.2f}%"))
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths))).rstrip()
             for line in [header, *body]]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"top-1 agreement, QAT INT8 TFLite vs QAT Keras: {100 * agreement:.2f}% "
                 f"of {count} held-out images")
    return "\n".join(lines)


class AgreementError(RuntimeError):
    """The INT8 model disagrees with the QAT Keras model more than allowed."""


def export(plan: ExportPlan, argv=None) -> dict:
    """Runs the export the plan describes and writes its files; returns the results.

    Steps: float model (trained unless a checkpoint was given) -> QAT fine-tuning ->
    conversions (QAT INT8, PTQ INT8, float32; INT8 checked full-integer) -> metadata ->
    evaluation on the held-out data, latency, params and MACs -> files (all renamed
    into place together at the end).

    Raises:
      AgreementError: when the INT8 model's top-1 agrees with the QAT Keras model on
        less than ``plan.min_agreement`` of the held-out images (nothing is written).
    """
    import json

    import tfresnet
    from export import latency
    from tfresnet import train

    strategy = train.make_strategy(plan.strategy)
    float_fit = None
    if plan.checkpoint is None:
        float_model, float_fit = train_float(plan, strategy)
    else:
        float_model = plan.checkpoint
        _say(f"Float model from {plan.checkpoint_path}")
    qat_model, qat_fit = train_qat(plan, float_model, strategy)

    _say(f"Converting (calibration: {plan.calibration} training images; INT8 I/O {plan.io})")
    calibration = calibration_images(plan.split, plan.calibration, plan.seed)
    converted = {"int8": to_int8(qat_model, calibration, io=plan.io),
                 "ptq_int8": to_int8(float_model, calibration, io=plan.io),
                 "float32": to_float32(float_model)}
    variants = [Variant("float32 Keras", "keras"), Variant("QAT Keras", "keras")]
    for kind, label in (("float32", "float32 TFLite"), ("ptq_int8", "PTQ INT8 TFLite"),
                        ("int8", "QAT INT8 TFLite")):
        variants.append(Variant(label, kind, _with_metadata(plan, converted[kind], kind),
                                plan.file(kind)))

    _say(f"Evaluating on {plan.split.num_val} held-out images; timing "
         f"({plan.threads} thread, XNNPACK)")
    count, _ = evaluate(plan.split, float_model, qat_model, variants, threads=plan.threads)
    prof = tfresnet.profile(float_model, print_table=False)
    for v in variants:
        if v.tflite is not None:
            v.latency = latency.measure(v.tflite, threads=plan.threads)
    by_label = {v.label: v for v in variants}
    agreement = _agreement(by_label["QAT INT8 TFLite"], by_label["QAT Keras"])
    rows = [{"model": v.label, "file": v.file, "size_bytes": v.size,
             "params": prof.params, "macs": prof.macs,
             "latency_ms": v.latency.median_ms if v.latency else None,
             "latency": v.latency.to_dict() if v.latency else None,
             "accuracy": v.correct / count if count else float("nan")} for v in variants]
    results = {
        "command": f"{PROG} {' '.join(argv or [])}".strip(), "model": plan.name,
        "model_kwargs": plan.model_kwargs, "res": plan.res, "io": plan.io,
        "dataset": plan.split.name, "labels": plan.labels,
        "num_train": plan.split.num_train, "held_out_images": count,
        "checkpoint": plan.checkpoint_path, "seed": plan.seed,
        "float_epochs": None if float_fit is None else plan.epochs,
        "qat_epochs": plan.qat_epochs, "batch_size_per_replica": plan.batch_size,
        "augment": plan.augment, "calibration_images": plan.calibration,
        "float_lr": None if float_fit is None else float_fit.config.get("lr"),
        "qat_lr": qat_fit.config.get("lr"), "threads": plan.threads,
        "agreement_int8_vs_qat_keras": agreement, "min_agreement": plan.min_agreement,
        "rows": rows,
    }
    table = results_table(rows, agreement, count)
    print(table, flush=True)
    if not agreement >= plan.min_agreement:
        raise AgreementError(
            f"the INT8 model agrees with the QAT Keras model on only {100 * agreement:.2f}% "
            f"of the held-out images (required: {100 * plan.min_agreement:g}%); nothing "
            f"was written")

    accuracy = {r["file"]: r["accuracy"] for r in rows if r["file"]}
    entries = [manifest_entry(plan, v, accuracy[v.file], prof) for v in variants if v.tflite]
    manifest = merged_manifest(read_manifest(os.path.join(plan.out, MANIFEST)), entries)
    files = {v.file: v.tflite for v in variants if v.tflite}
    files[LABELS_FILE] = "".join(f"{label}\n" for label in plan.labels).encode()
    files[plan.results_file] = (json.dumps(results, indent=2) + "\n").encode()
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    write_files(plan.out, files)
    _say(f"Wrote {', '.join(files)} to {plan.out}")
    results["files"] = sorted(files)
    results["table"] = table
    return results


def main(argv=None):
    """``python -m export.tflite``: returns the results dict (exit status 0), or exits
    1 when the INT8 model fails its agreement check, 2 on bad input."""
    import sys

    args = build_parser().parse_args(argv)
    plan = plan_export(args)
    plan.verbose = 1 if sys.stdout.isatty() else 2
    try:
        return export(plan, argv=list(sys.argv[1:] if argv is None else argv))
    except AgreementError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    from tfresnet import cli

    cli.run(main, prog=PROG)
