"""TFLite model metadata for image classifiers, written with the plain ``flatbuffers`` package.

What the TFLite Task Library and MediaPipe Tasks' ``ImageClassifier`` read from a model
file, laid out as tflite-support's ``MetadataPopulator`` lays it out:

* a ``ModelMetadata`` flatbuffer (``metadata_schema.fbs``, file identifier ``M001``) with
  the model's name, description, version, author and license, and one subgraph whose
  input tensor is an RGB image (``ImageProperties``, default size, ``NormalizationOptions``
  mean/std) and whose output tensor holds the class probabilities (``FeatureProperties``)
  with ``labels.txt`` as its ``TENSOR_AXIS_LABELS`` associated file;
* that flatbuffer stored as a buffer of the model, named ``TFLITE_METADATA`` in the
  Model's ``metadata`` vector (the model flatbuffer is re-serialized with TF's generated
  schema code, every buffer's data 16-byte aligned as schema.fbs asks: ``force_align: 16``);
* the associated files appended to the end of the ``.tflite`` as an uncompressed zip
  archive, which readers find through the zip's end-of-central-directory record.

Only fields of metadata schema 1.0.0 are written, so ``min_parser_version`` is "1.0.0"
(tflite-support's ``GetMinimumMetadataParserVersion`` rule: the largest version among the
fields present, 1.0.0 at least).

Example::

    tflite = add_metadata(tflite, name="mobilenet_v1_0.75_160", description="...",
                          version="1", author="tfresnet", labels=labels,
                          mean=128.0, std=128.0)
    read_metadata(tflite)["labels"]

The same flatbuffer round trip sets a model's SignatureDef (:func:`set_signature`), which
the converter's fast path does not write.

Command line: ``python -m export.metadata model.tflite`` prints a file's metadata as JSON.
"""

from __future__ import annotations

import io
import json
import struct
import numbers
import zipfile

import flatbuffers
import numpy as np
from flatbuffers import encode, number_types, packer
from flatbuffers.table import Table

from tensorflow.lite.python import schema_py_generated as schema

from tfresnet import cli

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"
INPUT_NAME = "image"
OUTPUT_NAME = "probability"

# Enum values of metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2                     # AssociatedFileType
_RGB = 1                                    # ColorSpaceType
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2   # ContentProperties union
_NORMALIZATION_OPTIONS = 1                  # ProcessUnitOptions union
_FILE_TYPES = {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS",
               3: "TENSOR_VALUE_LABELS", 4: "TENSOR_AXIS_SCORE_CALIBRATION", 5: "VOCABULARY"}
_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
_TYPE_NAMES = {getattr(schema.TensorType, n): n.lower() for n in dir(schema.TensorType)
               if not n.startswith("_")}

# Field slots (declaration order) of the metadata_schema.fbs tables written here.
_ASSOCIATED_FILE = ("name", "description", "type", "locale")
_IMAGE_SIZE = ("width", "height")
_IMAGE_PROPS = ("color_space", "default_size")
_CONTENT = ("content_properties_type", "content_properties", "range")
_NORMALIZATION = ("mean", "std")
_PROCESS_UNIT = ("options_type", "options")
_STATS = ("max", "min")
_TENSOR = ("name", "description", "dimension_names", "content", "process_units", "stats",
           "associated_files")
_SUBGRAPH = ("name", "description", "input_tensor_metadata", "output_tensor_metadata",
             "associated_files", "input_process_units", "output_process_units")
_MODEL = ("name", "description", "version", "subgraph_metadata", "author", "license",
          "associated_files", "min_parser_version")


# ----------------------------------------------------------------------------- writing

