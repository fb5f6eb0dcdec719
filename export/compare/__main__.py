"""``python -m export.compare``: see :mod:`export.compare.job`."""

from tfresnet.utils import cli, quiet

quiet.import_tensorflow_quietly()
from export.compare.job import main  # noqa: E402

cli.run(main, prog="python -m export.compare")
