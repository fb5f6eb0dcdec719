"""Export of trained models to TFLite (float32 and INT8), their metadata, latency and comparison."""

from tfresnet._quiet import import_tensorflow_quietly

import_tensorflow_quietly()
