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

The model flatbuffer's round trip lives in :mod:`export.metadata.flatbuffer` (which also sets
a model's SignatureDef, :func:`set_signature`, that the converter's fast path does not
write), the schema's tables in :mod:`export.metadata.schema`, the reading in
:mod:`export.metadata.reader`.

The command ``python -m export.metadata model.tflite``, which prints a file's metadata as
JSON, is :mod:`export.metadata.command`.
"""

from __future__ import annotations

import io
import numbers
import zipfile

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from export.metadata.flatbuffer import as_str, pack_model, unpack_model
from export.metadata.schema import (
    ASSOCIATED_FILE,
    CONTENT,
    FEATURE_PROPERTIES,
    IMAGE_PROPERTIES,
    IMAGE_PROPS,
    IMAGE_SIZE,
    METADATA_IDENTIFIER,
    METADATA_NAME,
    MODEL,
    NORMALIZATION,
    NORMALIZATION_OPTIONS,
    PROCESS_UNIT,
    RGB,
    STATS,
    SUBGRAPH,
    TENSOR,
    TENSOR_AXIS_LABELS,
)
from export.names import INPUT_NAME, LABELS_FILE, OUTPUT_NAME

MIN_PARSER_VERSION = "1.0.0"


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
    model = unpack_model(tflite_bytes)
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
    return _append_zip(pack_model(model), {LABELS_FILE: labels_text})


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
    return _table(builder, STATS, max=("offset", high), min=("offset", low))


def _build_metadata(*, name, description, version, author, license, width, height, mean,
                    std, input_stats, output_stats, num_labels):
    """Serializes the ``ModelMetadata`` flatbuffer (file identifier M001)."""
    b = flatbuffers.Builder(1024)
    s = b.CreateString

    # Input: an RGB image with its normalization.
    size = _table(b, IMAGE_SIZE, width=("uint32", width), height=("uint32", height))
    image_props = _table(b, IMAGE_PROPS, color_space=("int8", RGB),
                         default_size=("offset", size))
    image_content = _table(b, CONTENT,
                           content_properties_type=("uint8", IMAGE_PROPERTIES),
                           content_properties=("offset", image_props))
    norm = _table(b, NORMALIZATION, mean=("offset", _floats(b, mean)),
                  std=("offset", _floats(b, std)))
    unit = _table(b, PROCESS_UNIT, options_type=("uint8", NORMALIZATION_OPTIONS),
                  options=("offset", norm))
    input_text = (f"Input image to be classified: RGB, {width}x{height}, normalized as "
                  f"(pixel - {_fmt(mean)}) / {_fmt(std)}.")
    image = _table(b, TENSOR, name=("offset", s(INPUT_NAME)),
                   description=("offset", s(input_text)),
                   content=("offset", image_content),
                   process_units=("offset", _offsets(b, [unit])),
                   stats=("offset", _stats(b, input_stats)))

    # Output: class probabilities, labelled by labels.txt.
    labels_file = _table(b, ASSOCIATED_FILE, name=("offset", s(LABELS_FILE)),
                         description=("offset", s("Labels for categories that the model "
                                                  "can recognize.")),
                         type=("int8", TENSOR_AXIS_LABELS))
    feature = _table(b, ())
    scores_content = _table(b, CONTENT,
                            content_properties_type=("uint8", FEATURE_PROPERTIES),
                            content_properties=("offset", feature))
    scores = _table(b, TENSOR, name=("offset", s(OUTPUT_NAME)),
                    description=("offset", s(f"Probabilities of the {num_labels} labels "
                                             f"respectively.")),
                    content=("offset", scores_content),
                    stats=("offset", _stats(b, output_stats)),
                    associated_files=("offset", _offsets(b, [labels_file])))

    subgraph = _table(b, SUBGRAPH, input_tensor_metadata=("offset", _offsets(b, [image])),
                      output_tensor_metadata=("offset", _offsets(b, [scores])))
    root = _table(b, MODEL, name=("offset", s(name)),
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
        if as_str(entry.name) == METADATA_NAME:
            model.buffers[entry.buffer] = buffer
            return
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)


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
