"""``python -m export.compare``: see :mod:`export.compare.job` (flags checked before
TensorFlow loads: :mod:`export.compare.flags`)."""

from export.compare.flags import PROG, parse
from tfresnet.utils import flags

flags.run(parse, "export.compare.job:main", prog=PROG)