def add_metadata(tflite_bytes, *, name, description, version, author, labels, mean, std,
                 image_size=None, license=""):
    """Returns a copy of an image-classifier ``.tflite`` with metadata and labels embedded.

    Any metadata or associated files already in the file are replaced.

    Args:
      tflite_bytes: the model file's bytes (one subgraph, one input [1, H, W, 3], one
        output [1, classes]).
      name, description, version, author, license: strings for ``ModelMetadata``.
      labels: one class name per output unit, in output order.
      mean, std: the input normalization ``(pixel - mean) / std`` of the float model, a
        number or one per RGB channel. A uint8 model encodes it in its input quantization
        (clients feed raw pixels); a float32 model's client applies it. MediaPipe 1.2.2
        refuses per-channel values on a float32 model ("Per-channel image normalization
        is not available"); the Task Library accepts them.
      image_size: ``(width, height)``; must equal the input tensor's; default: taken from it.

    Returns:
      The new ``.tflite`` bytes: re-serialized model + appended zip holding ``labels.txt``.

    Raises:
      ValueError: not a TFLite model, not an image classifier, or arguments that do not
        fit it (label count, image size, mean/std).
    """
    labels = list(labels)
    model = _unpack_model(tflite_bytes)
    width, height, input_type, output_type = _classifier_io(model, labels, image_size)
    mean, std = _channel_values("mean", mean), _channel_values("std", std)
    if len(mean) != len(std):
        raise ValueError(f"mean and std need the same number of values. "
                         f"Received: mean={mean}, std={std}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive. Received: std={std}")
    for field, text in (("name", name), ("description", description), ("version", version),
                        ("author", author), ("license", license)):
        if not isinstance(text, str):
            raise ValueError(f"{field} must be a string. Received: {field}={text!r}")

    metadata = _build_metadata(
        name=name, description=description, version=version, author=author,
        license=license, width=width, height=height, mean=mean, std=std,
        input_stats=_input_stats(input_type, mean, std),
        output_stats=_output_stats(output_type), num_labels=len(labels))
    _set_metadata_buffer(model, metadata)
    labels_text = "".join(f"{label}\n" for label in labels).encode("utf-8")
    return _append_zip(_pack_model(model), {LABELS_FILE: labels_text})


def set_signature(tflite_bytes, *, key, inputs, outputs):
    """Returns a copy of a one-subgraph ``.tflite`` whose only SignatureDef is ``key``.

    The signature names the subgraph's input and output tensors, in order, the way
    ``Interpreter.get_signature_runner`` and LiteRT's ``CompiledModel`` address them.
    Metadata and files already in the model are kept (an appended zip is not: call this
    before :func:`add_metadata`).

    Args:
      tflite_bytes: the model file's bytes.
      key: the signature key, e.g. ``"serving_default"``.
      inputs, outputs: one name per subgraph input / output.

    Raises:
      ValueError: not a TFLite model, not one subgraph, or a name count that does not
        match the subgraph's inputs or outputs.
    """
    model = _unpack_model(tflite_bytes)
    if len(model.subgraphs) != 1:
        raise ValueError(f"a signature is set on models with one subgraph. "
                         f"Received: a model with {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    inputs, outputs = list(inputs), list(outputs)
    if len(inputs) != len(graph.inputs) or len(outputs) != len(graph.outputs):
        raise ValueError(f"the model has {len(graph.inputs)} inputs and "
                         f"{len(graph.outputs)} outputs. Received: inputs={inputs}, "
                         f"outputs={outputs}")

    def tensor_maps(names, indices):
        maps = []
        for name, index in zip(names, indices):
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = name, int(index)
            maps.append(entry)
        return maps

    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = key, 0
    signature.inputs = tensor_maps(inputs, graph.inputs)
    signature.outputs = tensor_maps(outputs, graph.outputs)
    model.signatureDefs = [signature]
    return _pack_model(model)


def _unpack_model(tflite_bytes):
    """Parses a .tflite into TF's object API (``ModelT``); ValueError if it is not one."""
    data = bytes(tflite_bytes)
    if len(data) < 8 or data[4:8] != MODEL_IDENTIFIER:
        raise ValueError("not a TFLite model: the file identifier is not 'TFL3'")
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    except (struct.error, IndexError, TypeError, AttributeError, UnicodeDecodeError,
            OverflowError, MemoryError) as err:
        raise _corrupt(err) from None
    if any(buffer.offset > 1 for buffer in model.buffers or []):
        raise ValueError("models with external buffers (over 2 GB) are not supported")
    return model


def _classifier_io(model, labels, image_size):
    """Checks the model is an image classifier fitting ``labels`` and ``image_size``.

    Returns:
      (width, height, input TensorType, output TensorType).
    """
    if len(model.subgraphs) != 1:
        raise ValueError(f"an image classifier has one subgraph. "
                         f"Received: a model with {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"an image classifier has one input and one output. Received: "
                         f"{len(graph.inputs)} inputs, {len(graph.outputs)} outputs")
    image, scores = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    shape = [int(d) for d in image.shape]
    if len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"the input must be an RGB image [1, height, width, 3]. "
                         f"Received: input shape {shape}")
    height, width = shape[1], shape[2]
    if image_size is not None and tuple(image_size) != (width, height):
        raise ValueError(f"image_size (width, height) must match the model's input "
                         f"{(width, height)}. Received: image_size={tuple(image_size)}")
    classes = int(scores.shape[-1])
    if len(labels) != classes:
        raise ValueError(f"the model has {classes} outputs, so it needs {classes} labels. "
                         f"Received: {len(labels)} labels")
    for label in labels:
        if not isinstance(label, str) or not label.strip() or "\n" in label:
            raise ValueError(f"labels must be non-empty one-line strings. "
                             f"Received: label={label!r}")
    return width, height, image.type, scores.type


