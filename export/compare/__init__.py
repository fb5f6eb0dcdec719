"""``python -m export.compare``: models side by side (parameters, MACs, size, latency, accuracy).

* :mod:`~export.compare.command`: the flags (checked before TensorFlow loads), ``main``;
* :mod:`~export.compare.job`: the grid, the passes over it;
* :mod:`~export.compare.defaults`: the defaults both read (no TensorFlow);
* :mod:`~export.compare.measure`: building, training or loading, converting, timing;
* :mod:`~export.compare.report`: the rows, the Markdown report and the CSV;
* :mod:`~export.compare.plots`: the PNGs.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__getattr__, __dir__ = front_door(__name__)  # the names below, imported on first use

if TYPE_CHECKING:  # the public names, declared once (read by front_door too)
    from export.compare.command import main  # noqa: F401
    from export.compare.job import (  # noqa: F401
        Config,
        Report,
        Settings,
        checkpoint_config,
        compare,
        make_configs,
    )
