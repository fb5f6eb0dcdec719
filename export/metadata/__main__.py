"""``python -m export.metadata``: :func:`export.metadata.command.main` (its flags are
checked before TensorFlow loads)."""

from export.metadata.command import PROG, main
from tfresnet.utils import cli

cli.run(main, prog=PROG)