def _channel_values(field, value):
    """A number or a sequence of 1 or 3 numbers -> list of floats."""
    values = [value] if isinstance(value, numbers.Real) else list(value)
    if len(values) not in (1, 3) or not all(isinstance(v, numbers.Real) for v in values):
        raise ValueError(f"{field} must be a number or one number per RGB channel. "
                         f"Received: {field}={value!r}")
    return [float(v) for v in values]


def _input_stats(tensor_type, mean, std):
    """Range of the input tensor's values, as tflite-support's writer records it."""
    if tensor_type == schema.TensorType.UINT8:
        return [0.0], [255.0]
    if tensor_type == schema.TensorType.FLOAT32:
        return ([(0.0 - m) / s for m, s in zip(mean, std)],
                [(255.0 - m) / s for m, s in zip(mean, std)])
    return None


def _output_stats(tensor_type):
    """Range of the probabilities as stored: [0, 255] for uint8, [0, 1] for float32."""
    if tensor_type == schema.TensorType.UINT8:
        return [0.0], [255.0]
    if tensor_type == schema.TensorType.FLOAT32:
        return [0.0], [1.0]
    return None


def _table(builder, slots, **values):
    """Writes one flatbuffer table; ``values`` maps slot names to (kind, value).

    kind is "offset" (a string, vector or table already written), "int8", "uint8" or
    "uint32". Every child object must have been written before this call.
    """
    builder.StartObject(len(slots))
    for field, (kind, value) in values.items():
        if value is None:
            continue
        slot = slots.index(field)
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "int8":
            builder.PrependInt8Slot(slot, value, 0)
        elif kind == "uint8":
            builder.PrependUint8Slot(slot, value, 0)
        else:
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _offsets(builder, offsets):
    """A vector of tables already written."""
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder, values):
    return None if values is None else builder.CreateNumpyVector(
        np.asarray(values, dtype="<f4"))


def _stats(builder, stats):
    if stats is None:
        return None
    low, high = _floats(builder, stats[0]), _floats(builder, stats[1])
    return _table(builder, _STATS, max=("offset", high), min=("offset", low))


def _build_metadata(*, name, description, version, author, license, width, height, mean,
                    std, input_stats, output_stats, num_labels):
    """Serializes the ``ModelMetadata`` flatbuffer (file identifier M001)."""
    b = flatbuffers.Builder(1024)
    s = b.CreateString

    # Input: an RGB image with its normalization.
    size = _table(b, _IMAGE_SIZE, width=("uint32", width), height=("uint32", height))
    image_props = _table(b, _IMAGE_PROPS, color_space=("int8", _RGB),
                         default_size=("offset", size))
    image_content = _table(b, _CONTENT,
                           content_properties_type=("uint8", _IMAGE_PROPERTIES),
                           content_properties=("offset", image_props))
    norm = _table(b, _NORMALIZATION, mean=("offset", _floats(b, mean)),
                  std=("offset", _floats(b, std)))
    unit = _table(b, _PROCESS_UNIT, options_type=("uint8", _NORMALIZATION_OPTIONS),
                  options=("offset", norm))
    input_text = (f"Input image to be classified: RGB, {width}x{height}, normalized as "
                  f"(pixel - {_fmt(mean)}) / {_fmt(std)}.")
    image = _table(b, _TENSOR, name=("offset", s(INPUT_NAME)),
                   description=("offset", s(input_text)),
                   content=("offset", image_content),
                   process_units=("offset", _offsets(b, [unit])),
                   stats=("offset", _stats(b, input_stats)))

    # Output: class probabilities, labelled by labels.txt.
    labels_file = _table(b, _ASSOCIATED_FILE, name=("offset", s(LABELS_FILE)),
                         description=("offset", s("Labels for categories that the model "
                                                  "can recognize.")),
                         type=("int8", _TENSOR_AXIS_LABELS))
    feature = _table(b, ())
    scores_content = _table(b, _CONTENT,
                            content_properties_type=("uint8", _FEATURE_PROPERTIES),
                            content_properties=("offset", feature))
    scores = _table(b, _TENSOR, name=("offset", s(OUTPUT_NAME)),
                    description=("offset", s(f"Probabilities of the {num_labels} labels "
                                             f"respectively.")),
                    content=("offset", scores_content),
                    stats=("offset", _stats(b, output_stats)),
                    associated_files=("offset", _offsets(b, [labels_file])))

    subgraph = _table(b, _SUBGRAPH, input_tensor_metadata=("offset", _offsets(b, [image])),
                      output_tensor_metadata=("offset", _offsets(b, [scores])))
    root = _table(b, _MODEL, name=("offset", s(name)),
                  description=("offset", s(description)), version=("offset", s(version)),
                  subgraph_metadata=("offset", _offsets(b, [subgraph])),
                  author=("offset", s(author)),
                  license=("offset", s(license) if license else None),
                  min_parser_version=("offset", s(MIN_PARSER_VERSION)))
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _fmt(values):
    """[128.0] -> "128"; [1.0, 2.5, 3.0] -> "[1, 2.5, 3]"."""
    text = [f"{v:g}" for v in values]
    return text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"


