"""``python -m tfresnet.train`` and ``tfresnet.train.fit``: the training entry point.

The work is in :mod:`tfresnet.training` (``fit`` in :mod:`tfresnet.training.train`);
this module is the public door that the README and users' scripts name.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

_HOMES = {  # public name -> the module that defines it
    "load_run": "tfresnet.training.checkpoint",
    "FitResult": "tfresnet.training.fitting",
    "read_history": "tfresnet.training.rundir",
    "PROG": "tfresnet.training.train",
    "build_parser": "tfresnet.training.train",
    "fit": "tfresnet.training.train",
    "main": "tfresnet.training.train",
    "summary_table": "tfresnet.training.train",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = front_door(__name__, _HOMES)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from tfresnet.training.checkpoint import load_run  # noqa: F401
    from tfresnet.training.fitting import FitResult  # noqa: F401
    from tfresnet.training.rundir import read_history  # noqa: F401
    from tfresnet.training.train import PROG, build_parser, fit, main, summary_table  # noqa: F401

if __name__ == "__main__":
    from tfresnet.utils import cli, quiet

    quiet.import_tensorflow_quietly()
    from tfresnet.training.train import PROG, main

    cli.run(main, prog=PROG)
