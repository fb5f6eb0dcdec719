"""``python -m export.compare``: models side by side (parameters, MACs, size, latency, accuracy).

* :mod:`~export.compare.job`: the grid, the passes over it, the command line;
* :mod:`~export.compare.measure`: building, training or loading, converting, timing;
* :mod:`~export.compare.report`: the rows, the Markdown report and the CSV;
* :mod:`~export.compare.plots`: the PNGs.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

_HOMES = {  # public name -> the module that defines it
    'checkpoint_config': 'export.compare.job',
    'compare': 'export.compare.job',
    'Config': 'export.compare.job',
    'main': 'export.compare.job',
    'make_configs': 'export.compare.job',
    'Report': 'export.compare.job',
    'Settings': 'export.compare.job',
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = front_door(__name__, _HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from export.compare.job import Config, Report, Settings, checkpoint_config, compare, main  # noqa: F401
    from export.compare.job import make_configs  # noqa: F401
