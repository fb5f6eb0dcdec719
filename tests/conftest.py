"""Test set-up: two logical CPU devices (for MirroredStrategy with 2 replicas), quiet TF.

Must run before TensorFlow initialises its devices, hence at import time here.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow imported with its C++ start-up lines (the cuInit one among them) dropped;
# imported plainly here, pytest would print them after its summary.
from tfresnet.utils.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
