"""Imports TensorFlow without its C++ start-up lines on stderr.

TensorFlow 2.21 prints lines such as "oneDNN custom operations are on" and "Could not
find cuda drivers" from C++ before any log level applies (TF_CPP_MIN_LOG_LEVEL does not
silence them), and its GPU build prints "E0000 ... failed call to cuInit" at the first
device query on a machine without a CUDA driver. So a CLI's one-line error would never
be one line. The import and the first device query run with file descriptor 2 pointed
at a temporary file; afterwards the lines that are not known start-up noise are written
to stderr as they came (so a real C++ error still shows), and Python errors show as
usual. The TFLite converter and interpreter run inside :func:`native_noise_hidden` too
("fully_quantize: ...", "INFO: Created TensorFlow Lite XNNPACK delegate"), and the
check of every image of a folder (libjpeg's "Premature end of JPEG data").
Set TFRESNET_TF_LOGS=1 to see every line.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile

# C++ lines TensorFlow prints at import and at the first device query on a CPU machine.
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|cpu_feature_guard\.cc"
    r"|To enable the following instructions"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|TF-TRT Warning"
    r"|computation_placer\.cc"
    r"|cuda_(diagnostics|executor|driver)\.cc"
    r"|kernel driver does not appear to be running"
    r"|retrieving CUDA diagnostic information"
    r"|hostname: "
    # ... and at conversion and interpreter start (export.convert, export.convert.latency).
    r"|fully_quantize: \d"
    r"|Created TensorFlow Lite XNNPACK delegate"
    # ... and libjpeg's own complaints while a bad image is checked (tfresnet.data.folder),
    # which the product reports in one line that names the file: through TensorFlow's log
    # (jpeg_mem.cc: "Premature end of JPEG data") or printed raw by libjpeg's error exit
    # ("Improper call to JPEG library in state 201" for a file cut after its headers).
    r"|jpeg_mem\.cc"
    r"|^(Improper call to JPEG library|Corrupt JPEG data|Premature end of JPEG|"
    r"Bogus marker|Unsupported marker type|Invalid JPEG file structure)")


def import_tensorflow_quietly():
    """Imports tensorflow once and lists its devices, with C++ noise on stderr dropped."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("TFRESNET_TF_LOGS") == "1":
        import tensorflow  # noqa: F401
        return
    with native_noise_hidden():
        import tensorflow as tf
        # The GPU build tries cuInit here, once; listing physical devices does not
        # initialise the runtime, so logical devices and collectives can still be set.
        tf.config.list_physical_devices()


@contextlib.contextmanager
def native_noise_hidden():
    """Runs the block with file descriptor 2 in a temporary file, then writes to stderr
    the lines that are not known noise (:data:`NOISE`). TFRESNET_TF_LOGS=1: no filter."""
    if os.environ.get("TFRESNET_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    capture = tempfile.TemporaryFile()
    try:
        os.dup2(capture.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
        capture.close()
        kept = [line for line in text.splitlines(keepends=True)
                if line.strip() and not NOISE.search(line)]
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


@contextlib.contextmanager
def absl_warnings_hidden():
    """Hides absl's Python warnings inside the block (e.g. tensorflow-datasets'
    "Variant folder ... has no dataset_info.json" for an unprepared data set, which the
    caller reports in its own words)."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
