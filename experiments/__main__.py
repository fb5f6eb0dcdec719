"""``python -m experiments NAME [flags]`` (see :mod:`experiments.command`)."""

import tfresnet  # noqa: F401  (imports TensorFlow quietly first)
from tfresnet import cli
from experiments.command import PROG, main

if __name__ == "__main__":
    cli.run(main, prog=PROG)
