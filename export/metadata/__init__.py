"""TFLite metadata for image classifiers (TFLite Support / MediaPipe), and signatures.

* :mod:`~export.metadata.writer`: ``add_metadata`` and ``python -m export.metadata``;
* :mod:`~export.metadata.reader`: ``read_metadata``, what a reader finds;
* :mod:`~export.metadata.schema`: the part of ``metadata_schema.fbs`` both sides use;
* :mod:`~export.metadata.flatbuffer`: the model flatbuffer round trip, ``set_signature``.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

_HOMES = {  # public name -> the module that defines it
    'set_signature': 'export.metadata.flatbuffer',
    'read_metadata': 'export.metadata.reader',
    'add_metadata': 'export.metadata.writer',
    'main': 'export.metadata.writer',
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = front_door(__name__, _HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from export.metadata.flatbuffer import set_signature  # noqa: F401
    from export.metadata.reader import read_metadata  # noqa: F401
    from export.metadata.writer import add_metadata, main  # noqa: F401
