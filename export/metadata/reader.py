"""Reads the TFLite metadata of a ``.tflite``: what :func:`export.metadata.add_metadata`
writes, and what other writers (tflite-support's ``MetadataPopulator``) put in the same
fields, with the labels from the appended zip.
"""

from __future__ import annotations

import io
import zipfile

from flatbuffers import encode, number_types, packer
from flatbuffers.table import Table
from tensorflow.lite.python import schema_py_generated as schema

from export.metadata.flatbuffer import CORRUPT_ERRORS, as_str, corrupt, model_bytes
from export.metadata.schema import (
    ASSOCIATED_FILE,
    CONTENT,
    IMAGE_PROPERTIES,
    IMAGE_PROPS,
    IMAGE_SIZE,
    METADATA_IDENTIFIER,
    METADATA_NAME,
    MODEL,
    NORMALIZATION,
    NORMALIZATION_OPTIONS,
    PROCESS_UNIT,
    STATS,
    SUBGRAPH,
    TENSOR,
    TENSOR_AXIS_LABELS,
)
from tfresnet.utils.cli import size_text
from tfresnet.utils.kerasfiles import zip_member_count

# The files appended to a model (labels.txt, ...): a few KiB (ImageNet's 1,000 names are
# 10 KiB). What declares more is refused before it is unpacked.
ASSOCIATED_MAX_BYTES = 64 * 2 ** 20
ASSOCIATED_MAX_FILES = 1000

# Names of enum values, for the dict read_metadata returns.
_FILE_TYPES = {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS",
               3: "TENSOR_VALUE_LABELS", 4: "TENSOR_AXIS_SCORE_CALIBRATION", 5: "VOCABULARY"}
_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
_TYPE_NAMES = {getattr(schema.TensorType, n): n.lower() for n in dir(schema.TensorType)
               if not n.startswith("_")}


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
    """Reads what :func:`export.metadata.add_metadata` writes (and what other writers put
    in those fields).

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
    data = model_bytes(tflite_bytes)
    try:
        return _read_metadata(data)
    except CORRUPT_ERRORS as err:
        raise corrupt(err) from None


def _read_metadata(data):
    model = schema.Model.GetRootAs(data, 0)
    buf = _metadata_buffer(model)
    if buf is None:
        raise ValueError(f"the model has no {METADATA_NAME} metadata")
    if buf[4:8] != METADATA_IDENTIFIER:
        raise ValueError("the TFLITE_METADATA buffer is not a ModelMetadata flatbuffer (M001)")
    root = _Reader(buf, encode.Get(packer.uoffset, buf, 0), MODEL)
    result = {field: root.string(field) for field in
              ("name", "description", "version", "author", "license", "min_parser_version")}
    subgraphs = root.tables("subgraph_metadata", SUBGRAPH)
    graph = model.Subgraphs(0)
    if subgraphs:
        inputs = subgraphs[0].tables("input_tensor_metadata", TENSOR)
        outputs = subgraphs[0].tables("output_tensor_metadata", TENSOR)
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
        if as_str(entry.Name()) == METADATA_NAME:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def _read_tensor(tensor):
    stats = tensor.table("stats", STATS)
    return {"name": tensor.string("name"), "description": tensor.string("description"),
            "min": stats.floats("min") if stats else None,
            "max": stats.floats("max") if stats else None}


def _read_input(tensor):
    info = _read_tensor(tensor)
    info.update(color_space=None, image_size=None, mean=None, std=None)
    content = tensor.table("content", CONTENT)
    if content and content.scalar("content_properties_type",
                                  number_types.Uint8Flags) == IMAGE_PROPERTIES:
        props = content.table("content_properties", IMAGE_PROPS)
        info["color_space"] = _COLOR_SPACES.get(props.scalar("color_space"), "UNKNOWN")
        size = props.table("default_size", IMAGE_SIZE)
        if size:
            info["image_size"] = (size.scalar("width", number_types.Uint32Flags),
                                  size.scalar("height", number_types.Uint32Flags))
    for unit in tensor.tables("process_units", PROCESS_UNIT):
        if unit.scalar("options_type", number_types.Uint8Flags) == NORMALIZATION_OPTIONS:
            norm = unit.table("options", NORMALIZATION)
            info["mean"], info["std"] = norm.floats("mean"), norm.floats("std")
    return info


def _read_output(tensor):
    info = _read_tensor(tensor)
    info.update(label_file=None, label_file_type=None)
    files = tensor.tables("associated_files", ASSOCIATED_FILE)
    labels = [f for f in files if f.scalar("type") == TENSOR_AXIS_LABELS] or files
    if labels:  # the first label file is the default one (metadata_schema.fbs)
        info["label_file"] = labels[0].string("name")
        info["label_file_type"] = _FILE_TYPES.get(labels[0].scalar("type"), "UNKNOWN")
    return info


def _zipped_files(data):
    """{name: bytes} of the zip appended to the model, {} when there is none.

    Raises:
      ValueError: when its members declare more than :data:`ASSOCIATED_MAX_BYTES` or
        :data:`ASSOCIATED_MAX_FILES` (a zip bomb), before any is unpacked.
    """
    buffer = io.BytesIO(data)
    try:
        count = zip_member_count(buffer)
        if count is not None and count > ASSOCIATED_MAX_FILES:
            raise ValueError(f"the zip appended to the model holds {count:,} files, more "
                             f"than the {ASSOCIATED_MAX_FILES} a model's label files may be")
        with zipfile.ZipFile(buffer) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if total > ASSOCIATED_MAX_BYTES:
                raise ValueError(f"the files appended to the model declare "
                                 f"{size_text(total)} unpacked, more than the "
                                 f"{size_text(ASSOCIATED_MAX_BYTES)} label files may be (a "
                                 f"zip bomb?)")
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except zipfile.BadZipFile:
        return {}
