"""``python -m export.metadata``: a ``.tflite``'s metadata, read or written."""

from tfresnet.utils import cli, quiet

quiet.import_tensorflow_quietly()
from export.metadata.writer import main  # noqa: E402

cli.run(main, prog="python -m export.metadata")