def _set_metadata_buffer(model, metadata):
    """Stores ``metadata`` as the buffer named TFLITE_METADATA (replacing an old one)."""
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model.metadata = model.metadata or []
    for entry in model.metadata:
        if _text(entry.name) == METADATA_NAME:
            model.buffers[entry.buffer] = buffer
            return
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)


class _AlignedBufferT(schema.BufferT):
    """``BufferT`` whose data is written 16-byte aligned (``force_align: 16`` in schema.fbs).

    The generated ``Pack`` aligns uint8 data to 1 byte only, so weights could land on any
    address; 16 lets a runtime read them in place with any vector width.
    """

    def Pack(self, builder):  # noqa: N802 (flatbuffers' generated-code name)
        data = None
        if self.data is not None and np.size(self.data):
            raw = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            builder.vectorNumElems = len(raw)
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


def _pack_model(model):
    """Serializes a ``ModelT`` back to .tflite bytes."""
    for i, buffer in enumerate(model.buffers):
        aligned = _AlignedBufferT()
        aligned.data = buffer.data
        model.buffers[i] = aligned
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=MODEL_IDENTIFIER)
    return bytes(builder.Output())


def _append_zip(model_bytes, files):
    """Appends ``files`` ({name: bytes}) as an uncompressed zip, as MetadataPopulator does.

    Entries get a fixed timestamp so the same inputs give the same bytes.
    """
    out = io.BytesIO(model_bytes)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            archive.writestr(zipfile.ZipInfo(file_name, date_time=(1980, 1, 1, 0, 0, 0)),
                             content)
    return out.getvalue()


# ----------------------------------------------------------------------------- reading

class _Reader:
    """Reads one table of a flatbuffer by field name (a tiny stand-in for generated code)."""

    def __init__(self, buf, pos, slots):
        self._tab, self._slots = Table(buf, pos), slots

    def _offset(self, field):
        return self._tab.Offset(4 + 2 * self._slots.index(field))

    def string(self, field):
        o = self._offset(field)
        return self._tab.String(o + self._tab.Pos).decode("utf-8") if o else None

    def scalar(self, field, flags=number_types.Int8Flags):
        o = self._offset(field)
        return self._tab.Get(flags, o + self._tab.Pos) if o else 0

    def table(self, field, slots):
        o = self._offset(field)
        return _Reader(self._tab.Bytes, self._tab.Indirect(o + self._tab.Pos), slots) if o else None

    def tables(self, field, slots):
        o = self._offset(field)
        if not o:
            return []
        start = self._tab.Vector(o)
        return [_Reader(self._tab.Bytes, self._tab.Indirect(start + 4 * i), slots)
                for i in range(self._tab.VectorLen(o))]

    def floats(self, field):
        o = self._offset(field)
        return ([float(v) for v in self._tab.GetVectorAsNumpy(number_types.Float32Flags, o)]
                if o else None)


def read_metadata(tflite_bytes):
    """Reads what :func:`add_metadata` writes (and what other writers put in those fields).

    Returns:
      dict with keys ``name``, ``description``, ``version``, ``author``, ``license``,
      ``min_parser_version``; ``input`` (``name``, ``description``, ``color_space``,
      ``image_size`` (width, height), ``mean``, ``std``, ``min``, ``max``, ``type``);
      ``output`` (``name``, ``description``, ``label_file``, ``label_file_type``, ``min``,
      ``max``, ``type``); ``associated_files`` ({name: bytes} from the appended zip);
      ``labels`` (the lines of the output's label file, [] without one).

    Raises:
      ValueError: not a TFLite model, or it has no TFLITE_METADATA.
    """
    data = bytes(tflite_bytes)
    if len(data) < 8 or data[4:8] != MODEL_IDENTIFIER:
        raise ValueError("not a TFLite model: the file identifier is not 'TFL3'")
    try:
        return _read_metadata(data)
    except (struct.error, IndexError, TypeError, AttributeError, UnicodeDecodeError,
            OverflowError, MemoryError) as err:
        raise _corrupt(err) from None


