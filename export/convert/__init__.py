"""The conversion library: TFLite files from Keras models, and checks that they are right.

* :mod:`~export.convert.converter`: float32 and full-INT8 conversion, graph checks, ``Runner``;
* :mod:`~export.convert.formats`: float16, dynamic range, int16x8 and their graph checks;
* :mod:`~export.convert.qat`: quantization-aware training (the QAT twin of a Keras model);
* :mod:`~export.convert.latency`: one latency harness (LiteRT, XNNPACK);
* :mod:`~export.convert.int8_errors`: where INT8 loses accuracy, layer by layer.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__getattr__, __dir__ = front_door(__name__)  # the names below, imported on first use

if TYPE_CHECKING:  # the public names, declared once (read by front_door too)
    from export.convert.converter import (  # noqa: F401
        IO_TYPES,
        Runner,
        calibration_data,
        converter_for,
        graph_ops,
        io_tensors,
        non_integer_ops,
        to_float32,
        to_int8,
    )
    from export.convert.formats import FORMATS, check_format, convert_format  # noqa: F401
    from export.convert.qat import quantize_model  # noqa: F401
