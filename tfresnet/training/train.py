"""The former home of ``fit`` (now :mod:`tfresnet.training.api`), kept only for the export
modules that still import it (``export/job/training.py``, ``export/job/pipeline.py``,
``export/compare/measure.py``: ``train.fit``, ``train.make_strategy``). Remove it once they
import :mod:`tfresnet.training.api` and :mod:`tfresnet.training.strategy`.
"""

from tfresnet.training.api import fit  # noqa: F401
from tfresnet.training.strategy import make_strategy  # noqa: F401
