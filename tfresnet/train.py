"""``python -m tfresnet.train`` and ``tfresnet.train.fit``: the training entry point.

The work is in :mod:`tfresnet.training` (``fit`` in :mod:`tfresnet.training.api`, the
command in :mod:`tfresnet.training.command`); this module is the public door that the
README and users' scripts name.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__getattr__, __dir__ = front_door(__name__)  # the names below, imported on first use

if TYPE_CHECKING:  # the public names, declared once (read by front_door too)
    from tfresnet.training.api import fit, summary_table  # noqa: F401
    from tfresnet.training.checkpoint import load_run  # noqa: F401
    from tfresnet.training.command import PROG, build_parser, main  # noqa: F401
    from tfresnet.training.fitting import FitResult  # noqa: F401
    from tfresnet.training.rundir import read_history  # noqa: F401

if __name__ == "__main__":  # main checks the flags before TensorFlow loads
    from tfresnet.training.command import PROG, main
    from tfresnet.utils import cli

    cli.run(main, prog=PROG)
