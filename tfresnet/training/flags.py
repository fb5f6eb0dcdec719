"""The former home of ``python -m tfresnet.train``'s flags (now
:mod:`tfresnet.training.command`), kept only for ``export/job/flags.py``, which still
imports ``add_transfer`` from here. Remove it once that import names
:mod:`tfresnet.training.command`.
"""

from tfresnet.training.command import add_transfer  # noqa: F401
