"""TFLite metadata for image classifiers (TFLite Support / MediaPipe), and signatures.

* :mod:`~export.metadata.writer`: ``add_metadata``;
* :mod:`~export.metadata.reader`: ``read_metadata``, what a reader finds;
* :mod:`~export.metadata.schema`: the part of ``metadata_schema.fbs`` both sides use;
* :mod:`~export.metadata.flatbuffer`: the model flatbuffer round trip, ``set_signature``;
* :mod:`~export.metadata.command`: ``python -m export.metadata`` (``main``).
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__getattr__, __dir__ = front_door(__name__)  # the names below, imported on first use

if TYPE_CHECKING:  # the public names, declared once (read by front_door too)
    from export.metadata.command import main  # noqa: F401
    from export.metadata.flatbuffer import set_signature  # noqa: F401
    from export.metadata.reader import read_metadata  # noqa: F401
    from export.metadata.writer import add_metadata  # noqa: F401
