"""``python -m export.compare``: :func:`export.compare.command.main` (its flags are
checked before TensorFlow loads)."""

from export.compare.command import PROG, main
from tfresnet.utils import cli

cli.run(main, prog=PROG)
