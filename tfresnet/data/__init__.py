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

__getattr__, __dir__ = front_door(__name__)  # the names below, imported on first use

if TYPE_CHECKING:  # the public names, declared once (read by front_door too)
    from tfresnet.data.folder import IMAGE_EXTENSIONS, undecodable_images  # noqa: F401
    from tfresnet.data.pipelines import (  # noqa: F401
        CIFAR_PAD,
        MEAN,
        SHUFFLE_BUFFER,
        STD,
        default_flip,
        normalize,
        pipeline,
    )
    from tfresnet.data.sources import as_numpy, load, shipped_name  # noqa: F401
    from tfresnet.data.split import DataSplit, fit_image  # noqa: F401