def _corrupt(err) -> ValueError:
    return ValueError(f"not a valid TFLite model: the flatbuffer is truncated or corrupt "
                      f"({type(err).__name__}: {' '.join(str(err).split())[:80]})")


def _read_metadata(data):
    model = schema.Model.GetRootAs(data, 0)
    buf = _metadata_buffer(model)
    if buf is None:
        raise ValueError(f"the model has no {METADATA_NAME} metadata")
    if buf[4:8] != METADATA_IDENTIFIER:
        raise ValueError("the TFLITE_METADATA buffer is not a ModelMetadata flatbuffer (M001)")
    root = _Reader(buf, encode.Get(packer.uoffset, buf, 0), _MODEL)
    result = {field: root.string(field) for field in
              ("name", "description", "version", "author", "license", "min_parser_version")}
    subgraphs = root.tables("subgraph_metadata", _SUBGRAPH)
    graph = model.Subgraphs(0)
    if subgraphs:
        inputs = subgraphs[0].tables("input_tensor_metadata", _TENSOR)
        outputs = subgraphs[0].tables("output_tensor_metadata", _TENSOR)
        if inputs:
            result["input"] = _read_input(inputs[0])
            result["input"]["type"] = _TYPE_NAMES[graph.Tensors(graph.Inputs(0)).Type()]
        if outputs:
            result["output"] = _read_output(outputs[0])
            result["output"]["type"] = _TYPE_NAMES[graph.Tensors(graph.Outputs(0)).Type()]
    result["associated_files"] = _zipped_files(data)
    label_file = result.get("output", {}).get("label_file")
    text = result["associated_files"].get(label_file, b"").decode("utf-8")
    result["labels"] = text.splitlines()
    return result


def _metadata_buffer(model):
    """The bytes of the buffer named TFLITE_METADATA, or None."""
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == METADATA_NAME:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def _read_tensor(tensor):
    stats = tensor.table("stats", _STATS)
    return {"name": tensor.string("name"), "description": tensor.string("description"),
            "min": stats.floats("min") if stats else None,
            "max": stats.floats("max") if stats else None}


def _read_input(tensor):
    info = _read_tensor(tensor)
    info.update(color_space=None, image_size=None, mean=None, std=None)
    content = tensor.table("content", _CONTENT)
    if content and content.scalar("content_properties_type",
                                  number_types.Uint8Flags) == _IMAGE_PROPERTIES:
        props = content.table("content_properties", _IMAGE_PROPS)
        info["color_space"] = _COLOR_SPACES.get(props.scalar("color_space"), "UNKNOWN")
        size = props.table("default_size", _IMAGE_SIZE)
        if size:
            info["image_size"] = (size.scalar("width", number_types.Uint32Flags),
                                  size.scalar("height", number_types.Uint32Flags))
    for unit in tensor.tables("process_units", _PROCESS_UNIT):
        if unit.scalar("options_type", number_types.Uint8Flags) == _NORMALIZATION_OPTIONS:
            norm = unit.table("options", _NORMALIZATION)
            info["mean"], info["std"] = norm.floats("mean"), norm.floats("std")
    return info


def _read_output(tensor):
    info = _read_tensor(tensor)
    info.update(label_file=None, label_file_type=None)
    files = tensor.tables("associated_files", _ASSOCIATED_FILE)
    labels = [f for f in files if f.scalar("type") == _TENSOR_AXIS_LABELS] or files
    if labels:  # the first label file is the default one (metadata_schema.fbs)
        info["label_file"] = labels[0].string("name")
        info["label_file_type"] = _FILE_TYPES.get(labels[0].scalar("type"), "UNKNOWN")
    return info


def _zipped_files(data):
    """{name: bytes} of the zip appended to the model, {} when there is none."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


# ----------------------------------------------------------------------------- CLI

def main(argv=None):
    """Prints the metadata of a .tflite as JSON (associated files as their sizes)."""
    parser = cli.ArgumentParser(
        prog="python -m export.metadata",
        description="Print the metadata embedded in a .tflite image classifier (what "
                    "MediaPipe and the TFLite Task Library read) as JSON.")
    parser.add_argument("model", type=cli.non_empty, help="the .tflite file")
    args = parser.parse_args(argv)
    with open(args.model, "rb") as f:
        meta = read_metadata(f.read())
    meta["associated_files"] = {name: f"{len(content)} bytes"
                                for name, content in meta["associated_files"].items()}
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    cli.run(main, prog="python -m export.metadata")
