"""The conversion library: TFLite files from Keras models, and checks that they are right.

* :mod:`~export.convert.converter`: float32 and full-INT8 conversion, graph checks, ``Runner``;
* :mod:`~export.convert.formats`: float16, dynamic range, int16x8 and their graph checks;
* :mod:`~export.convert.qat`: quantization-aware training (the QAT twin of a Keras model);
* :mod:`~export.convert.latency`: one latency harness (LiteRT, XNNPACK);
* :mod:`~export.convert.debug`: where INT8 loses accuracy, layer by layer.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

_HOMES = {  # public name -> the module that defines it, imported on first use
    "calibration_data": "export.convert.converter",
    "converter_for": "export.convert.converter",
    "graph_ops": "export.convert.converter",
    "io_tensors": "export.convert.converter",
    "IO_TYPES": "export.convert.converter",
    "non_integer_ops": "export.convert.converter",
    "Runner": "export.convert.converter",
    "to_float32": "export.convert.converter",
    "to_int8": "export.convert.converter",
    "check_format": "export.convert.formats",
    "convert_format": "export.convert.formats",
    "FORMATS": "export.convert.formats",
    "quantize_model": "export.convert.qat",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = front_door(__name__, _HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from export.convert.converter import (  # noqa: F401
        calibration_data, converter_for, graph_ops, io_tensors,
        IO_TYPES, non_integer_ops, Runner, to_float32, to_int8)
    from export.convert.formats import check_format, convert_format, FORMATS  # noqa: F401
    from export.convert.qat import quantize_model  # noqa: F401
