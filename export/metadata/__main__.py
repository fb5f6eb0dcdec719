"""``python -m export.metadata``: a ``.tflite``'s metadata, printed as JSON (flags
checked before TensorFlow loads: :mod:`export.metadata.flags`)."""

from export.metadata.flags import PROG, parse
from tfresnet.utils import flags

flags.run(parse, "export.metadata.writer:main", prog=PROG)
