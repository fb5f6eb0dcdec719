"""The comparison's defaults that both its job and its flags read (no TensorFlow)."""

import os

DEFAULT_OUT = os.path.join("reports", "compare")
DEFAULT_ROUNDS = 5          # timing passes over the grid (--rounds)
QUICK_CALIBRATION_IMAGES = 8  # --quick: random images, for size and latency only
