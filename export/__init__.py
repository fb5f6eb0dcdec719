"""Export of trained models to TFLite, their metadata, latency and comparison.

* :mod:`export.convert`: the conversion library (float32, INT8 and the other formats,
  graph checks, QAT wrapping, the runner and latency, the per-layer INT8 debugger);
* :mod:`export.metadata`: TFLite metadata and signatures, written and read back;
* :mod:`export.job`: the export job behind ``python -m export.tflite``;
* :mod:`export.compare`: ``python -m export.compare``, models side by side.
"""
