"""The part of tflite-support's ``metadata_schema.fbs`` (version 1.0.0) used here.

:mod:`export.metadata` writes these tables and :mod:`export.metadata.reader` reads them
back; both address a table's fields by name through the slot tuples below (a field's
slot is its declaration order in the schema), so the two sides cannot disagree.
"""

from __future__ import annotations

METADATA_NAME = "TFLITE_METADATA"  # the name of the model's metadata buffer
METADATA_IDENTIFIER = b"M001"

# Enum values of metadata_schema.fbs.
TENSOR_AXIS_LABELS = 2                       # AssociatedFileType
RGB = 1                                      # ColorSpaceType
FEATURE_PROPERTIES, IMAGE_PROPERTIES = 1, 2  # ContentProperties union
NORMALIZATION_OPTIONS = 1                    # ProcessUnitOptions union

# Field slots (declaration order) of the metadata_schema.fbs tables written and read.
ASSOCIATED_FILE = ("name", "description", "type", "locale")
IMAGE_SIZE = ("width", "height")
IMAGE_PROPS = ("color_space", "default_size")
CONTENT = ("content_properties_type", "content_properties", "range")
NORMALIZATION = ("mean", "std")
PROCESS_UNIT = ("options_type", "options")
STATS = ("max", "min")
TENSOR = ("name", "description", "dimension_names", "content", "process_units", "stats",
          "associated_files")
SUBGRAPH = ("name", "description", "input_tensor_metadata", "output_tensor_metadata",
            "associated_files", "input_process_units", "output_process_units")
MODEL = ("name", "description", "version", "subgraph_metadata", "author", "license",
         "associated_files", "min_parser_version")

