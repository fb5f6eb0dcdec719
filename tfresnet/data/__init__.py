"""Data for training and export: three sources, one tf.data pipeline, one normalization.

* :mod:`~tfresnet.data.sources`: ``load`` (digits, tensorflow-datasets or an image
  folder), the bundled digits, ``as_numpy``;
* :mod:`~tfresnet.data.split`: :class:`DataSplit`, the seeded split and the resize;
* :mod:`~tfresnet.data.folder`: image folders, every file checked up front;
* :mod:`~tfresnet.data.tfds`: tensorflow-datasets, never the network;
* :mod:`~tfresnet.data.pipelines`: ``normalize`` (the one normalization), the papers'
  augmentations, batching (``pipeline``).
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

_HOMES = {  # public name -> the module that defines it, imported on first use
    "IMAGE_EXTENSIONS": "tfresnet.data.folder",
    "undecodable_images": "tfresnet.data.folder",
    "CIFAR_PAD": "tfresnet.data.pipelines",
    "default_flip": "tfresnet.data.pipelines",
    "MEAN": "tfresnet.data.pipelines",
    "normalize": "tfresnet.data.pipelines",
    "pipeline": "tfresnet.data.pipelines",
    "SHUFFLE_BUFFER": "tfresnet.data.pipelines",
    "STD": "tfresnet.data.pipelines",
    "as_numpy": "tfresnet.data.sources",
    "load": "tfresnet.data.sources",
    "shipped_name": "tfresnet.data.sources",
    "DataSplit": "tfresnet.data.split",
    "fit_image": "tfresnet.data.split",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = front_door(__name__, _HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from tfresnet.data.folder import IMAGE_EXTENSIONS, undecodable_images  # noqa: F401
    from tfresnet.data.pipelines import (  # noqa: F401
        CIFAR_PAD, default_flip,
        MEAN, normalize, pipeline, SHUFFLE_BUFFER,
        STD)
    from tfresnet.data.sources import as_numpy, load, shipped_name  # noqa: F401
    from tfresnet.data.split import DataSplit, fit_image  # noqa: F401
