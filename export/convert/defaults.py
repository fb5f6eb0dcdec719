"""The conversion library's choices and defaults that the CLIs show before TensorFlow
loads (:mod:`export.convert.converter` maps them to TensorFlow types)."""

# The INT8 file's input/output tensor types (converter.IO_TYPES: their TensorFlow dtypes).
IO_NAMES = ("uint8", "int8", "float32")
# Training images that calibrate an INT8 conversion unless a caller says otherwise.
CALIBRATION_IMAGES = 200
