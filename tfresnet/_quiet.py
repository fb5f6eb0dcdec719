"""Imports TensorFlow without its C++ start-up lines on stderr.

TensorFlow 2.21 prints lines such as "oneDNN custom operations are on" and "Could not
find cuda drivers" from C++ before any log level applies (TF_CPP_MIN_LOG_LEVEL does not
silence them), so a CLI's one-line error would never be one line. The import runs with
file descriptor 2 pointed at /dev/null; Python errors still show, since they print
after it is restored. Set TFRESNET_TF_LOGS=1 to see the lines.
"""

import os
import sys


def import_tensorflow_quietly():
    """Imports tensorflow once, with C++ start-up output on stderr suppressed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("TFRESNET_TF_LOGS") == "1":
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
