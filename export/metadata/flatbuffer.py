"""A ``.tflite`` model flatbuffer, parsed into TF's object API and written back.

:func:`unpack_model` / :func:`pack_model` are the round trip that
:func:`export.metadata.add_metadata` stores its metadata buffer through (TF's generated
``schema_py_generated`` code, every buffer's data 16-byte aligned as schema.fbs asks:
``force_align: 16``). :func:`set_signature` uses it to give a converted model the
SignatureDef that the converter's fast path does not write.
"""

from __future__ import annotations

import struct

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

MODEL_IDENTIFIER = b"TFL3"
# What parsing a truncated or corrupt flatbuffer raises (flatbuffers checks nothing).
CORRUPT_ERRORS = (struct.error, IndexError, TypeError, AttributeError, UnicodeDecodeError,
                  OverflowError, MemoryError)


def set_signature(tflite_bytes, *, key, inputs, outputs):
    """Returns a copy of a one-subgraph ``.tflite`` whose only SignatureDef is ``key``.

    The signature names the subgraph's input and output tensors, in order, the way
    ``Interpreter.get_signature_runner`` and LiteRT's ``CompiledModel`` address them,
    and the tensors get the same names, so ``get_input_details()`` and
    ``get_output_details()`` show them too (not the converter's ``serving_default_image:0``
    and ``Identity``).
    Metadata and files already in the model are kept (an appended zip is not: call this
    before :func:`export.metadata.add_metadata`).

    Args:
      tflite_bytes: the model file's bytes.
      key: the signature key, e.g. ``"serving_default"``.
      inputs, outputs: one name per subgraph input / output.

    Raises:
      ValueError: not a TFLite model, not one subgraph, or a name count that does not
        match the subgraph's inputs or outputs.
    """
    model = unpack_model(tflite_bytes)
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
    for name, index in zip(inputs + outputs, list(graph.inputs) + list(graph.outputs)):
        graph.tensors[int(index)].name = name
    model.signatureDefs = [signature]
    return pack_model(model)


def model_bytes(tflite_bytes) -> bytes:
    """``tflite_bytes`` as bytes; ValueError if they do not start as a .tflite model."""
    data = bytes(tflite_bytes)
    if len(data) < 8 or data[4:8] != MODEL_IDENTIFIER:
        raise ValueError("not a TFLite model: the file identifier is not 'TFL3'")
    return data


def unpack_model(tflite_bytes):
    """Parses a .tflite into TF's object API (``ModelT``); ValueError if it is not one."""
    data = model_bytes(tflite_bytes)
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    except CORRUPT_ERRORS as err:
        raise corrupt(err) from None
    if any(buffer.offset > 1 for buffer in model.buffers or []):
        raise ValueError("models with external buffers (over 2 GB) are not supported")
    return model


def corrupt(err) -> ValueError:
    """The one-line error for a flatbuffer that failed to parse with ``err``."""
    return ValueError(f"not a valid TFLite model: the flatbuffer is truncated or corrupt "
                      f"({type(err).__name__}: {' '.join(str(err).split())[:80]})")


def as_str(value):
    """A flatbuffer string (bytes from the generated code) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


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


def pack_model(model):
    """Serializes a ``ModelT`` back to .tflite bytes."""
    for i, buffer in enumerate(model.buffers):
        aligned = _AlignedBufferT()
        aligned.data = buffer.data
        model.buffers[i] = aligned
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=MODEL_IDENTIFIER)
    return bytes(builder.Output())
